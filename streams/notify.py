"""``radar notify``: alerts delivered to people (SPEC section 10).

It consumes the signals topic as a consumer group of its own (N notifiers share the
partitions), judges each signal (``processors.notify.plan``: the routes it matches, once per
(signal, destination), stale or snoozed recorded and not pushed, a follow-up where a delivered
alert is withdrawn) and delivers to Slack and webhooks (``sinks.webhook``).

Once per (signal, destination): every outcome is recorded on the deliveries topic, on the
signal's partition, before the signal's offset is committed; a notifier given a partition reads
its record whole before it judges a signal of it. So a restart, a kill -9 or a rebalance sends
nothing again, except what a receiver answered 2xx to just before a crash, before the record
was written (sent again with the same Idempotency-Key). A partition taken away stops its
deliveries' waiting at once, awaits the attempts already sent, records what they got, and
commits, before the other notifier is given it.

Deliveries run concurrently: one failing destination never delays another (nor the next
signals), and an offset is committed once everything before it is recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from typing import Any

from processors.notify.messages import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    Account,
    idempotency_key,
    signature,
    slack_message,
    webhook_body,
)
from processors.notify.plan import Planned, plan
from processors.notify.routing import destinations_for
from schemas.notify import DeliveryRecord, Destination, NotifyConfig, Outcome
from sinks.webhook import DeliveryResult
from streams.metrics import Metrics
from streams.notify_kafka import Directory, RecordReader

log = logging.getLogger(__name__)
GATE_PER_DESTINATION = 8  # attempts under way at once to one destination
RECORD_RETRY_S = 1.0

Deliver = Callable[..., Awaitable[DeliveryResult]]
Produce = Callable[[str, int, bytes, bytes], Awaitable[None]]


def message_for(destination: Destination, signal: dict[str, Any], account: Account,
                account_url: str | None) -> tuple[bytes, dict[str, str]]:
    """The body and headers one destination receives for a signal (or its withdrawal)."""
    body = slack_message(signal, account, account_url) if destination.kind == "slack" \
        else webhook_body(signal, account, account_url)
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json"}
    if destination.secret is not None:
        headers[SIGNATURE_HEADER] = signature(destination.secret, raw)
    return raw, headers


def redact_error(error: str | None, config: NotifyConfig) -> str | None:
    """A library's error may quote the URL (a Slack URL is a secret): never recorded."""
    if error is None:
        return None
    for d in config.destination:
        for secret in (d.url, d.secret):
            if secret:
                error = error.replace(secret, f"<{d.name}>")
    return error


