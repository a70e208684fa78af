"""Decoding a batch of input messages, and the worker's half of it: the dead letters.

The worker acknowledges a batch only after its dead letters are on the dead-letter topic (and
its events applied, see streams.signal_stage); ``radar store`` decodes the same messages the
same way (the judgement of a message depends on the message alone) and stores the valid ones.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from processors.erasure import Erased
from processors.ingest import IngestBatch, RawMessage, count_by, ingest
from schemas.decode import EventTimeBounds
from streams.metrics import Metrics
from streams.settings import Settings

# (key, value, headers) -> an awaitable that completes when the broker has the message
SendDeadLetter = Callable[[bytes | None, bytes, list[tuple[str, bytes]]], Awaitable[Any]]
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def headers_list(headers: Any) -> list[tuple[str, bytes]]:
    """Faust hands headers over as a list of pairs or as a mapping; make it a list."""
    if not headers:
        return []
    if isinstance(headers, Mapping):
        return [(str(k), bytes(v or b"")) for k, v in headers.items()]
    return [(str(k), bytes(v or b"")) for k, v in headers]


@dataclass
class IngestPipeline:
    settings: Settings
    metrics: Metrics
    send_dead_letter: SendDeadLetter | None = None
    clock: Clock = _utc_now
    # erased people and accounts: their events are dropped here (acknowledged, not stored)
    erased: Erased = field(default_factory=Erased)
    # radar_events_consumed counts what the workers read (the store decodes the same again)
    count_consumed: bool = True

    def decode(self, messages: Sequence[RawMessage], count_consumed: bool = True
               ) -> IngestBatch:
        """Valid events and dead letters (each message decoded once, for rows and signals).
        ``count_consumed``: False for messages counted when first read (forwarded events)."""
        batch = ingest(
            messages,
            max_bytes=self.settings.max_message_bytes,
            topic_for_type=self.settings.topics.for_type,
            # a message without a timestamp is judged by the wall clock, read once per batch
            time_bounds=EventTimeBounds(earliest=self.settings.earliest_event_time,
                                        now=self.clock(),
                                        max_future_seconds=self.settings.max_future_seconds),
        )
        if self.count_consumed and count_consumed:
            for topic, n in Counter(m.topic for m in messages).items():
                self.metrics.events_consumed.labels(topic).inc(n)
        if self.erased:
            kept = self.erased.scrub(batch.accepted)
            self.metrics.events_erased.inc(len(batch.accepted) - len(kept))
            batch.accepted = kept
        return batch

    async def dead_letter(self, batch: IngestBatch) -> None:
        """The batch's refused messages on the dead-letter topic (``radar store`` keeps them)."""
        if not batch.rejected:
            return
        assert self.send_dead_letter is not None, "a pipeline that dead-letters sends them"
        await asyncio.gather(
            *[self.send_dead_letter(dl.key, dl.payload, dl.headers()) for dl in batch.rejected])
        for reason, n in count_by(batch.rejected).items():
            self.metrics.events_rejected.labels(reason).inc(n)
