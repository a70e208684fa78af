"""Misrouted events on their way to their account's owner, and the progress marks that let an
owner judge event time over every source, wherever it is read (SPEC sections 9 and 11). Pure.

With several workers, each owns whole partitions: of every input topic and of the state table.
An event that arrives on another partition than its account's (a producer without keys, another
client's partitioner) is forwarded, as it came, to its account's partition of the internal
topic ``<app id>-rerouted``, with where it came from (topic, partition, offset) and its place in
event time there; the owner holds and applies it as if it had read it from that source.

After the forwards of each batch, and at least every few seconds, every worker writes a progress
mark to every partition of that topic: for each source it reads, its latest event time and
whether it is idle. A mark follows, on its partition, every forward written before it, so it
tells that partition's owner that nothing older from that source is still on its way. An
owner's watermark for a partition is then the slowest source that may still deliver, over every
source of the inputs — its own partition's sources as it reads them, all others by their latest
marks — which is what one worker reading everything would have: the same events, in the same
sequence, whatever the assignment.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

from processors.watermark import Source, slowest

ORIGIN_HEADER = "radar-origin"  # on a forwarded event: where it came from
PROGRESS_HEADER = "radar-progress"  # on a progress mark

# source -> (its latest event time read so far, or None before its first event; idle)
Progress = dict[Source, tuple[float | None, bool]]


@dataclass(frozen=True)
class Origin:
    """Where a forwarded event came from, and its place in event time there."""

    topic: str
    partition: int
    offset: int
    at: float
    timestamp_ms: int | None  # the original message's timestamp (for alert latency)

    def header(self) -> bytes:
        # floats go through JSON as their repr: the owner reads back exactly the same time
        return json.dumps([self.topic, self.partition, self.offset, self.at,
                           self.timestamp_ms]).encode()


def encode_progress(progress: Progress) -> bytes:
    return json.dumps(sorted([topic, partition, high, idle]
                             for (topic, partition), (high, idle) in progress.items())).encode()


def _origin(header: bytes) -> Origin | None:
    try:
        topic, partition, offset, at, timestamp_ms = json.loads(header)
    except (ValueError, TypeError):
        return None
    if not (isinstance(topic, str) and type(partition) is int and type(offset) is int
            and isinstance(at, int | float) and not isinstance(at, bool) and math.isfinite(at)
            and (timestamp_ms is None or type(timestamp_ms) is int)):
        return None
    return Origin(topic, partition, offset, float(at), timestamp_ms)


def _progress(value: bytes | None) -> Progress | None:
    try:
        entries = json.loads(value or b"")
    except ValueError:
        return None
    if not isinstance(entries, list):
        return None
    progress: Progress = {}
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 4):
            return None
        topic, partition, high, idle = entry
        if not (isinstance(topic, str) and type(partition) is int and isinstance(idle, bool)
                and (high is None or isinstance(high, int | float)
                     and not isinstance(high, bool) and math.isfinite(high))):
            return None
        progress[(topic, partition)] = (None if high is None else float(high), idle)
    return progress


def read_rerouted(headers: Iterable[tuple[str, bytes]], value: bytes | None
                  ) -> Origin | Progress | None:
    """A message of the rerouted topic: a forwarded event's origin, a progress mark, or None
    when it is neither (not written by a worker)."""
    for name, header in headers:
        if name == ORIGIN_HEADER:
            return _origin(header)
        if name == PROGRESS_HEADER:
            return _progress(value)
    return None


def partition_watermark(partition: int, every: Collection[Source], assigned: Collection[Source],
                        holding: Collection[Source], high: Mapping[Source, float],
                        marks: Progress) -> tuple[float | None, Source | None]:
    """A partition's watermark with several workers, and the first source still at it
    (``processors.watermark.slowest``), over ``every`` source of the inputs: the partition's
    own sources read here (``assigned``; ``holding``: those that may still deliver) by their
    latest event time ``high``, every other by its latest progress mark read on the partition
    (a forwarded event comes before the marks that count it). None while a source is not
    known: nothing marked yet, or nothing delivered by one that may still deliver."""
    if not every:
        return None, None
    unknown = (None, False)  # nothing marked yet: it may hold anything

    def states() -> Iterator[tuple[Source, float | None, bool]]:
        for source in every:
            if source[1] == partition and source in assigned:
                yield source, high.get(source), source not in holding
            else:
                yield (source, *marks.get(source, unknown))

    return slowest(states())
