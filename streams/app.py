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
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import faust
from faust.types import TP, Message

from processors.erasure import Erased
from processors.ingest import RawMessage
from processors.rerouting import Origin, Progress, read_rerouted
from processors.rules import Rules
from processors.watermark import Source, SourceActivity
from streams.acks import AckTracker
from streams.erasure import Eraser, follow_erasures
from streams.faust_internals import (
    committed_offsets,
    count_revocation,
    is_stale,
    last_poll,
    partition_count,
    partition_report,
    set_current_event,
    set_table_serializers,
    use_batch_consumer,
)
from streams.metrics import Metrics
from streams.pipeline import IngestPipeline, headers_list
from streams.settings import Settings
from streams.signal_stage import Rerouter, SignalStage
from streams.stall import StallWatch
from streams.state_codec import STATE_CODEC
from streams.web import add_metrics_view

log = logging.getLogger(__name__)
LAG_INTERVAL_S = 5.0
# a partition with lag whose committed offset stays put this long past the idle time is reported
STALL_AFTER_S = 30.0
IDLE_STEP_S = 0.25  # how often the signal stage steps when no messages come
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


class FaustStateTable:
    """The account-state table as the signal stage needs it.

    Faust's RocksDB store files a key under the partition of the event being processed; the
    stage writes after a batch, and an account's state belongs to the account's own partition
    whatever partition its events came on, so ``put`` names that partition through an event
    of its own (the changelog partition follows the key: ``use_partitioner``).
    """

    def __init__(self, app: faust.App, table: Any) -> None:
        self.app = app
        self.table = table
        self.stream: Any = None
        self.events: dict[int, Any] = {}

    def get(self, account_id: str) -> Any:
        return self.table.get(account_id)

    def items(self) -> Any:
        return self.table.items()

    def _event(self, partition: int) -> Any:
        event = self.events.get(partition)
        if event is None:
            name = self.table.name
            message = Message(name, partition, -1, 0.0, 0, None, None, None, None,
                              tp=TP(name, partition))
            event = self.events[partition] = self.app.create_event(None, None, {}, message)
        return event

    def put(self, account_id: str, partition: int, value: Any) -> None:
        if self.stream is not None:
            set_current_event(self.stream, self._event(partition))
        if value is not None:
            self.table[account_id] = value
        elif account_id in self.table:
            del self.table[account_id]  # a tombstone in the changelog


# the account-state table (changelog topic ``<app id>-accounts-changelog``). Named
# ``accounts-state`` before its changelog keys were the raw account_id: that changelog, keyed
# by the JSON-encoded id, filed states on other partitions than their accounts' events
ACCOUNTS_TABLE = "accounts"

# a fetch answered within this long tells what a partition holds now; an older answer (a
# broker that cannot be reached, a paused partition) tells nothing, and nothing is idle on it
FRESH_FETCH_S = 5.0


