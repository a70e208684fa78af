"""``radar store``: ClickHouse written from the topics (SPEC section 11).

The worker needs no database; this process keeps the analysts' tables from what is on Kafka:
``events`` from the input topics (decoded as the worker decodes them: a message's judgement
depends on the message alone, ``processors.ingest``), ``dead_letters`` from the dead-letter
topic, ``signals`` (latest status) from the signals topic, ``account_state`` from the
compacted account-state topic and ``alert_deliveries`` from radar notify's compacted deliveries
topic.

One batch at a time: fetch, insert each table's rows, then commit the offsets. A crash between
an insert and its commit reads the batch again, and the writer stores each row once
(``sinks.clickhouse``). With embedded ClickHouse this is the one process that opens the
database: it answers ``radar sql`` (``/sql``) and ``radar erase`` (``/erase``) and leaves a
state file saying where (``streams.store_client``). With a server, several may run: they
share the partitions as one consumer group.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from processors.erasure import Erased, SubjectKind, scrub_signals, scrub_state_row
from processors.ingest import RawMessage
from schemas.dead_letter import from_message
from schemas.notify import DeliveryRecord
from schemas.signals import Signal
from sinks.analyst import AnalystQueries
from sinks.clickhouse import ClickHouseWriter
from sinks.erasure import erase as erase_in_clickhouse
from sinks.rows import delivery_problem
from sinks.sink import Sink
from streams.erasure import Eraser, follow_erasures, read_erasures, send_erasure_record
from streams.metrics import Metrics
from streams.pipeline import IngestPipeline
from streams.settings import Settings
from streams.store_client import check_web_exposure, query_limits, store_state_file

log = logging.getLogger(__name__)
POLL_TIMEOUT_MS = 200
STOP_GRACE_S = 45.0


@dataclass(frozen=True, slots=True)
class Record:
    """A consumed Kafka message, as the store needs it (whatever client read it)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None
    headers: Sequence[tuple[str, bytes]] = ()

    def raw(self) -> RawMessage:
        ts = None if self.timestamp_ms is None else \
            datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)
        return RawMessage(self.topic, self.partition, self.offset, self.key, self.value, ts)


@dataclass
class StoreBatch:
    """What one fetch holds, by table."""

    inputs: list[RawMessage] = field(default_factory=list)
    letters: list[Record] = field(default_factory=list)
    signals: list[Record] = field(default_factory=list)
    states: list[Record] = field(default_factory=list)
    deliveries: list[Record] = field(default_factory=list)


