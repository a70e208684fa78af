"""Event time, and the reorder buffer that makes replays deterministic.

A worker's events arrive through several sources (each partition of each input topic) whose
consumption interleaves differently on every run, and real sources arrive skewed: web
interactions live, ad-platform reports in daily batches, CRM changes weekly. The watermark is
the *slowest* source's latest event time, counting every source that may still deliver. A
source stops holding it back only once it has been known to be caught up for ``idle_s``
seconds of wall-clock time (``SourceActivity``): a source caught up for a moment (the consumer
read faster than its producer writes) is not idle, and neither is one whose state is unknown
(a broker that cannot be reached tells nothing). A source that never delivered holds the
watermark back the same way. Events are released to the engine in event-time order once the
watermark has passed them, so every run sees the same sequence and fires the same signals.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


Source = tuple[str, int]  # an input topic's partition: one log, in the order it was written


@dataclass
class EventClock:
    """The latest event time received from each source (topic, partition) a worker reads.

    Events of one account may come through any partition of any input topic (a producer
    without keys spreads them), so event time is judged over every source the worker reads,
    not per partition.
    """

    high: dict[Source, float] = field(default_factory=dict)

    def observe(self, source: Source, event_time: float) -> None:
        if event_time > self.high.get(source, float("-inf")):
            self.high[source] = event_time

    def watermark(self, pending: Collection[Source]) -> float | None:
        """``pending``: the sources that may still deliver (not idle).

        None while one of them has not delivered anything yet (it may hold older events).
        """
        high = self.high
        waiting: list[float] = []
        for source in pending:
            t = high.get(source)
            if t is None:
                return None
            waiting.append(t)
        if waiting:
            return min(waiting)
        return max(high.values()) if high else None

    def forget(self, partitions: Collection[int]) -> None:
        """Sources of partitions a rebalance took away: their new owner judges them."""
        for source in [s for s in self.high if s[1] in partitions]:
            del self.high[source]


@dataclass
class SourceActivity:
    """Which sources may still deliver, by wall-clock time (seconds of a
    monotonic clock, handed in): a source is idle once it has been reported caught up, without
    a break, for ``idle_s``."""

    idle_s: float
    caught_up_since: dict[Source, float] = field(default_factory=dict)
    idle: set[Source] = field(default_factory=set)

    def report(self, source: Source, caught_up: bool, now: float) -> bool:
        """What is known of ``source`` now: caught up (everything up to the broker's high-water
        mark received, in a fetch answered just now) or not (behind, or not known: a fetch that
        did not answer). Returns True when the source has just turned idle."""
        if not caught_up:
            self.caught_up_since.pop(source, None)
            self.idle.discard(source)
            return False
        since = self.caught_up_since.setdefault(source, now)
        if source not in self.idle and now - since >= self.idle_s:
            self.idle.add(source)
            return True
        return False

    def holding(self, sources: Collection[Source]) -> set[Source]:
        """The sources that may still bring older events: every one that is not idle."""
        return {s for s in sources if s not in self.idle}


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

    def discard(self, drop: Callable[[T], bool]) -> list[T]:
        """Take out the items ``drop`` selects (whatever their time); returns them."""
        kept = [entry for entry in self._heap if not drop(entry[3])]
        dropped = [entry[3] for entry in self._heap if drop(entry[3])]
        heapq.heapify(kept)
        self._heap = kept
        return dropped
