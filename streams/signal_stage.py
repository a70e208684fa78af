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
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from processors.erasure import Erased
from processors.ingest import AcceptedEvent
from processors.rules import Rules
from processors.sequencer import (
    YIELD_EVERY,
    BatchResult,
    Held,
    Sequencer,
    Sources,
    StateTable,
)
from processors.state import AccountState
from sinks.rows import AccountView, account_state_json
from streams.metrics import Metrics
from streams.settings import Settings

__all__ = ["YIELD_EVERY", "BatchResult", "Held", "SignalStage", "Sources", "StateTable"]
Send = Callable[[str, bytes | None, bytes], Awaitable[Any]]  # (topic, key, value)


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
    ) -> None:
        super().__init__(rules, table, MetricCounts(metrics), sources,
                         settings.topic_partitions, clock, erased)
        self.settings = settings
        self.metrics = metrics
        self.send = send
        self.lock = asyncio.Lock()  # the agent and the idle timer both run batches
        # the latest batch's state saving: each batch saves its states after the one before
        self.saving: asyncio.Future[None] | None = None

    async def step_yielding(self) -> tuple[BatchResult, dict[str, tuple[int, AccountState]]]:
        """``step``, letting the event loop run between slices of events: the writes of earlier
        batches, acknowledgements and fetches go on meanwhile instead of waiting for the whole
        batch (a batch is a few hundred milliseconds of engine work)."""
        result = BatchResult()
        dirty: dict[str, tuple[int, AccountState]] = {}
        for _ in self._steps(result, dirty):
            await asyncio.sleep(0)
        return result, dirty

    async def handle(self, accepted: Sequence[tuple[AcceptedEvent, Any]]
                     ) -> asyncio.Future[list[Any]]:
        """Admit and apply now; emit and persist behind. Returns what resolves to the tokens
        of the events applied once their signals and states are on Kafka."""
        async with self.lock:
            self.admit(accepted)
            result, dirty = await self.step_yielding()
            # the states go on changing with the next batch: what this one stores is copied now
            return self._write_behind(result, dirty)

    def _write_behind(self, result: BatchResult, dirty: dict[str, tuple[int, AccountState]]
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
        return asyncio.ensure_future(self._persist(self.saving, result, views, time.time_ns()))

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
                       views: list[AccountView], version: int) -> list[Any]:
        await saving
        if views:  # versioned when applied: a store that reads them out of order ranks right
            topic = self.settings.topics.account_state
            await asyncio.gather(*[
                self.send(topic, view.state.account_id.encode(),
                          account_state_json(view, version)) for view in views])
        return result.released

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

    async def forget(self, partitions: set[int]) -> None:
        """Partitions a rebalance took away: what they held is read again by their new owner,
        and their accounts' state lives on in the table's changelog. Not in the middle of a
        step (it pauses between slices of events)."""
        async with self.lock:
            self._forget(partitions)