class Store:
    """Writes fetched records into ClickHouse; the consumer loop is ``run_store``'s."""

    def __init__(self, settings: Settings, writer: Sink, metrics: Metrics,
                 erased: Erased) -> None:
        self.settings = settings
        self.writer = writer
        self.metrics = metrics
        self.pipeline = IngestPipeline(settings, metrics, erased=erased,  # decodes only
                                       count_consumed=False)
        topics = settings.topics
        self.inputs = frozenset(topics.inputs)
        self.kinds = {topics.dead_letters: "letters", topics.signals: "signals",
                      topics.account_state: "states", topics.notify_deliveries: "deliveries"}
        # held while a batch is decoded and inserted: an erasure waits for it
        self.gate = asyncio.Lock()

    @property
    def topics(self) -> list[str]:
        return sorted(self.inputs) + sorted(self.kinds)

    def split(self, records: Sequence[Record]) -> StoreBatch:
        batch = StoreBatch()
        for r in records:
            if r.topic in self.inputs:
                batch.inputs.append(r.raw())
            else:
                getattr(batch, self.kinds[r.topic]).append(r)
        return batch

    async def store(self, records: Sequence[Record]) -> None:
        """Every table's rows of the batch, inserted (retried until they are)."""
        async with self.gate:
            batch = self.split(records)
            if batch.inputs:
                await self._events(batch.inputs)
            if batch.letters:
                await self._dead_letters(batch.letters)
            if batch.signals:
                await self._signals(batch.signals)
            if batch.states:
                lines = self._state_lines(batch.states)
                if lines:
                    self.metrics.record_write(await self.writer.write_account_state_lines(lines))
            if batch.deliveries:
                await self._deliveries(batch.deliveries)

    def _state_lines(self, records: list[Record]) -> list[bytes]:
        """The account-state rows to insert, as they came (a tombstone is an erased account:
        skipped), with erased subjects taken out when there are any."""
        lines = [r.value for r in records if r.value]
        erased = self.pipeline.erased
        if not erased:
            return lines
        kept = []
        for line in lines:
            row = scrub_state_row(json.loads(line), erased)
            if row is not None:
                kept.append(json.dumps(row, separators=(",", ":")).encode())
        return kept

    async def _events(self, messages: list[RawMessage]) -> None:
        accepted = self.pipeline.decode(messages).accepted  # the refused: on the dead letters
        if not accepted:
            return
        self.metrics.record_write(await self.writer.write_events(accepted))
        stored_at = datetime.now(UTC).timestamp()
        observe = self.metrics.event_to_stored.observe
        for a in accepted:
            observe(max(0.0, stored_at - a.event.occurred_at.timestamp()))

    async def _dead_letters(self, records: list[Record]) -> None:
        letters = []
        for r in records:
            dl = from_message(r.headers, r.key, r.value,
                              fallback_id=f"{r.topic}:{r.partition}:{r.offset}")
            failed_at = r.raw().timestamp or datetime.now(UTC)
            letters.append((dl, failed_at))
        self.metrics.record_write(await self.writer.write_dead_letters(letters))

    def _skip(self, r: Record, what: str, why: str) -> None:
        """A record that is not what its topic holds: kept out, counted, said loudly."""
        self.metrics.store_skipped.labels(r.topic).inc()
        log.error("%s[%d]@%d is not %s, not stored: %s", r.topic, r.partition, r.offset, what,
                  why)

    async def _signals(self, records: list[Record]) -> None:
        signals = []
        for r in records:
            try:
                signals.append(Signal.model_validate_json(r.value or b""))
            except ValidationError as exc:  # not the worker's
                self._skip(r, "a signal", exc.errors()[0]["msg"])
        # sent before the worker that made them learned of an erasure: kept out, or the
        # person's name taken out of the evidence, as the erasure did to those stored
        signals = scrub_signals(signals, self.pipeline.erased)
        if signals:
            self.metrics.record_write(await self.writer.write_signals(signals))

    async def _deliveries(self, records: list[Record]) -> None:
        deliveries = []
        for r in records:
            if not r.value:
                continue  # a tombstone: nothing to store (a stored row stays)
            try:
                record = DeliveryRecord.model_validate_json(r.value)
            except ValidationError as exc:  # not radar notify's
                self._skip(r, "a delivery record", exc.errors()[0]["msg"])
                continue
            problem = delivery_problem(record)
            if problem is not None:
                self._skip(r, "a delivery record", problem)
            elif not (record.account_id is not None
                      and self.pipeline.erased.account_erased(record.account_id)):
                deliveries.append(record)  # an erased account's are kept out, as its signals
        if deliveries:
            self.metrics.record_write(await self.writer.write_deliveries(deliveries))


def _record(m: Any) -> Record:
    return Record(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp,
                  list(m.headers or ()))


async def _serve(settings: Settings, store: Store, metrics: Metrics,
                 analyst: AnalystQueries, eraser: Eraser) -> Any:
    from aiohttp import web

    from streams.web import store_web_app

    runner = web.AppRunner(store_web_app(settings, metrics, analyst, eraser))
    await runner.setup()
    await web.TCPSite(runner, settings.web_host, settings.store_port).start()
    return runner


def forget_revoked(assigned: Collection[Any], positions: dict[Any, int]) -> None:
    """Drop the positions of partitions no longer assigned: if one comes back, where to read is
    asked again (another store may have stored past it meanwhile)."""
    for tp in [tp for tp in positions if tp not in assigned]:
        del positions[tp]


