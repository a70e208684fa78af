"""The signal stage of the worker's batch: sequence by event time, apply, emit.

The event-time part — reorder buffers, watermark, day sweeps, lateness, grace — is
``processors.sequencer`` (pure); this adds what touches the world: the lock the agent and the
idle timer share, the sends to Kafka and the state table, and Prometheus.

Messages are acknowledged only after their effects are on Kafka (signals, alerts, tiers,
the account-state topic and the state changelog; ClickHouse is ``radar store``'s business);
the engine skips events it has already applied (a redelivery), so at-least-once delivery
counts each once. Emitting runs behind the engine: while one batch's signals and states are
sent, the next batch is already applied. What a batch sends is copied when it is applied; its
states are saved after its signals and after the previous batch's states, so a saved state
never runs ahead of the signals of the events it includes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from processors.erasure import Erased
from processors.ingest import AcceptedEvent
from processors.rerouting import ORIGIN_HEADER, PROGRESS_HEADER, Origin, Progress, encode_progress
from processors.rules import Rules
from processors.sequencer import YIELD_EVERY, Sequencer
from processors.sequencer_ports import (
    BatchResult,
    EverySource,
    Forward,
    Held,
    Sources,
    StateTable,
)
from processors.state import AccountState
from processors.watermark import Source
from sinks.rows import AccountView, account_state_json
from streams.metrics import Metrics
from streams.settings import Settings

__all__ = ["YIELD_EVERY", "BatchResult", "Held", "Rerouter", "SignalStage", "Sources",
           "StateTable"]
Send = Callable[[str, bytes | None, bytes], Awaitable[Any]]  # (topic, key, value)
# (key, value, partition, headers) of a message to the rerouted topic -> its delivery (awaited
# once the message is queued: messages queued one after the other go out in that order)
Enqueue = Callable[[bytes | None, bytes, int, list[tuple[str, bytes]]],
                   Awaitable[Awaitable[Any]]]
MARK_EVERY_S = 0.05  # progress marks of what changed go out at most this often
HEARTBEAT_S = 10.0  # and marks of every source at least this often, changed or not


class Rerouter:
    """Writes a worker's forwards and progress marks to the rerouted topic
    (``processors.rerouting``): the forwards first, then a mark on every partition. A mark
    names the sources whose progress changed since the last one, at most every
    ``MARK_EVERY_S``; every ``HEARTBEAT_S`` one names them all (an owner that starts again reads
    marks only from its committed offset on, and waits for one of every source)."""

    def __init__(self, enqueue: Enqueue, partitions: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.enqueue = enqueue
        self.partitions = partitions
        self.clock = clock
        self.sent: Progress = {}
        self.changed_at = self.whole_at = float("-inf")

    def due(self, progress: Progress) -> Progress:
        """What the next mark says now: nothing when none is due."""
        now = self.clock()
        if now - self.whole_at >= HEARTBEAT_S:
            return progress
        if now - self.changed_at < MARK_EVERY_S:
            return {}
        sent = self.sent
        return {source: state for source, state in progress.items()
                if sent.get(source) != state}

    def rebalanced(self) -> None:
        """Owners forget their marks with the partitions they lose; the next mark names every
        source again, for the new owners."""
        self.whole_at = float("-inf")

    async def send(self, outbox: Sequence[Forward], progress: Progress) -> list[Awaitable[Any]]:
        """Queue the forwards, then the mark if one is due, in this order; returns their
        deliveries."""
        deliveries = []
        for forward in outbox:
            raw = forward.item.source
            stamp = int(raw.timestamp.timestamp() * 1000) if raw.timestamp else None
            origin = Origin(raw.topic, raw.partition, raw.offset, forward.at, stamp)
            deliveries.append(await self.enqueue(raw.key, raw.value or b"", forward.partition,
                                                 [(ORIGIN_HEADER, origin.header())]))
        mark = self.due(progress)
        if mark:
            body = encode_progress(mark)
            for partition in range(self.partitions):
                deliveries.append(await self.enqueue(None, body, partition,
                                                     [(PROGRESS_HEADER, b"1")]))
            now = self.clock()
            self.changed_at = now
            if mark is progress:
                self.whole_at = now
            self.sent = dict(progress)
        return deliveries


class MetricCounts:
    """The sequencer's counts, in Prometheus."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def late(self) -> None:
        self.metrics.late_events.inc()

    def redelivered(self) -> None:
        self.metrics.redelivered_events.inc()

    def rerouted(self, topic: str) -> None:
        self.metrics.rerouted_events.labels(topic).inc()

    def erased(self) -> None:
        self.metrics.events_erased.inc()