def input_sources(app: faust.App, inputs: list[str], seen: dict[tuple[str, int], int],
                  activity: SourceActivity, metrics: Metrics
                  ) -> tuple[set[Source], set[Source]]:
    """The input sources (topic, partition) assigned here, and those of them that may still
    bring older events: all but those known caught up, by fetches answered just now, for the
    idle time (SourceActivity)."""
    consumer = app.consumer
    committed = committed_offsets(consumer)
    polled = last_poll(consumer)  # None while unknown: nothing is idle
    now, wall_ms = time.monotonic(), time.time() * 1000
    wanted = set(inputs)
    assigned: set[Source] = set()
    for tp in consumer.assignment():
        if tp.topic not in wanted:
            continue
        source = (tp.topic, tp.partition)
        assigned.add(source)
        highwater = consumer.highwater(tp)
        # nothing received yet this session: reading resumes at the committed offset
        next_offset = seen[source] + 1 if source in seen else committed.get(tp) or 0
        answered = polled(tp) if polled is not None else None
        fresh = answered is not None and wall_ms - answered <= FRESH_FETCH_S * 1000
        caught_up = fresh and highwater is not None and highwater <= next_offset
        if activity.report(source, caught_up, now):
            metrics.idle_releases.inc()
    return assigned, activity.holding(assigned)


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
    signals = _signal_stage(app, settings, rules, metrics, raw_topic, tracker,
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
            log.warning("no progress on %s for %.0f s with lag behind it: %s", tp,
                        stalls.after_s, partition_report(consumer, cast(TP, tp)))

    eraser = Eraser(erased, signals.stage if signals is not None else None, metrics, gate,
                    drain)

    @app.task  # type: ignore[untyped-decorator]
    async def follow() -> None:
        await follow_erasures(settings, eraser, erasures_from or {})

    add_metrics_view(app, metrics)
    return app


class SignalAgentState:
    """The signal stage, its account table and what it has received, per partition."""

    def __init__(self, stage: SignalStage, table: FaustStateTable,
                 offsets: dict[tuple[str, int], int], activity: SourceActivity,
                 metrics: Metrics) -> None:
        self.stage = stage
        self.table = table
        # the last offset handed to the stage per (topic, partition) of the inputs and of the
        # rerouted topic, since it was assigned
        self.offsets = offsets
        self.activity = activity  # which inputs are caught up, idle
        self.metrics = metrics

    def unseen(self, batch: list[Any]) -> list[Any]:
        """The batch but the messages it has handed to the stage already since the partition
        was assigned: Faust seeks a partition without a committed offset back to its beginning
        whenever it seeks (after a table's recovery too), and a message read twice would be
        judged late the second time and acknowledged twice. The first copy is acknowledged
        once handled."""
        offsets = self.offsets
        fresh = [m for m in batch if m.offset > offsets.get((m.topic, m.partition), -1)]
        if len(fresh) < len(batch):
            log.warning("%d message(s) of this batch were read already since their partitions "
                        "were assigned (a seek back): skipped", len(batch) - len(fresh))
        return fresh

    async def forget(self, revoked: list[TP]) -> None:
        """Forget the revoked input partitions: their accounts, and what was known of their
        reading (if they come back, it starts again from the committed offset: a source known
        idle before would let its events in behind the watermark)."""
        sources = [(tp.topic, tp.partition) for tp in revoked]  # (the rerouted topic's too)

        def forget_reading() -> None:  # under the stage's lock: no batch is being taken
            for source in sources:
                self.offsets.pop(source, None)
            self.activity.forget(sources)

        await self.stage.forget({tp.partition for tp in revoked}, forget_reading)

    async def handle(self, messages: list[Any], accepted: list[tuple[Any, Any]],
                     forwarded: list[tuple[Any, float, Any]] | None = None,
                     marks: list[tuple[int, Progress]] | None = None,
                     stale: Callable[[], bool] | None = None
                     ) -> asyncio.Future[list[Any]] | None:
        """Applies the batch (``messages``: all of it; ``forwarded`` events and progress
        ``marks`` read on the rerouted topic); returns what resolves to the messages whose
        events are applied and sent (signals and state), or forwarded."""
        def taken() -> None:  # under the stage's lock: no revocation is being handled
            for m in messages:
                self.offsets[(m.topic, m.partition)] = m.offset

        applying = await self.stage.handle(accepted, forwarded or (), marks or (), stale, taken)
        if applying is None:
            return None
        self.metrics.held_events.set(self.stage.held())
        return applying


def _signal_stage(app: faust.App, settings: Settings, rules: Rules, metrics: Metrics,
                  raw_topic: Callable[..., faust.TopicT], tracker: AckTracker[Any],
                  erased: Erased) -> SignalAgentState:
    """The signal stage, its state table and its idle timer (see streams.signal_stage)."""
    topics = settings.topics
    outputs = {name: raw_topic(name) for name in (topics.signals, topics.alerts,
                                                   topics.account_tiers, topics.account_state)}

    async def send(topic: str, key: bytes | None, value: bytes) -> Any:
        delivery = await outputs[topic].send(key=key, value=value, force=True)  # see above
        return await delivery

    accounts_table = app.Table(
        ACCOUNTS_TABLE, default=None, partitions=settings.topic_partitions, key_type=str,
        # the changelog partition follows the key, the account_id as UTF-8 bytes (the raw key):
        # an account's state is on the changelog partition of its events' partition, which the
        # worker owning that partition restores
        use_partitioner=True,
    )
    set_table_serializers(accounts_table, key="raw", value=STATE_CODEC)
    state_table = FaustStateTable(app, accounts_table)
    offsets: dict[tuple[str, int], int] = {}
    activity = SourceActivity(settings.idle_source_seconds)

    def sources() -> tuple[set[Source], set[Source]]:
        return input_sources(app, topics.inputs, offsets, activity, metrics)

    rerouted = raw_topic(settings.rerouted_topic)

    async def enqueue(key: bytes | None, value: bytes, partition: int,
                      headers: list[tuple[str, bytes]]) -> Any:
        return await rerouted.send(key=key, value=value, partition=partition, headers=headers,
                                   force=True)  # queued now; the delivery is awaited later

    every: list[Source] = []

    def every_source() -> list[Source]:
        """Every partition of every input topic, once the consumer knows them all."""
        if not every:
            counts = {topic: partition_count(app.consumer, topic) for topic in topics.inputs}
            if all(counts.values()):
                every.extend((topic, q) for topic, n in counts.items() for q in range(n or 0))
        return every

    stage = SignalStage(settings, rules, state_table, metrics, send, sources,
                        erased=erased, every_source=every_source,
                        rerouter=Rerouter(enqueue, settings.topic_partitions))
    agent_state = SignalAgentState(stage, state_table, offsets, activity, metrics)

    # a step without new messages costs little: a quarter of a second lets held events out
    # soon after their sources turn idle
    @app.timer(IDLE_STEP_S, name="signals-idle")  # type: ignore[untyped-decorator]
    async def release_idle_partitions() -> None:
        """Without new messages the agent does not run; held events (and events found late
        on arrival) must still get out. Only then (stepping whatever was held went with a
        restarted worker that stopped fetching in test_ingest's kill -9 test; see the issue-12
        note)."""
        if state_table.stream is None:
            return
        if stage.held() or stage.settled:
            applying = await agent_state.handle([], [])
            assert applying is not None  # (no batch, nothing stale)
            tracker.finish(await applying)
        else:
            await stage.heartbeat()  # the other workers learn of sources turning idle

    return agent_state