async def consume(settings: Settings, store: Store, stopping: asyncio.Event) -> None:
    """Fetch, store, commit, until ``stopping`` is set; then finish the batch in hand."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import CommitFailedError, KafkaError

    consumer = AIOKafkaConsumer(
        *store.topics, bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.store_group, client_id="radar-store",
        enable_auto_commit=False, auto_offset_reset="earliest",
        max_poll_records=settings.batch_max_rows,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    positions: dict[Any, int] = {}
    try:
        while not stopping.is_set():
            fetched = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS,
                                             max_records=settings.batch_max_rows)
            if fetched:
                records = [_record(m) for batch in fetched.values() for m in batch]
                await store.store(records)
                offsets = {tp: batch[-1].offset + 1 for tp, batch in fetched.items()}
                try:
                    await consumer.commit(offsets)
                except (CommitFailedError, KafkaError) as exc:
                    # a rebalance gave the partitions to another store: it reads the batch
                    # again, and the writer stores each row once
                    log.warning("commit failed (%s); the batch is read again", exc)
                positions.update(offsets)
            assigned = consumer.assignment()
            forget_revoked(assigned, positions)
            for tp in assigned:
                if tp not in positions:
                    with contextlib.suppress(KafkaError, AssertionError):
                        positions[tp] = await consumer.position(tp)
            store.metrics.set_lags((tp.topic, tp.partition, consumer.highwater(tp),
                                    positions.get(tp)) for tp in assigned)
    finally:
        await consumer.stop()


async def run(settings: Settings) -> None:
    check_web_exposure(settings)
    writer = ClickHouseWriter(settings.dsn, events_ttl_days=settings.events_ttl_days)
    # fail fast, with a clear message, before Kafka is touched
    await asyncio.get_running_loop().run_in_executor(None, writer.open_blocking)
    analyst = AnalystQueries(settings.dsn, query_limits(settings))
    metrics = Metrics()
    erased = Erased()
    # every erasure so far, before anything is stored (streams.erasure)
    erasures_from = await asyncio.to_thread(read_erasures, settings, erased)
    store = Store(settings, writer, metrics, erased)

    async def publish(key: bytes, value: bytes) -> None:
        await asyncio.to_thread(send_erasure_record, settings, key, value)

    async def erase_tables(kind: SubjectKind, subject_id: str) -> dict[str, int]:
        return await writer.on_client(lambda client: erase_in_clickhouse(
            client, kind, subject_id, lambda: datetime.now(UTC)))

    async def nothing_in_flight() -> None:
        """A batch is inserted under the gate: once it is held, nothing is in flight."""

    eraser = Eraser(erased, None, metrics, store.gate, nothing_in_flight, publish,
                    erase_tables)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    runner = await _serve(settings, store, metrics, analyst, eraser)
    state = store_state_file(settings)
    if state is not None:
        state.write_text(json.dumps({"pid": os.getpid(), "url": settings.store_url}))
    following = asyncio.ensure_future(follow_erasures(settings, eraser, erasures_from))
    consuming = asyncio.ensure_future(consume(settings, store, stopping))
    stopped = asyncio.ensure_future(stopping.wait())
    try:
        # until stopped; an error in either task stops the store, loudly
        done, _ = await asyncio.wait({following, consuming, stopped},
                                     return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        stopping.set()
        following.cancel()
        stopped.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.gather(consuming, following,
                                                  return_exceptions=True), STOP_GRACE_S)
        if state is not None:
            with contextlib.suppress(OSError, ValueError):
                if json.loads(state.read_text()).get("pid") == os.getpid():
                    state.unlink()
        await runner.cleanup()
        analyst.close()
        writer.close_blocking()


def run_store(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper().replace("CRIT", "CRITICAL")
                        .replace("WARN", "WARNING"),
                        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s")
    asyncio.run(run(settings))
