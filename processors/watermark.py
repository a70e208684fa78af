"""Event time, and the reorder buffer that makes replays deterministic.

A worker's events arrive through several sources (each partition of each input topic) whose
consumption interleaves differently on every run, and real sources arrive skewed: web
interactions live, ad-platform reports in daily batches, CRM changes weekly. The watermark is
the *slowest* source's latest event time, counting every source that may still deliver. A
source stops holding it back only once it has been known to be caught up for ``idle_s``
seconds of wall-clock time (``SourceActivity``): a source caught up for a moment (the consumer
read faster than its producer writes) is not idle, and neither is one whose state is unknown
(a broker that cannot be reached tells nothing). A source that never delivered holds the
watermark back the same way.

Events are released to the engine in one sequence, whatever the fetches: the merge of the
sources' logs by event time. An event written after later ones of its source (late data) is
placed where its source had got to — at the source's latest event time so far — never behind a
watermark that may already have passed it; events at the same place go in source order, then
in their source's order. An event is released once no source that may still deliver can bring
one that goes before it, so every run sees the same sequence and fires the same signals.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


Source = tuple[str, int]  # an input topic's partition: one log, in the order it was written


def slowest(sources: Iterable[tuple[Source, float | None, bool]]
            ) -> tuple[float | None, Source | None]:
    """The watermark over ``(source, latest event time or None, idle)``: the latest time of the
    slowest source that may still deliver (None while one of them has delivered nothing: it
    may hold older events), or of any source when every one is idle; and the first source that
    may still deliver still at the watermark itself (None when every one is idle): it, and any
    source after it, may still bring an event of exactly that time."""
    watermark: float | None = None
    first: Source | None = None
    latest: float | None = None
    for source, t, idle in sources:
        if not idle:
            if t is None:
                return None, None
            if watermark is None or t < watermark or t == watermark and first is not None \
                    and source < first:
                watermark, first = t, source
        elif t is not None and (latest is None or t > latest):
            latest = t
    if watermark is not None:
        return watermark, first
    return latest, None


def _offset(step: tuple[int, float]) -> int:
    return step[0]


@dataclass
class EventClock:
    """The latest event time received from each source (topic, partition) a worker reads.

    Events of one account may come through any partition of any input topic (a producer
    without keys spreads them), so event time is judged over every source the worker reads,
    not per partition.

    Where a source had got to is a function of its log up to an offset; a reader that starts at
    a committed offset (after a restart or a rebalance) must start from what that log gave
    before it, or an event late in its source would be placed differently (Kafka Streams keeps
    its partition time in the commit's metadata for the same reason). So the clock keeps, per
    source, the offsets at which its latest time rose (``steps``, from the last committed
    offset on): ``high_before`` gives what goes with a commit, and ``seed`` starts a reader
    from it.
    """

    high: dict[Source, float] = field(default_factory=dict)
    steps: dict[Source, list[tuple[int, float]]] = field(default_factory=dict)

    def observe(self, source: Source, event_time: float, offset: int | None = None) -> float:
        """Returns the event's place in event time: its own time, or the source's latest event
        time so far if that is later (the event is late in its source). ``offset``: the
        event's offset in its source (without it, no step is kept)."""
        high = self.high.get(source)
        if high is None or event_time > high:
            self.high[source] = event_time
            if offset is not None:
                self.steps.setdefault(source, []).append((offset, event_time))
            return event_time
        return high

    def seed(self, source: Source, offset: int, high: float) -> None:
        """Reading ``source`` starts at ``offset``, where its latest event time was ``high``
        (read from the commit): before any of its events is observed."""
        if source not in self.high:
            self.high[source] = high
            self.steps[source] = [(offset - 1, high)]

    def high_before(self, source: Source, offset: int) -> float | None:
        """The source's latest event time over its offsets below ``offset`` (None if unknown:
        nothing observed below it since the last ``prune``)."""
        steps = self.steps.get(source, [])
        i = bisect_left(steps, offset, key=_offset)  # (observed in offset order)
        return steps[i - 1][1] if i else None

    def prune(self, source: Source, offset: int) -> None:
        """``offset`` is committed: the steps below it are not needed any more but the last."""
        steps = self.steps.get(source)
        if steps:
            del steps[:max(bisect_left(steps, offset, key=_offset) - 1, 0)]

    def watermark(self, pending: Collection[Source]) -> float | None:
        """``pending``: the sources that may still deliver (not idle).

        None while one of them has not delivered anything yet (it may hold older events).
        """
        return self.slowest(pending)[0]

    def slowest(self, pending: Collection[Source]) -> tuple[float | None, Source | None]:
        """The watermark, and the first of the pending sources still at it (``slowest``)."""
        high = self.high
        waiting = set(pending)
        return slowest([(s, high.get(s), False) for s in waiting] +
                       [(s, t, True) for s, t in high.items() if s not in waiting])

    def forget(self, partitions: Collection[int]) -> None:
        """Sources of partitions a rebalance took away: their new owner judges them."""
        for source in [s for s in self.high if s[1] in partitions]:
            del self.high[source]
            self.steps.pop(source, None)


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

    def forget(self, sources: Collection[Source]) -> None:
        """What was known of ``sources`` no longer holds (their partitions were revoked; if they
        come back, reading starts again from the committed offset): they are not idle until
        reported caught up again for ``idle_s``."""
        for source in sources:
            self.caught_up_since.pop(source, None)
            self.idle.discard(source)

    def holding(self, sources: Collection[Source]) -> set[Source]:
        """The sources that may still bring older events: every one that is not idle."""
        return {s for s in sources if s not in self.idle}


class ReorderBuffer(Generic[T]):
    """Holds items until the watermark passes them; releases them in (time, source, offset)
    order: the order of the merge of the sources' logs."""

    def __init__(self) -> None:
        # (time, source, offset, arrival number, item): tuples compare fast, and the arrival
        # number (a redelivered message has the same place) keeps items out of the comparison
        self._heap: list[tuple[float, Source, int, int, T]] = []
        self._arrivals = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, at: float, source: Source, offset: int, item: T) -> None:
        """``at``: the item's place in event time (``EventClock.observe``)."""
        self._arrivals += 1
        heapq.heappush(self._heap, (at, source, offset, self._arrivals, item))

    def release(self, watermark: float, until: Source | None = None) -> list[T]:
        """The items before the watermark, and those at it from sources up to ``until``
        (``EventClock.slowest``; every source when None): what any source may still bring
        goes after them."""
        out: list[T] = []
        heap = self._heap
        while heap:
            at, source = heap[0][0], heap[0][1]
            if at > watermark or at == watermark and until is not None and source > until:
                break
            out.append(heapq.heappop(heap)[4])
        return out

    def drain(self) -> list[T]:
        return self.release(float("inf"))

    def discard(self, drop: Callable[[T], bool]) -> list[T]:
        """Take out the items ``drop`` selects (whatever their time); returns them."""
        kept = [entry for entry in self._heap if not drop(entry[4])]
        dropped = [entry[4] for entry in self._heap if drop(entry[4])]
        heapq.heapify(kept)
        self._heap = kept
        return dropped


HIGH_METADATA = "radar-high:"  # commit metadata: a source's latest event time before the offset


def encode_high(high: float | None) -> str:
    """The commit metadata for a source's latest event time (exact: a float's repr)."""
    return "" if high is None else f"{HIGH_METADATA}{high!r}"


def decode_high(metadata: str | None) -> float | None:
    """The latest event time in commit metadata; None for anything else (no metadata, another
    client's, a malformed one): the reader then starts from nothing, as before."""
    if not metadata or not metadata.startswith(HIGH_METADATA):
        return None
    try:
        high = float(metadata[len(HIGH_METADATA):])
    except ValueError:
        return None
    return high if high == high and abs(high) != float("inf") else None
