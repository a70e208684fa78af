"""The composition root: one Faust app wired to settings, metrics, the sink and the web views.

Agents read like a sentence — take a batch, hand it to the pipeline — and acknowledge their
messages only when the pipeline returns (``take_events`` acks a batch after the loop body).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import faust
from faust.types import TP, EventT
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from processors.ingest import RawMessage
from processors.rules import Rules
from sinks.clickhouse import ClickHouseWriter
from sinks.readonly import NotReadOnly, check_read_only
from streams.metrics import Metrics
from streams.pipeline import IngestPipeline, headers_list
from streams.settings import Settings
from streams.signal_stage import SignalStage

log = logging.getLogger(__name__)
LAG_INTERVAL_S = 5.0


def _raw(event: Any) -> RawMessage:
    m = event.message
    ts = datetime.fromtimestamp(m.timestamp, UTC) if m.timestamp else None
    return RawMessage(m.topic, m.partition, m.offset, m.key, m.value, ts)


def _brokers(bootstrap: str) -> list[str]:
    return [f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip()]


class FaustStateTable:
    """The account-state table as the signal stage needs it.

    Faust's RocksDB store files a key under the partition of the event being processed; the
    stage writes after a batch, so it names that partition through one of its events.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self.stream: Any = None
        self.last_event: dict[int, Any] = {}

    def get(self, account_id: str) -> Any:
        return self.table.get(account_id)

    def items(self) -> Any:
        return self.table.items()

    def put(self, account_id: str, partition: int, value: Any) -> None:
        event = self.last_event.get(partition)
        if event is not None and self.stream is not None:
            self.stream._set_current_event(event)
        self.table[account_id] = value


def pending_inputs(app: faust.App, inputs: list[str], partition: int,
                   seen: dict[tuple[str, int], int]) -> set[str]:
    """Input topics of ``partition`` with messages the signal agent has not received yet."""
    pending = set()
    consumer = app.consumer
    assigned = consumer.assignment()
    committed = getattr(consumer, "_committed_offset", {})
    for topic in inputs:
        tp = TP(topic, partition)
        if tp not in assigned:
            continue
        highwater = consumer.highwater(tp)
        # nothing received yet this session: reading resumes at the committed offset
        next_offset = seen[(topic, partition)] + 1 if (topic, partition) in seen else \
            committed.get(tp) or 0
        # not fetched yet: it may hold older events, so it holds the watermark back
        if highwater is None or highwater > next_offset:
            pending.add(topic)
    return pending


