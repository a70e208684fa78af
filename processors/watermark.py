"""Event time per partition, and the reorder buffer that makes replays deterministic.

A partition's events arrive through several topics whose consumption interleaves differently
on every run. The watermark is the *slowest* topic's latest event time, counting only topics
that still have messages to deliver: a topic that is caught up cannot bring anything older.
Events are released to the engine in event-time order once the watermark has passed them, so
every run sees the same sequence and fires the same signals.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class PartitionClock:
    high: dict[str, float] = field(default_factory=dict)  # latest event time seen, per topic

    def observe(self, topic: str, event_time: float) -> None:
        if event_time > self.high.get(topic, float("-inf")):
            self.high[topic] = event_time

    def watermark(self, pending: Collection[str]) -> float | None:
        """``pending``: topics of this partition with messages not yet delivered.

        None while a pending topic has not delivered anything yet (it may hold older events).
        """
        if any(t not in self.high for t in pending):
            return None
        waiting = [self.high[t] for t in pending]
        if waiting:
            return min(waiting)
        return max(self.high.values()) if self.high else None


class ReorderBuffer(Generic[T]):
    """Holds items until the watermark passes them; releases them in (time, id) order."""

    def __init__(self) -> None:
        # (event time, tiebreak, arrival number, item): tuples compare fast, and the arrival
        # number keeps items themselves out of the comparison
        self._heap: list[tuple[float, str, int, T]] = []
        self._arrivals = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, event_time: float, tiebreak: str, item: T) -> None:
        self._arrivals += 1
        heapq.heappush(self._heap, (event_time, tiebreak, self._arrivals, item))

    def release(self, watermark: float) -> list[T]:
        out: list[T] = []
        heap = self._heap
        while heap and heap[0][0] <= watermark:
            out.append(heapq.heappop(heap)[3])
        return out

    def drain(self) -> list[T]:
        return self.release(float("inf"))
