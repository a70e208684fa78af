"""The composition root of ``radar worker``: one Faust app wired to settings, metrics and the
signal stage. It needs no ClickHouse: everything it makes goes to Kafka, and ``radar store``
writes ClickHouse from there (SPEC section 11).

Agents read like a sentence — take a fetched batch, decode it, dead-letter what is refused,
apply the rest, acknowledge what is finished. The consumer delivers a whole fetch as one event
(streams.faust_internals), and a message is acknowledged only when its effects are on Kafka:
its dead letter, or the signals and state of its event — in offset order per partition
(streams.acks), so a committed offset never passes an unfinished message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any, cast

import faust
from faust.types import TP

from processors.erasure import Erased
from processors.ingest import RawMessage
from processors.rerouting import Origin, read_rerouted
from processors.rules import Rules
from streams.acks import AckTracker
from streams.erasure import Eraser, follow_erasures
from streams.faust_internals import (
    committed_offsets,
    count_revocation,
    is_stale,
    partition_report,
    use_batch_consumer,
)
from streams.metrics import Metrics
from streams.pipeline import IngestPipeline, headers_list
from streams.settings import Settings
from streams.signal_agent import signal_stage
from streams.stall import StallWatch
from streams.web import add_metrics_view

log = logging.getLogger(__name__)
LAG_INTERVAL_S = 5.0
# a partition with lag whose committed offset stays put this long past the idle time is reported
STALL_AFTER_S = 30.0
# batches applied whose sends are still in flight: the engine runs ahead of Kafka's acks by this
# many batches at most
MAX_BATCHES_IN_FLIGHT = 2


def _raw(m: Any) -> RawMessage:
    ts = datetime.fromtimestamp(m.timestamp, UTC) if m.timestamp else None
    return RawMessage(m.topic, m.partition, m.offset, m.key, m.value, ts)


def _forwarded(m: Any, origin: Origin) -> RawMessage:
    """A forwarded event as it was read where it came from."""
    ts = datetime.fromtimestamp(origin.timestamp_ms / 1000, UTC) \
        if origin.timestamp_ms is not None else None
    return RawMessage(origin.topic, origin.partition, origin.offset, m.key, m.value, ts)


def _brokers(bootstrap: str) -> list[str]:
    return [f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip()]


def create_app(settings: Settings, metrics: Metrics, rules: Rules,
               erased: Erased | None = None,
               erasures_from: dict[int, int] | None = None) -> faust.App:
    """``erased``: the erasures read before start; ``erasures_from``: where following the
    erasures topic goes on (see streams.erasure)."""
    erased = erased if erased is not None else Erased()
    app = faust.App(
        settings.app_id,
        broker=_brokers(settings.kafka_bootstrap),
        store="rocksdb://" if settings.state_store == "rocksdb" else "memory://",
        datadir=str(settings.local / "faust" / settings.app_id),  # created by run_worker
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 3),
        web_enabled=True,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        producer_acks=-1,
        # on shutdown, do not wait for messages still held (unacknowledged): they are simply
        # read again by the next worker, which is the at-least-once contract
        stream_wait_empty=False,
        # a fetch is one batch for the agents: this bounds its size
        broker_max_poll_records=settings.batch_max_rows,
        # signals, tiers and state changelog records go out in few, large produce requests
        producer_linger_ms=5,
        producer_max_batch_size=1024 * 1024,
    )
    topics = settings.topics
    rerouted = settings.rerouted_topic
    use_batch_consumer(app, {*topics.inputs, rerouted})

    def raw_topic(*names: str) -> faust.TopicT:
        # bytes in, bytes out: decoding is ours, so a bad message becomes a dead letter
        return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw")

    # the rerouted topic is read with the inputs, so its partition p goes with theirs
    input_topic = raw_topic(*topics.inputs, rerouted)
    dead_letter_topic = raw_topic(topics.dead_letters)
    async def send_dead_letter(key: bytes | None, value: bytes,
                               headers: list[tuple[str, bytes]]) -> Any:
        # force: sent now, not attached to the current event (Faust would hold it back until
        # that message's offset is committed, and the commit waits for this very delivery)
        delivery = await dead_letter_topic.send(key=key, value=value, headers=headers, force=True)
        return await delivery

    pipeline = IngestPipeline(settings, metrics, send_dead_letter, erased=erased)
    tracker: AckTracker[Any] = AckTracker(lambda m: m.tp, lambda m: app.consumer.ack(m))
    signals = signal_stage(app, settings, rules, metrics, raw_topic, tracker,
                            erased) if settings.signals else None

    async def finish_when_sent(rejecting: asyncio.Future[Any],
                               applying: asyncio.Future[list[Any]], refused: list[Any]) -> None:
        try:
            applied = await applying
        finally:
            await rejecting
        tracker.finish(refused)  # their dead letters are on the topic
        tracker.finish(applied)

    in_flight: deque[asyncio.Future[None]] = deque()
    # held while a batch is taken (decoded, handed to the engine): an erasure waits for it
    gate = asyncio.Lock()

    async def take(fetched: list[Any]) -> None:
        batch = signals.unseen(fetched) if signals is not None else fetched
        tracker.received(batch)
        inputs, forwarded, marks, done = [], [], [], []
        for m in batch:
            if m.topic != rerouted:
                inputs.append(m)
                continue
            read = read_rerouted(headers_list(m.headers), m.value)
            if isinstance(read, Origin):
                forwarded.append((m, read.at, _forwarded(m, read)))
            else:
                if read is None:
                    log.warning("%s[%d]@%d is neither a forwarded event nor a progress mark: "
                                "skipped", m.topic, m.partition, m.offset)
                else:
                    marks.append((m.partition, read))
                done.append(m)
        raws = [_raw(m) for m in inputs]
        decoded = pipeline.decode(raws)
        if signals is None:
            await pipeline.dead_letter(decoded)
            tracker.finish(batch)  # (the rerouted topic's too: nothing reads them)
            return
        # forwarded events were counted where they were read first
        again = pipeline.decode([raw for _, _, raw in forwarded], count_consumed=False)
        # dead letters go out while the engine runs, and the batch's signals and states are
        # sent while the next batch is applied; a message is acknowledged only once all of
        # that is done with it
        rejecting = asyncio.ensure_future(asyncio.gather(pipeline.dead_letter(decoded),
                                                         pipeline.dead_letter(again)))
        refused = {id(raw): m for raw, m in zip(raws, inputs, strict=True)}
        refused.update((id(raw), m) for m, _, raw in forwarded)
        places = {id(raw): at for _, at, raw in forwarded}
        accepted = [(a, refused.pop(id(a.source))) for a in decoded.accepted]
        arrived = [(a, places[id(a.source)], refused.pop(id(a.source))) for a in again.accepted]
        try:
            applying = await signals.handle(batch, accepted, arrived, marks,
                                            stale=lambda: is_stale(fetched, app))
        except BaseException:
            await rejecting
            raise
        if applying is None:  # a rebalance began while it waited for the stage
            await rejecting
            tracker.discard(batch)
            log.info("dropped a batch of %d message(s) fetched before a rebalance began: read "
                     "again from the committed offsets", len(batch))
            return
        # the marks took effect (and what is neither was skipped): nothing to wait for. Not
        # before the batch is known not stale: Faust commits the first run of acknowledged
        # offsets of a partition, wherever it starts
        tracker.finish(done)
        in_flight.append(asyncio.ensure_future(
            finish_when_sent(rejecting, applying, list(refused.values()))))

    async def drain() -> None:
        """Returns once every batch taken so far is done with."""
        if in_flight:
            await asyncio.wait(list(in_flight))

    @app.agent(input_topic, name="radar")
    async def process_inputs(stream: faust.StreamT[bytes]) -> None:
        if signals is not None:
            signals.table.stream = stream
        async for messages in cast(faust.Stream[bytes], stream).noack():  # one fetch: a list of messages
            async with gate:
                if is_stale(messages, app):
                    log.info("dropped a batch of %d message(s) fetched before the last "
                             "rebalance: read again from the committed offsets", len(messages))
                    continue
                await take(cast(list[Any], messages))
            # a failed send stops the agent here, as it would have without the overlap
            while in_flight and (len(in_flight) > MAX_BATCHES_IN_FLIGHT or in_flight[0].done()):
                await in_flight.popleft()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        count_revocation(app)  # every batch handed over before this one is stale now
        tracker.forget(revoked)
        if signals is not None:
            await signals.forget([tp for tp in revoked
                                  if tp.topic in topics.inputs or tp.topic == rerouted])

    watched = {*topics.inputs, rerouted}
    stalls = StallWatch(STALL_AFTER_S + settings.idle_source_seconds)

    @app.timer(LAG_INTERVAL_S, name="consumer-lag")  # type: ignore[untyped-decorator]
    async def measure_lag() -> None:
        consumer = app.consumer
        committed = committed_offsets(consumer)
        # committed: every effect of what is before is out
        ends = [(tp, consumer.highwater(tp), committed.get(tp) or 0)
                for tp in consumer.assignment() if tp.topic in watched]
        metrics.set_lags((tp.topic, tp.partition, high, done) for tp, high, done in ends)
        for tp in stalls.observe(ends, time.monotonic()):
            stage = signals.report(cast(TP, tp)) if signals is not None else "-"
            log.warning("no progress on %s for %.0f s with lag behind it: %s; stage: %s", tp,
                        stalls.after_s, partition_report(consumer, cast(TP, tp)), stage)

    eraser = Eraser(erased, signals.stage if signals is not None else None, metrics, gate,
                    drain)

    @app.task  # type: ignore[untyped-decorator]
    async def follow() -> None:
        await follow_erasures(settings, eraser, erasures_from or {})

    add_metrics_view(app, metrics)
    return app