def create_app(settings: Settings, writer: ClickHouseWriter, metrics: Metrics,
               rules: Rules) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=_brokers(settings.kafka_bootstrap),
        store="rocksdb://" if settings.state_store == "rocksdb" else "memory://",
        datadir=str(settings.local / "faust" / settings.app_id),  # created by run_worker
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        web_enabled=True,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        producer_acks=-1,
        # on shutdown, do not wait for messages still held (unacknowledged): they are simply
        # read again by the next worker, which is the at-least-once contract
        stream_wait_empty=False,
    )
    topics = settings.topics

    def raw_topic(*names: str) -> faust.TopicT:
        # bytes in, bytes out: decoding is ours, so a bad message becomes a dead letter
        return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw")

    input_topic = raw_topic(*topics.inputs)
    dead_letter_topic = raw_topic(topics.dead_letters)
    async def send_dead_letter(key: bytes | None, value: bytes,
                               headers: list[tuple[str, bytes]]) -> Any:
        delivery = await dead_letter_topic.send(key=key, value=value, headers=headers)
        return await delivery

    pipeline = IngestPipeline(settings, writer, metrics, send_dead_letter)

    def batches(stream: faust.StreamT[bytes]) -> AsyncIterator[Sequence[EventT[bytes]]]:
        # rows or seconds, whichever comes first; the batch is acked after the loop body
        return cast(faust.Stream[bytes], stream).take_events(
            settings.batch_max_rows, within=settings.batch_max_seconds
        )

    @app.agent(input_topic, name="ingest")
    async def ingest_events(stream: faust.StreamT[bytes]) -> None:
        async for events in batches(stream):
            await pipeline.handle_input([_raw(e) for e in events])

    @app.agent(dead_letter_topic, name="store-dead-letters")
    async def store_dead_letters(stream: faust.StreamT[bytes]) -> None:
        async for events in batches(stream):
            await pipeline.handle_dead_letters(
                [_raw(e) for e in events], [headers_list(e.message.headers) for e in events]
            )

    if settings.signals:
        _add_signal_agent(app, settings, rules, writer, metrics, input_topic, raw_topic)

    lag_labels: set[tuple[str, str]] = set()
    watched = {*topics.inputs, topics.dead_letters}

    @app.timer(LAG_INTERVAL_S, name="consumer-lag")  # type: ignore[untyped-decorator]
    async def measure_lag() -> None:
        consumer = app.consumer
        seen: set[tuple[str, str]] = set()
        committed = getattr(consumer, "_committed_offset", {})
        for tp in consumer.assignment():
            if tp.topic not in watched:
                continue
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            nxt = pipeline.stored_through.get((tp.topic, tp.partition))
            if nxt is None:
                nxt = committed.get(tp) or 0
            labels = (tp.topic, str(tp.partition))
            metrics.consumer_lag.labels(*labels).set(max(0, highwater - nxt))
            seen.add(labels)
        for labels in lag_labels - seen:
            metrics.consumer_lag.remove(*labels)
        lag_labels.clear()
        lag_labels.update(seen)

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            # aiohttp refuses a charset in content_type=, so the header is set as it is
            return self.bytes(generate_latest(metrics.registry),
                              headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/sql")
    class SqlView(View):
        """Read-only queries through the worker, which holds the embedded database open."""

        async def post(self, request: Request) -> Response:
            try:
                body = json.loads(await request.text())
                sql = check_read_only(str(body["sql"]))
            except NotReadOnly as exc:
                return self.json({"error": str(exc), "kind": "not_read_only"}, status=400)
            except (ValueError, KeyError, TypeError):
                return self.json({"error": 'send {"sql": "SELECT ..."}', "kind": "bad_request"},
                                 status=400)
            try:
                columns, rows = await writer.query_read_only(sql)
            except Exception as exc:  # noqa: BLE001 - the database's message goes to the user
                return self.json({"error": str(exc), "kind": "query_failed"}, status=400)
            return self.bytes(
                json.dumps({"columns": columns, "rows": rows}, default=str).encode(),
                content_type="application/json",
            )

    return app


def _add_signal_agent(app: faust.App, settings: Settings, rules: Rules, writer: ClickHouseWriter,
                      metrics: Metrics, input_topic: faust.TopicT,
                      raw_topic: Callable[..., faust.TopicT]) -> None:
    """The signals agent, its state table and its idle timer (see streams.signal_stage)."""
    topics = settings.topics
    outputs = {name: raw_topic(name) for name in (topics.signals, topics.alerts,
                                                   topics.account_tiers)}

    async def send(topic: str, key: bytes | None, value: bytes) -> Any:
        delivery = await outputs[topic].send(key=key, value=value)
        return await delivery

    accounts_table = app.Table(
        "accounts-state", default=None, partitions=settings.topic_partitions,
        schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
        # the changelog partition follows the key (account_id), like the input topics' keys
        use_partitioner=True,
    )
    state_table = FaustStateTable(accounts_table)
    stage_offsets: dict[tuple[str, int], int] = {}  # last offset the signal agent received
    stage = SignalStage(settings, rules, state_table, writer, metrics, send,
                        pending_topics=lambda p: pending_inputs(app, topics.inputs, p,
                                                                stage_offsets))

    @app.agent(input_topic, name="signals")
    async def detect_signals(stream: faust.StreamT[bytes]) -> None:
        state_table.stream = stream
        manual = cast(faust.Stream[bytes], stream)
        async for batch in manual.noack_take(settings.batch_max_rows,
                                             within=settings.signal_batch_seconds):
            events = cast(Sequence[EventT[bytes]], batch)  # noack_take yields events
            for e in events:
                m = e.message
                state_table.last_event[m.partition] = e
                stage_offsets[(m.topic, m.partition)] = m.offset
            tokens = await stage.handle([(_raw(e), e) for e in events])
            metrics.held_events.set(stage.held())
            for event in tokens:
                await manual.ack(event)

    @app.timer(1.0, name="signals-idle")  # type: ignore[untyped-decorator]
    async def release_idle_partitions() -> None:
        """Without new messages the agent does not run; held events must still get out."""
        if state_table.stream is None or not stage.held():
            return
        manual = cast(faust.Stream[bytes], state_table.stream)
        for event in await stage.handle([]):
            await manual.ack(event)
        metrics.held_events.set(stage.held())
