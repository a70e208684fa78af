"""What the agents do with a batch: decode, dead-letter, store, count — in that order.

Offsets are acknowledged by the agent only after a batch method here returns, i.e. after the
dead letters are on the dead-letter topic and the rows are in ClickHouse. A crash before that
means the batch is read again, and the idempotent sink stores it once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from processors.erasure import Erased
from processors.ingest import IngestBatch, RawMessage, count_by, ingest
from schemas.dead_letter import DeadLetter, from_message
from schemas.decode import EventTimeBounds
from sinks.clickhouse import ClickHouseWriter
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
    writer: ClickHouseWriter
    metrics: Metrics
    send_dead_letter: SendDeadLetter
    clock: Clock = _utc_now
    # next offset to store per (topic, partition): what the lag gauge measures against
    stored_through: dict[tuple[str, int], int] = field(default_factory=dict)
    # erased people and accounts: their events are dropped here (acknowledged, not stored)
    erased: Erased = field(default_factory=Erased)

    def decode(self, messages: Sequence[RawMessage]) -> IngestBatch:
        """Valid events and dead letters (each message decoded once, for rows and signals)."""
        batch = ingest(
            messages,
            max_bytes=self.settings.max_message_bytes,
            topic_for_type=self.settings.topics.for_type,
            # the wall clock once per batch: the latest plausible event time
            time_bounds=EventTimeBounds(earliest=self.settings.earliest_event_time,
                                        now=self.clock(),
                                        max_future_seconds=self.settings.max_future_seconds),
        )
        for topic, n in Counter(m.topic for m in messages).items():
            self.metrics.events_consumed.labels(topic).inc(n)
        if self.erased:
            kept = self.erased.scrub(batch.accepted)
            self.metrics.events_erased.inc(len(batch.accepted) - len(kept))
            batch.accepted = kept
        return batch

    async def store(self, messages: Sequence[RawMessage], batch: IngestBatch) -> None:
        """Dead letters on their topic, valid events in ClickHouse."""
        if batch.rejected:
            # on the topic before the offsets are committed; stored by the dead-letter agent
            await asyncio.gather(
                *[self.send_dead_letter(dl.key, dl.payload, dl.headers()) for dl in batch.rejected]
            )
            for reason, n in count_by(batch.rejected).items():
                self.metrics.events_rejected.labels(reason).inc(n)
        if batch.accepted:
            result = await self.writer.write_events(batch.accepted)
            self.metrics.record_write(result)
            stored_at = self.clock()
            observe = self.metrics.event_to_stored.observe
            for accepted in batch.accepted:
                observe(max(0.0, (stored_at - accepted.event.occurred_at).total_seconds()))
        self._advance(messages)

    async def handle_dead_letters(self, messages: Sequence[RawMessage],
                                  headers: Sequence[list[tuple[str, bytes]]]) -> None:
        letters: list[tuple[DeadLetter, datetime]] = []
        for message, hdrs in zip(messages, headers, strict=True):
            dl = from_message(hdrs, message.key, message.value,
                              fallback_id=f"{message.topic}:{message.partition}:{message.offset}")
            letters.append((dl, message.timestamp or self.clock()))
        result = await self.writer.write_dead_letters(letters)
        self.metrics.record_write(result)
        self._advance(messages)

    def _advance(self, messages: Iterable[RawMessage]) -> None:
        for message in messages:
            key = (message.topic, message.partition)
            if message.offset + 1 > self.stored_through.get(key, -1):
                self.stored_through[key] = message.offset + 1
