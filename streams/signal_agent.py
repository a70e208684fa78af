"""The signal agent's side of ``radar worker``: the account-state table in Faust, the input
sources and their activity, and the signal stage wired to Kafka (``streams.signal_stage``),
for ``streams.app``'s agent."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import faust
from faust.types import TP, Message

from processors.erasure import Erased
from processors.rerouting import Progress, partition_watermark
from processors.rules import Rules
from processors.watermark import Source, SourceActivity, decode_high, encode_high
from streams.acks import AckTracker
from streams.faust_internals import (
    committed_metadata,
    committed_offsets,
    last_poll,
    partition_count,
    set_commit_metadata,
    set_current_event,
    set_table_serializers,
)
from streams.metrics import Metrics
from streams.settings import Settings
from streams.signal_stage import Rerouter, SignalStage
from streams.state_codec import STATE_CODEC

log = logging.getLogger(__name__)
IDLE_STEP_S = 0.25  # how often the signal stage steps when no messages come
# the committed offset and metadata of partitions (streams.faust_internals.committed_metadata)
Commits = Callable[[list[TP]], Awaitable[dict[TP, tuple[int, str]]]]


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


class SignalAgentState:
    """The signal stage, its account table and what it has received, per partition."""

    def __init__(self, stage: SignalStage, table: FaustStateTable,
                 offsets: dict[tuple[str, int], int], activity: SourceActivity,
                 metrics: Metrics, inputs: Collection[str] = (),
                 commits: Commits | None = None) -> None:
        """``commits``: the committed offset and metadata of input partitions (where reading
        them starts), asked when one is first handled in an assignment."""
        self.stage = stage
        self.inputs = set(inputs)
        self.commits = commits
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

    def report(self, tp: TP) -> str:
        """What the stage knows of a partition, in one line, for the stalled-partition warning:
        the last offset handed to it, the source's latest event time and idleness, the events
        held for the partition, and its watermark with the sources that hold it back."""
        stage, source = self.stage, (tp.topic, tp.partition)
        high = stage.event_clock.high
        parts = [f"handed_through={self.offsets.get(source)}", f"high={high.get(source)}",
                 f"idle={source in self.activity.idle}",
                 f"held_here={len(stage.buffers.get(tp.partition, ()))}"]
        every = stage.every_source() if stage.every_source is not None else ()
        if every:
            assigned, holding = stage.sources()
            marks = stage.marks.get(tp.partition, {})
            watermark, until = partition_watermark(tp.partition, every, assigned, holding,
                                                   high, marks)
            own = {s for s in every if s[1] == tp.partition and s in assigned}
            unread = sorted(s for s in own if s in holding and s not in high)
            unmarked = sorted(s for s in every if s not in own and s not in marks)
            empty = sorted(s for s in every if s not in own and marks.get(s) == (None, False))
            parts += [f"watermark={watermark}", f"at={until}", f"own_unread={unread}",
                      f"unmarked={unmarked}", f"marked_empty={empty}"]
        return " ".join(parts)

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
        sources = {(m.topic, m.partition) for m in messages}  # a few per batch
        new = sorted(TP(*source) for source in sources
                     if source[0] in self.inputs and source not in self.offsets)
        starts = await self.commits(new) if new and self.commits is not None else {}

        def taken() -> None:  # under the stage's lock: no revocation is being handled
            clock = self.stage.event_clock
            for tp in new:  # where each source's reading starts: its place in event time there
                offset, metadata = starts.get(tp, (None, ""))
                high = decode_high(metadata)
                if offset is not None and high is not None and \
                        (tp.topic, tp.partition) not in self.offsets:
                    clock.seed((tp.topic, tp.partition), offset, high)
            for m in messages:
                self.offsets[(m.topic, m.partition)] = m.offset

        applying = await self.stage.handle(accepted, forwarded or (), marks or (), stale, taken)
        if applying is None:
            return None
        self.metrics.held_events.set(self.stage.held())
        return applying


def signal_stage(app: faust.App, settings: Settings, rules: Rules, metrics: Metrics,
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
    inputs = set(topics.inputs)

    def describe(tp: TP, offset: int) -> str:
        """What goes with a commit of an input partition: its place in event time there (and
        what is below it is not needed any more)."""
        if tp.topic not in inputs:
            return ""
        source = (tp.topic, tp.partition)
        high = stage.event_clock.high_before(source, offset)
        stage.event_clock.prune(source, offset)
        return encode_high(high)

    set_commit_metadata(app, describe)
    agent_state = SignalAgentState(stage, state_table, offsets, activity, metrics, inputs,
                                   lambda tps: committed_metadata(app.consumer, tps))

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
