"""Acknowledge messages in offset order per partition, whatever order they finish in.

The signal stage finishes messages in event-time order, not offset order; Faust commits a
partition up to its highest contiguous acknowledged offset and would skip over a single
unfinished message. So a message is acknowledged only once every message received before it
on its partition is finished too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

M = TypeVar("M")


class AckTracker(Generic[M]):
    def __init__(self, partition_of: Callable[[M], Hashable], ack: Callable[[M], Any]) -> None:
        self.partition_of = partition_of
        self.ack = ack
        self.queues: dict[Hashable, deque[M]] = {}
        self.queued: set[int] = set()  # id() of messages received, not yet acknowledged
        self.finished: set[int] = set()  # id() of finished messages not yet acknowledged

    def received(self, messages: Iterable[M]) -> None:
        for m in messages:
            self.queues.setdefault(self.partition_of(m), deque()).append(m)
            self.queued.add(id(m))

    def finish(self, messages: Iterable[M]) -> int:
        """Mark messages finished; acknowledge every contiguous finished prefix. Returns how
        many were acknowledged."""
        touched = set()
        for m in messages:
            # a message of a revoked partition (finished late) is not ours to acknowledge
            if id(m) in self.queued:
                self.finished.add(id(m))
                touched.add(self.partition_of(m))
        acked = 0
        for partition in touched:
            queue = self.queues.get(partition)
            while queue and id(queue[0]) in self.finished:
                m = queue.popleft()
                self.finished.discard(id(m))
                self.queued.discard(id(m))
                self.ack(m)
                acked += 1
        return acked

    def pending(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def discard(self, messages: Iterable[M]) -> None:
        """Messages that will be read again (a stale batch): never acknowledged, and no longer
        ahead of the messages received after them."""
        for m in messages:
            if id(m) in self.queued:
                queue = self.queues.get(self.partition_of(m))
                if queue is not None:
                    queue.remove(m)
                self.queued.discard(id(m))
                self.finished.discard(id(m))

    def forget(self, partitions: Iterable[Hashable]) -> None:
        """A partition taken away by a rebalance: its messages will be read again elsewhere."""
        for partition in partitions:
            for m in self.queues.pop(partition, ()):
                self.finished.discard(id(m))
                self.queued.discard(id(m))