class Partition:
    """What a notifier holds of one signals partition while it is assigned."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.records: dict[str, str] = {}
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.abandon = asyncio.Event()  # set when it is taken away: stop waiting
        self.tasks: set[asyncio.Task[None]] = set()
        self.pending: set[int] = set()  # offsets read and not yet done with
        self.next_offset: int | None = None  # after the last one read

    def committable(self) -> int | None:
        """The offset to commit: everything before it is done with."""
        return min(self.pending) if self.pending else self.next_offset


class Notifier:
    """Judges and delivers the signals of the partitions assigned to this process."""

    def __init__(self, config: NotifyConfig, deliveries_topic: str, directory: Directory,
                 metrics: Metrics, deliver: Deliver, produce: Produce,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.config = config
        self.topic = deliveries_topic
        self.directory = directory
        self.metrics = metrics
        self.deliver = deliver
        self.produce = produce
        self.now = now
        self.destinations = {d.name: d for d in config.destination}
        self.partitions: dict[int, Partition] = {}
        # the last task of each (signal, destination): the next one waits for it
        self.chains: dict[str, asyncio.Future[None]] = {}
        self._gates: dict[str, asyncio.Semaphore] = {}
        for name in self.destinations:  # every series from 0: a first failure shows as one
            for outcome in ("delivered", "retried", "stale", "snoozed", "dead_lettered"):
                metrics.notify_outcomes.labels(name, outcome)
            metrics.notify_in_flight.labels(name)

    # -- partitions come and go -------------------------------------------------------------

    def assigned(self, partitions: Collection[int]) -> list[int]:
        """Start holding ``partitions``; the ones whose record must be read."""
        new = [p for p in partitions if p not in self.partitions]
        for p in new:
            self.partitions[p] = Partition(p)
        return new

    def restored(self, records: dict[int, dict[str, str]]) -> None:
        for p, record in records.items():
            held = self.partitions.get(p)
            if held is not None and not held.ready.done():
                held.records = record
                held.ready.set_result(None)

    async def release(self, partitions: Collection[int]) -> None:
        """Partitions taken away (or the process stopping): deliveries stop waiting, the
        attempts under way finish and are recorded. The caller commits, then forgets them."""
        held = [self.partitions[p] for p in partitions if p in self.partitions]
        for h in held:
            h.abandon.set()
            if not h.ready.done():
                h.ready.set_result(None)
        tasks = [t for h in held for t in h.tasks]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def forget(self, partitions: Collection[int]) -> None:
        for p in partitions:
            self.partitions.pop(p, None)

    def committable(self) -> dict[int, int]:
        found = {p: h.committable() for p, h in self.partitions.items()}
        return {p: o for p, o in found.items() if o is not None}

    # -- one signal ---------------------------------------------------------------------------

    def take(self, partition: int, offset: int, value: bytes | None) -> None:
        """A message read from the signals topic: judged and delivered in a task of its own.
        What concerns one (signal, destination) runs in order: its alert is recorded before
        its withdrawal is judged, and a signal read twice is judged once the first reading
        was recorded; other destinations and other signals go on meanwhile."""
        held = self.partitions.get(partition)
        if held is None or held.abandon.is_set():
            return  # no longer ours: its new owner reads it
        held.next_offset = offset + 1
        try:
            signal = json.loads(value or b"")
            signal_id = str(signal["signal_id"])
            str(signal["account_id"])
        except (ValueError, KeyError, TypeError):
            log.warning("partition %d offset %d of the signals topic is not a signal; skipped",
                        partition, offset)
            return
        held.pending.add(offset)
        task = asyncio.ensure_future(self._handle(held, offset, signal))
        held.tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            held.tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("delivering signal %s failed", signal_id, exc_info=t.exception())

        task.add_done_callback(done)

    async def _handle(self, held: Partition, offset: int, signal: dict[str, Any]) -> None:
        await held.ready
        if held.abandon.is_set():
            return  # its offset stays uncommitted: the partition's new owner judges it
        account = self.directory.account(str(signal["account_id"]))
        destinations = destinations_for(signal, account.owner, self.config.route)
        results = await asyncio.gather(*(self._for(held, signal, account, d)
                                         for d in destinations))
        if all(results):
            held.pending.discard(offset)

    async def _for(self, held: Partition, signal: dict[str, Any], account: Account,
                   destination: str) -> bool:
        """One destination of one signal, after whatever came before for the same pair;
        whether every outcome it called for is recorded."""
        key = idempotency_key(str(signal["signal_id"]), destination)
        previous = self.chains.get(key)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.chains[key] = mine
        try:
            if previous is not None:
                await asyncio.wait([previous])
            if held.abandon.is_set():
                return False
            planned = [p for p in plan(signal, account.owner, self.config, held.records.get,
                                       self.directory.snoozes.values(), self.now())
                       if p.destination == destination]
            return all(await asyncio.gather(*(self._carry_out(held, p, signal, account)
                                              for p in planned)))
        finally:
            mine.set_result(None)
            if self.chains.get(key) is mine:
                del self.chains[key]

    async def _carry_out(self, held: Partition, planned: Planned, signal: dict[str, Any],
                         account: Account) -> bool:
        """Push (or only record) one (signal, destination); whether its outcome is recorded."""
        destination = self.destinations[planned.destination]
        name = destination.name
        if planned.verdict != "deliver":
            await self._record(held, planned, signal, account, planned.verdict)
            return True
        body, headers = message_for(destination, signal, account, self.config.account_url)
        headers[IDEMPOTENCY_HEADER] = planned.key
        gauge = self.metrics.notify_in_flight.labels(name)
        gauge.inc()
        try:
            result = await self.deliver(name, destination.url, body, headers,
                                        self.config.give_up_after.total_seconds(),
                                        abandon=held.abandon, gate=self._gate(name))
        finally:
            gauge.dec()
        if result.outcome == "abandoned":
            return False
        if result.outcome == "delivered":
            detected = datetime.fromisoformat(str(signal["detected_at"]))
            self.metrics.notify_latency.labels(name).observe(
                max(0.0, (self.now() - detected).total_seconds()))
        else:
            log.error("gave up delivering %s to %s after %d attempt(s): %s", planned.key, name,
                      result.attempts, redact_error(result.error, self.config))
        await self._record(held, planned, signal, account, result.outcome, result)
        return True

    def _gate(self, destination: str) -> asyncio.Semaphore:
        if destination not in self._gates:
            self._gates[destination] = asyncio.Semaphore(GATE_PER_DESTINATION)
        return self._gates[destination]

    def holds_first(self) -> dict[str, str] | None:
        """The record of partition 0 when this notifier holds it (it sends the scheduled
        digests, recorded there), else None."""
        held = self.partitions.get(0)
        if held is None or not held.ready.done() or held.abandon.is_set():
            return None
        return held.records

    async def record_digest(self, record: DeliveryRecord) -> None:
        held = self.partitions.get(0)
        await self._write(0, record)
        if held is not None:
            held.records[record.key] = record.outcome
        self.metrics.notify_outcomes.labels(record.destination, record.outcome).inc()

    async def _write(self, partition: int, record: DeliveryRecord) -> None:
        """The record on the deliveries topic, retried until Kafka has it."""
        while True:
            try:
                await self.produce(self.topic, partition, record.key.encode(), record.encode())
                return
            except Exception as exc:  # noqa: BLE001 - Kafka unreachable: the record must go
                log.warning("recording %s failed (%s); retrying", record.key,
                            type(exc).__name__)
                await asyncio.sleep(RECORD_RETRY_S)

    async def _record(self, held: Partition, planned: Planned, signal: dict[str, Any],
                      account: Account, outcome: Outcome,
                      result: DeliveryResult | None = None) -> None:
        """The outcome on the deliveries topic (retried until Kafka has it), then counted."""
        record = DeliveryRecord(
            key=planned.key, signal_id=planned.signal_id, destination=planned.destination,
            message=planned.message, outcome=outcome,
            attempts=result.attempts if result else 0,
            http_status=result.status if result else None,
            error=redact_error(result.error, self.config) if result else None,
            signal_type=signal.get("type"), severity=signal.get("severity"),
            account_id=account.account_id, owner=account.owner,
            detected_at=signal.get("detected_at"), recorded_at=self.now())
        await self._write(held.number, record)
        held.records[planned.key] = outcome
        self.metrics.notify_outcomes.labels(planned.destination, outcome).inc()


async def restore(reader: RecordReader, notifier: Notifier, partitions: list[int]) -> None:
    """Read the record of newly assigned partitions before any of their signals is judged
    (retried while Kafka does not answer: judging without it could send again)."""
    from aiokafka.errors import KafkaError

    while True:
        wanted = [p for p in partitions if p in notifier.partitions]
        if not wanted:
            return
        try:
            notifier.restored(await reader.read(wanted))
            return
        except KafkaError as exc:
            log.warning("reading the record of partitions %s failed (%s); retrying", wanted,
                        type(exc).__name__)
            await asyncio.sleep(RECORD_RETRY_S)


def counted_retries(metrics: Metrics) -> Callable[[str], None]:
    def retried(destination: str) -> None:
        metrics.notify_outcomes.labels(destination, "retried").inc()
    return retried

