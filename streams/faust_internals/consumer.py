"""The batch consumer (of streams.faust_internals, for the pinned faust-streaming version): it
hands agents a whole fetch at a time instead of one message at a time.

Stock Faust delivers each message as its own event (a task switch, a queue put and get, a
reference count): about 10k messages/s on our 2-core machine, whatever the agent does. Here
every fetch from Kafka becomes *one* event per subscribed channel whose value is the list of
fetched messages (offset order within each partition), so an agent pays Faust's per-event cost
once per batch. The agent must acknowledge every message itself (``consumer.ack``), in offset
order per partition (see :class:`streams.acks.AckTracker`): Faust commits up to the first
unacknowledged offset, tolerating none but compaction gaps, which are registered here as stock
Faust registers them.

It replaces ``Consumer._drain_messages`` of faust-streaming's aiokafka driver, an internal
method: the version is pinned in pyproject.toml and checked by a test.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, AppT

PINNED_FAUST = "0.15.3"
log = logging.getLogger(__name__)


class FetchedBatch(list[Any]):
    """One fetch's messages for an agent, with the consumer generation they were fetched in
    and the revocations counted when they were handed to it."""

    def __init__(self, generation: int) -> None:
        super().__init__()
        self.generation = generation
        self.revocations = 0


def is_stale(batch: Any, app: AppT) -> bool:
    """A batch handed to the agent before the group's latest revocation (it waited in the
    agent's queue, or for the signal stage, meanwhile): its partitions were sought back to
    their committed offsets since, so its messages are read again; handled now, they would be
    handled twice (and acknowledged twice: Faust's commits then advance by one offset at a
    time), after the stage forgot what it had read of those partitions. The generation changes
    only when a rebalance ends; ``count_revocation`` counts them as they begin (Faust stops the
    flow of batches before it, so none is handed over in between)."""
    if not isinstance(batch, FetchedBatch):
        return False
    return batch.generation != app.consumer_generation_id or \
        batch.revocations != _revocations(app)


def _revocations(app: AppT) -> int:
    count: int = getattr(app, "_radar_revocations", 0)
    return count


def count_revocation(app: AppT) -> None:
    """Called first thing on every revocation (before the stage forgets the partitions)."""
    app._radar_revocations = _revocations(app) + 1  # type: ignore[attr-defined]


def keep_through_resumes(queue: Any, flow: Any) -> None:
    """Keep ``queue`` (an agent's channel queue) when Faust resumes the flow.

    Faust's flow control clears every agent queue each time it resumes the flow, and a
    rebalance's recovery resumes it more than once: it resumes the stream partitions, seeks them
    to their committed offsets, then resumes the flow again. Batches handed to the agent in
    between were dropped without a trace while their offsets were read past, so they were never
    read again, and three workers stalled on sources that never delivered (issue 12). A batch
    fetched before a rebalance is told apart by ``is_stale`` (and Faust's stream skips it), so
    nothing is cleared from our queues: a revocation's seek reads it again."""
    if getattr(queue, "_clear_on_resume", False):
        queue._clear_on_resume = False
        flow._queues.discard(queue)


class BatchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, committing each offset with the metadata the consumer gave for
    it (``BatchConsumer.commit_metadata``), as Faust's own commit does with none: the
    partitions no longer assigned are left out, a commit refused after a rebalance returns
    False, any other failure crashes the consumer."""

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        metadata: dict[tuple[str, int, int], str] = self.__dict__.get("_radar_metadata", {})
        assigned = self.assignment()
        kept = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        try:
            self.tp_last_committed_at.update(dict.fromkeys(kept, time.monotonic()))
            await self._ensure_consumer().commit({
                TopicPartition(tp.topic, tp.partition):
                    OffsetAndMetadata(offset, metadata.get((tp.topic, tp.partition, offset), ""))
                for tp, offset in kept.items()})
        except CommitFailedError as exc:
            if "already rebalanced" in str(exc):
                return False
            self.log.exception("Committing raised exception: %r", exc)
            await self.crash(exc)
            return False
        except Exception as exc:
            self.log.exception("Committing %r raised %r; assignment: %r", kept, exc, assigned)
            await self.crash(exc)
            return False
        return True


class BatchConsumer(faust_aiokafka.Consumer):
    #: topics delivered as batches; every other topic (a table's changelog, read by Faust's
    #: recovery one event at a time) goes the stock way, message by message
    batch_topics: frozenset[str] = frozenset()
    #: what to commit with an offset of a partition (``set_commit_metadata``)
    commit_metadata: Callable[[TP, int], str] | None = None

    def _new_consumer_thread(self) -> BatchConsumerThread:
        return BatchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        """Commit, each offset with its metadata, worked out here in the event loop's thread
        (the stage's state is not the consumer thread's to read)."""
        describe = self.commit_metadata
        if describe is not None:
            self._thread._radar_metadata = {  # type: ignore[attr-defined]
                (tp.topic, tp.partition, offset): describe(tp, offset)
                for tp, offset in offsets.items()}
        committed: bool = await super()._commit(offsets)
        return committed

    @property
    def _handed(self) -> dict[TP, tuple[int, int]]:
        """Per partition: the generation, and the highest offset handed to the agents in it."""
        handed: dict[TP, tuple[int, int]] = self.__dict__.setdefault("_radar_handed", {})
        return handed

    @property
    def _received(self) -> dict[TP, float]:
        """Per partition: when aiokafka last returned records for it (monotonic seconds)."""
        received: dict[TP, float] = self.__dict__.setdefault("_radar_received", {})
        return received

    async def _drain_messages(self, fetcher: Any) -> None:  # the Fetcher service's loop
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                records, active = await self._wait_next_records(1.0)
                generation = self.app.consumer_generation_id
                if not records or self.should_stop:
                    await asyncio.sleep(0)
                    continue
                if not self.flow_active:  # a rebalance is under way: read again after it
                    await self.perform_seek()
                    continue
                await self.wait_first(self._deliver(records, active, generation),
                                      self.suspend_flow.wait())
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def _deliver(self, records: Mapping[TP, list[Any]], active: set[TP] | None,
                       generation: int) -> None:
        app = self.app
        tp_index = app.topics._tp_index  # type: ignore[attr-defined]  # TP -> channels
        to_message = self._to_message
        per_channel: dict[Any, FetchedBatch] = {}
        now = time.monotonic()
        for tp, recs in records.items():
            self._received[tp] = now
            if not self.flow_active or app.consumer_generation_id != generation:
                return
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                # paused since the fetch (a table's recovery): read these again once resumed
                await self._rewind(tp, recs[0].offset, "its partition was paused", logging.INFO)
                continue
            messages = await self._new_messages(tp, [to_message(tp, r) for r in recs],
                                                generation)
            if not messages:
                continue
            if tp.topic not in self.batch_topics:
                for m in messages:
                    await self.callback(m)
                continue
            channels = tp_index.get(tp)
            if not channels:  # not (yet) known to the agents' conductor: read again later
                await self._rewind(tp, messages[0].offset, "no agent reads its partition yet",
                                   logging.WARNING)
                continue
            app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            for channel in channels:
                per_channel.setdefault(channel, FetchedBatch(generation)).extend(messages)
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()
        await app.flow_control.acquire()  # held while a rebalance is under way
        if not self.flow_active or app.consumer_generation_id != generation:
            return  # fetched before it: read again from the committed offsets
        revocations = _revocations(app)  # the flow is on: no revocation has begun since
        for channel, messages in per_channel.items():
            messages.revocations = revocations
            first = messages[0]
            keep_through_resumes(channel.queue, app.flow_control)
            # backpressure: a full channel queue holds the fetch loop here
            await channel.queue.put(app.create_event(first.key, messages, {}, first))
            for m in messages:  # offset order within each partition
                self._handed[m.tp] = (generation, m.offset)

    async def _rewind(self, tp: TP, offset: int, why: str, level: int) -> None:
        """Move the partition's read position back to ``offset`` if it is past it, never forward
        (a seek made since the fetch, e.g. to the committed offset, stays). Stock Faust drops
        the records of a partition paused after they were fetched and counts on a later seek to
        read them again; none comes for a changelog that a standby reads, nor (see
        ``seek_to_committed``) for a partition without a committed offset."""
        consumer = self._thread._ensure_consumer()

        async def rewind() -> None:  # in the consumer's thread, as its own seeks are
            # never waits: the consumer thread runs its calls from a queue with two workers,
            # and a wait here for a position (``consumer.position``) held the calls behind it,
            # the rebalance's that would give the position among them: the worker stalled
            subscription = consumer._subscription
            if not subscription.is_assigned(tp):
                return  # revoked since: its next owner reads from the committed offset
            state = subscription.subscription.assignment.state_value(tp)
            if state.has_valid_position and state.position > offset:
                consumer.seek(tp, offset)
            # no position: a reset to the committed offset or the beginning is pending, and
            # lands at or before ``offset``

        await self._thread.call_thread(rewind)
        read = self._read_offset[tp]
        if read is not None and read >= offset:
            self._read_offset[tp] = offset if offset else None
        log.log(level, "%s: records from offset %d fetched but not delivered (%s): read again "
                "from there", tp, offset, why)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Seek every partition to its committed offset, those the group never committed too.

        aiokafka seeks only the partitions committed past offset 0 and leaves the others
        where they are: after a rebalance or a table's recovery, records fetched there and
        dropped (above) would never be read again and the group would stall on them. An input
        partition without a committed offset is read from its beginning, as
        ``consumer_auto_offset_reset="earliest"`` reads it at first."""
        committed = await super().seek_to_committed()
        never = [tp for tp, offset in committed.items()
                 if not offset and tp.topic in self.batch_topics]
        if never:
            await self._thread.seek_to_beginning(*never)
        return committed

    async def seek_wait(self, partitions: Mapping[TP, int]) -> None:
        """Seek and wait, an offset below 0 taken as the beginning, as Faust's table recovery
        takes -1 (nothing known of a changelog partition). It asked for less once, for a
        standby partition in a ``scale1to3to1`` run (a fresh-clone CI run); aiokafka refused,
        and the worker crashed."""
        await super().seek_wait({tp: max(offset, 0) for tp, offset in partitions.items()})

    async def _new_messages(self, tp: TP, messages: list[Any], generation: int) -> list[Any]:
        """Drop what was handed to the agents already in this generation; register gaps
        (compaction, transaction markers) so commits can pass them; advance the read offset.

        For the batch topics, "read already" means handed to the agents' queues in this
        generation (``_handed``, recorded when a batch is put on a queue), not fetched: a fetch
        can be dropped after it was read (a rebalance began meanwhile, the agents' queues were
        cleared, Faust's stream skipped it), and Faust's read offset outlives a generation and
        is set back to the committed offset only once its seek is over, while fetches go on.
        Dropping by that offset lost messages: aiokafka's position was at the end, nothing
        was read again, and three workers stalled (issue 12). A message handed over twice
        across generations is skipped by the agent, which knows what it handled
        (``SignalAgentState.unseen``).

        No gap is registered over offsets handed to the agents already in this generation: a
        seek back (``perform_seek`` sets the read offset to the committed one) followed by a
        fetch that starts further on made those look skipped, and Faust, counting them both
        acknowledged and a gap, then committed one offset per second."""
        read = self._read_offset[tp]
        acks_enabled = self.app.topics.acks_enabled_for(tp.topic)
        handed = self._handed.get(tp)
        floor = handed[1] if handed is not None and handed[0] == generation else -1
        batch_topic = tp.topic in self.batch_topics
        fresh = []
        for m in messages:
            if m.offset <= floor if batch_topic else read is not None and m.offset < read:
                continue
            if read is not None and m.offset - read > 1 and acks_enabled:
                start = max(read + 1, floor + 1)
                if start < m.offset:
                    await self._add_gap(tp, start, m.offset)
            if read is None or m.offset > read:
                read = m.offset
            fresh.append(m)
        if fresh:
            self._read_offset[tp] = read
        if len(fresh) < len(messages):  # read before: only after a seek back, and said
            log.warning("%s: %d message(s) at offsets %d..%d dropped as handed over already "
                        "(through offset %d in this generation)", tp,
                        len(messages) - len(fresh), messages[0].offset, messages[-1].offset,
                        floor if batch_topic else read)
        return fresh


class BatchTransport(faust_aiokafka.Transport):
    Consumer = BatchConsumer

    def __init__(self, url: Any, app: AppT, batch_topics: frozenset[str]) -> None:
        super().__init__(url, app)
        self.batch_topics = batch_topics
        self.commit_metadata: Callable[[TP, int], str] | None = None

    def create_consumer(self, callback: Any, **kwargs: Any) -> Any:
        consumer = cast(BatchConsumer, super().create_consumer(callback, **kwargs))
        consumer.batch_topics = self.batch_topics
        consumer.commit_metadata = self.commit_metadata
        return consumer


def use_batch_consumer(app: AppT, topics: set[str]) -> None:
    """Make ``app`` read ``topics`` with :class:`BatchConsumer` (before its consumer is first
    used); the agents of those topics then receive lists of messages."""
    app.transport = BatchTransport(app.conf.broker_consumer, app, frozenset(topics))


def set_commit_metadata(app: AppT, describe: Callable[[TP, int], str]) -> None:
    """Commit every offset with ``describe(tp, offset)`` as its metadata (a source's place in
    event time before it: see processors.watermark.EventClock). Before the consumer is made."""
    cast(BatchTransport, app.transport).commit_metadata = describe
