"""Event time per partition, and the reorder buffer that makes replays deterministic.

A partition's events arrive through several topics (sources) whose consumption interleaves
differently on every run, and real sources arrive skewed: web interactions live, ad-platform
reports in daily batches, CRM changes weekly. The watermark is the *slowest* source's latest
event time, counting every source that may still deliver. A source stops holding it back only
once it has been known to be caught up for ``idle_s`` seconds of wall-clock time
(``SourceActivity``): a source caught up for a moment (the consumer read faster than its
producer writes) is not idle, and neither is one whose state is unknown (a broker that cannot
be reached tells nothing). A source that never delivered holds the watermark back the same way.
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
        """``pending``: sources of this partition that may still deliver (not idle).

        None while one of them has not delivered anything yet (it may hold older events).
        """
        if any(t not in self.high for t in pending):
            return None
        waiting = [self.high[t] for t in pending]
        if waiting:
            return min(waiting)
        return max(self.high.values()) if self.high else None


@dataclass
class SourceActivity:
    """Which sources of one partition may still deliver, by wall-clock time (seconds of a
    monotonic clock, handed in): a source is idle once it has been reported caught up, without
    a break, for ``idle_s``."""

    idle_s: float
    caught_up_since: dict[str, float] = field(default_factory=dict)
    idle: set[str] = field(default_factory=set)

    def report(self, source: str, caught_up: bool, now: float) -> bool:
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

    def holding(self, sources: Collection[str]) -> set[str]:
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
