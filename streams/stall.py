"""Partitions that stop moving: lag behind them, and their committed offset unchanged for a
long time. A worker should never be in that state for long (held events are let out when their
sources turn idle, after ``RADAR_IDLE_SOURCE_SECONDS``), so it is worth a warning that says
what Faust and aiokafka know of the partition (streams.faust_internals.partition_report)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass


@dataclass
class _Seen:
    done: int
    since: float
    said: bool = False


class StallWatch:
    """Per partition, since when its committed offset has not moved while lag remained.
    ``observe`` returns the partitions newly found stalled (each is reported once per stall);
    partitions no longer observed are forgotten."""

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self._seen: dict[Hashable, _Seen] = {}

    def observe(self, ends: Iterable[tuple[Hashable, int | None, int]], now: float
                ) -> list[Hashable]:
        """``ends``: (partition, high-water mark or None while unknown, committed offset)."""
        stalled: list[Hashable] = []
        current: dict[Hashable, _Seen] = {}
        for key, highwater, done in ends:
            seen = self._seen.get(key)
            if highwater is None or highwater <= done or seen is None or seen.done != done:
                current[key] = _Seen(done, now)  # moving, caught up, or new: (re)start
                continue
            current[key] = seen
            if not seen.said and now - seen.since >= self.after_s:
                seen.said = True
                stalled.append(key)
        self._seen = current
        return stalled