class SignalStage(Sequencer):
    def __init__(
        self,
        settings: Settings,
        rules: Rules,
        table: StateTable,
        metrics: Metrics,
        send: Send,
        sources: Sources,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        erased: Erased | None = None,
        every_source: EverySource | None = None,
        rerouter: Rerouter | None = None,
    ) -> None:
        """``every_source`` and ``rerouter``: one of several workers (misrouted events travel
        through the rerouted topic); without them the stage reads every source itself."""
        super().__init__(rules, table, MetricCounts(metrics), sources,
                         settings.topic_partitions, clock, erased,
                         every_source if rerouter is not None else None)
        self.rerouter = rerouter
        self.settings = settings
        self.metrics = metrics
        self.send = send
        self.lock = asyncio.Lock()  # the agent and the idle timer both run batches
        # the latest batch's state saving: each batch saves its states after the one before
        self.saving: asyncio.Future[None] | None = None

    async def step_yielding(self, sources: tuple[Collection[Source], Collection[Source]]
                            | None = None
                            ) -> tuple[BatchResult, dict[str, tuple[int, AccountState]]]:
        """``step``, letting the event loop run between slices of events: the writes of earlier
        batches, acknowledgements and fetches go on meanwhile instead of waiting for the whole
        batch (a batch is a few hundred milliseconds of engine work)."""
        result = BatchResult()
        dirty: dict[str, tuple[int, AccountState]] = {}
        for _ in self._steps(result, dirty, sources):
            await asyncio.sleep(0)
        return result, dirty

    async def handle(self, accepted: Sequence[tuple[AcceptedEvent, Any]],
                     forwarded: Sequence[tuple[AcceptedEvent, float, Any]] = (),
                     marks: Sequence[tuple[int, Progress]] = (),
                     stale: Callable[[], bool] | None = None,
                     taken: Callable[[], None] | None = None
                     ) -> asyncio.Future[list[Any]] | None:
        """Admit and apply now; emit and persist behind. Returns what resolves to the tokens
        of the events applied (once their signals and states are on Kafka) and forwarded.
        ``forwarded`` and ``marks``: read on the rerouted topic (with several workers).
        ``stale``: whether the batch was fetched before a rebalance began, asked once the stage
        is ours (a revocation may have made it forget the batch's partitions while it waited):
        then nothing is admitted, and None is returned (the messages are read again).
        ``taken``: what the caller records of a batch admitted, under the lock."""
        async with self.lock:
            if stale is not None and stale():
                return None
            if taken is not None:
                taken()
            self.admit(accepted)
            self.admit_forwarded(forwarded)
            for partition, progress in marks:
                self.progress(partition, progress)
            sources = self.sources()
            forwarding = await self._forward(sources)
            result, dirty = await self.step_yielding(sources)
            # the states go on changing with the next batch: what this one stores is copied now
            return self._write_behind(result, dirty, forwarding)

    async def _forward(self, sources: tuple[Collection[Source], Collection[Source]]
                       ) -> tuple[list[Awaitable[Any]], list[Any]]:
        """Forward the misrouted events admitted, then mark progress; returns the deliveries,
        and the tokens to acknowledge once they are done."""
        if self.rerouter is None:
            return [], []
        outbox, self.outbox = self.outbox, []
        deliveries = await self.rerouter.send(outbox, self.local_progress(*sources))
        return deliveries, [forward.token for forward in outbox]

    async def heartbeat(self) -> None:
        """Progress marks when due, without a batch (sources turning idle, or a while since
        the last ones); returns when they are on Kafka."""
        if self.rerouter is None:
            return
        async with self.lock:
            deliveries, _ = await self._forward(self.sources())
        await asyncio.gather(*deliveries)

    def _write_behind(self, result: BatchResult, dirty: dict[str, tuple[int, AccountState]],
                      forwarding: tuple[list[Awaitable[Any]], list[Any]] = ([], [])
                      ) -> asyncio.Future[list[Any]]:
        """Chain the batch's saving after the previous one's; returns its persisting."""
        # the states go on changing with the next batch: what this one stores is copied now
        states: list[tuple[str, int, int, dict[str, Any] | None]] = [
            (account_id, partition, self.revocations.get(partition, 0),
             {"p": partition, "s": state.to_dict()})
            for account_id, (partition, state) in dirty.items()]
        states += [(account_id, partition, self.revocations.get(partition, 0), None)
                   for account_id, partition in self.dropped]
        self.dropped = []
        views = [AccountView.of(state, self.rules) for _, state in dirty.values()]
        self.saving = asyncio.ensure_future(self._save(self.saving, result, states))
        return asyncio.ensure_future(self._persist(self.saving, result, views, time.time_ns(),
                                                   forwarding))

    async def erase(self) -> None:
        """Apply the erasures (``self.erased``, just grown) to every state held now, and
        save the changed states; returns when they are saved. Not in the middle of a step."""
        async with self.lock:
            persisting = self._write_behind(BatchResult(), self.erase_states())
        await persisting

    async def _save(self, previous: asyncio.Future[None] | None, result: BatchResult,
                    states: list[tuple[str, int, int, dict[str, Any] | None]]) -> None:
        """Signals out, then the states: a state that is saved means its signals are out, so a
        crash in between only repeats signals (same ids), never loses them."""
        await self._emit(result)
        if previous is not None:
            await previous  # an account's later state is never overwritten by an earlier one
        for account_id, partition, revoked, value in states:
            if self.revocations.get(partition, 0) == revoked:  # still ours since applied
                self.table.put(account_id, partition, value)

    async def _persist(self, saving: asyncio.Future[None], result: BatchResult,
                       views: list[AccountView], version: int,
                       forwarding: tuple[list[Awaitable[Any]], list[Any]]) -> list[Any]:
        deliveries, forwarded = forwarding
        await saving
        if views:  # versioned when applied: a store that reads them out of order ranks right
            topic = self.settings.topics.account_state
            await asyncio.gather(*[
                self.send(topic, view.state.account_id.encode(),
                          account_state_json(view, version)) for view in views])
        await asyncio.gather(*deliveries)  # on the rerouted topic: their owner has them
        return result.released + forwarded

    async def _emit(self, result: BatchResult) -> None:
        topics = self.settings.topics
        sends = []
        for signal in result.signals:
            body = signal.model_dump_json().encode()
            key = signal.account_id.encode()
            sends.append(self.send(topics.signals, key, body))
            if signal.is_alert:
                sends.append(self._alert(topics.alerts, key, body,
                                         result.produced_at.get(signal.signal_id)))
            self.metrics.signals_emitted.labels(signal.type, signal.severity).inc()
        for signal in result.withdrawn:  # the same id again, withdrawn: where it went before
            body = signal.model_dump_json().encode()
            key = signal.account_id.encode()
            sends.append(self.send(topics.signals, key, body))
            if signal.is_alert:
                sends.append(self.send(topics.alerts, key, body))
            self.metrics.signals_withdrawn.labels(signal.type).inc()
        for signal in result.cancelled:
            self.metrics.signals_cancelled.labels(signal.type).inc()
        for change in result.tier_changes:
            sends.append(self.send(topics.account_tiers, change.account_id.encode(),
                                   change.model_dump_json().encode()))
            self.metrics.tier_changes.labels(change.tier).inc()
        await asyncio.gather(*sends)

    async def _alert(self, topic: str, key: bytes, body: bytes, produced_at: float | None) -> None:
        await self.send(topic, key, body)
        self.metrics.alerts_sent.inc()
        if produced_at is not None:  # from the trigger's produce time to the alert on Kafka
            self.metrics.alert_latency.observe(max(0.0, time.time() - produced_at))

    async def forget(self, partitions: set[int], also: Callable[[], None] | None = None
                     ) -> None:
        """Partitions a rebalance took away: what they held is read again by their new owner,
        and their accounts' state lives on in the table's changelog. Not in the middle of a
        step (it pauses between slices of events). ``also``: what the caller forgets with them,
        under the same lock as the batches (``handle``'s ``taken``)."""
        async with self.lock:
            if also is not None:
                also()
            self._forget(partitions)
            if self.rerouter is not None:
                self.rerouter.rebalanced()

