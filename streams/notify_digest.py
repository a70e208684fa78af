"""Digests of ``radar notify`` (SPEC section 10): what a ``[[digest]]`` summarises is read
from Kafka (the signals and account-tiers topics, from the period's start by timestamp; the
accounts topic for names and owners), composed per owner (``processors.notify.digest``)
and sent to its destination, each owner's digest recorded on the deliveries topic under its
own key, so a scheduled digest goes once whatever the restarts.

``radar notify`` sends scheduled digests from the notifier holding partition 0 of the signals
(one of N); ``radar notify --digest-now NAME`` sends one at once, its period ending now. A
digest due while no notifier ran is not sent late.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from processors.notify.digest import (
    OwnerDigest,
    digest_key,
    digest_slack_message,
    digest_webhook_body,
    digests,
    next_due,
    period,
)
from processors.notify.messages import IDEMPOTENCY_HEADER, Account, signature
from schemas.notify import DeliveryRecord, Digest, NotifyConfig, NotifyConfigError, Outcome
from sinks.webhook import DeliveryResult
from streams.notify_kafka import Directory
from streams.settings import Settings

log = logging.getLogger(__name__)
READ_TIMEOUT_S = 120.0
SLACK_S = 3600.0  # read from an hour before the period: a message's timestamp may lead
ON_DEMAND_GIVE_UP_S = 60.0  # --digest-now waits this long for a failing destination

Send = Callable[..., Awaitable[DeliveryResult]]
Record = Callable[[DeliveryRecord], Awaitable[None]]


def read_topics(settings: Settings, topics: list[str], since: datetime | None
                ) -> dict[str, list[Any]]:
    """Every message now on ``topics`` (from ``since`` by timestamp, else from the start):
    JSON values by topic; a tombstone or a value that is not JSON is left out."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","),
                             enable_auto_commit=False, client_id="radar-notify-digest")
    out: dict[str, list[Any]] = {t: [] for t in topics}
    try:
        tps = [TopicPartition(t, p) for t in topics
               for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not tps:
            return out
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        starts: dict[Any, Any] = {}
        if since is not None:
            starts = consumer.offsets_for_times(
                {tp: int((since.timestamp() - SLACK_S) * 1000) for tp in tps})
        for tp in tps:
            found = starts.get(tp)
            if since is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, found.offset if found is not None else ends[tp])
        deadline = time.monotonic() + READ_TIMEOUT_S
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{', '.join(topics)} not read within {READ_TIMEOUT_S:g} s")
            for tp, messages in consumer.poll(timeout_ms=500, max_records=50_000).items():
                for m in messages:
                    if m.offset < ends[tp] and m.value:
                        try:
                            out[tp.topic].append(json.loads(m.value))
                        except ValueError:
                            continue
    finally:
        consumer.close()
    return out


def compose(settings: Settings, digest: Digest, accounts: dict[str, Account],
            start: datetime, end: datetime) -> list[OwnerDigest]:
    topics = settings.topics
    found = read_topics(settings, [topics.signals, topics.account_tiers], start)
    return digests(digest, found[topics.signals], found[topics.account_tiers], accounts,
                   start, end)


async def send(config: NotifyConfig, digest: Digest, owned: list[OwnerDigest],
               deliver: Send, record: Record, give_up_after: float,
               recorded: Callable[[str], str | None] = lambda key: None,
               now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> list[str]:
    """Each owner's digest sent (unless its key is recorded already) and recorded; a line
    per owner saying what became of it."""
    destination = next(d for d in config.destination if d.name == digest.destination)
    lines = []
    for d in owned:
        key = digest_key(digest.name, d.owner, d.start)
        who = d.owner or "no owner"
        if recorded(key) is not None:
            lines.append(f"{who}: sent before ({key})")
            continue
        body = digest_slack_message(d, digest.name, config.account_url) \
            if destination.kind == "slack" else \
            digest_webhook_body(d, digest.name, config.account_url)
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: key}
        if destination.secret is not None:
            headers["X-Radar-Signature"] = signature(destination.secret, raw)
        result = await deliver(destination.name, destination.url, raw, headers, give_up_after)
        outcome: Outcome = "delivered" if result.outcome == "delivered" else "dead_lettered"
        await record(DeliveryRecord(
            key=key, destination=destination.name, message="digest", outcome=outcome,
            attempts=result.attempts, http_status=result.status, owner=d.owner,
            recorded_at=now()))
        lines.append(f"{who}: {d.total} new signal(s), {len(d.entered_at_risk)} entered at "
                     f"risk, {len(d.entered_expansion_ready)} entered expansion ready: "
                     f"{outcome} to {destination.name}")
    return lines


def _digest(config: NotifyConfig, name: str) -> Digest:
    for digest in config.digest:
        if digest.name == name:
            return digest
    known = ", ".join(d.name for d in config.digest) or "none is configured"
    raise NotifyConfigError([f"digest: no [[digest]] is named {name!r} ({known})"])


def send_digest_now(settings: Settings, name: str) -> str:
    """``radar notify --digest-now NAME``: the digest of the period ending now, sent at once;
    what was sent, as a person reads it."""
    import aiohttp
    from kafka import KafkaProducer

    from sinks.webhook import WebhookSender
    from streams.notify_process import read_config

    config = read_config(settings)
    digest = _digest(config, name)
    directory = Directory()
    accounts = settings.topics.accounts
    for profile in read_topics(settings, [accounts], None)[accounts]:
        directory.apply_profile(json.dumps(profile).encode())
    start, end = period(digest, datetime.now(UTC))
    owned = compose(settings, digest, directory.accounts, start, end)
    head = f"digest {name} of {start.isoformat(timespec='minutes')} to " \
        f"{end.isoformat(timespec='minutes')}"
    if not owned:
        return f"{head}: nothing new for any owner; nothing sent"
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")

    async def record(r: DeliveryRecord) -> None:
        await asyncio.to_thread(lambda: producer.send(
            settings.topics.notify_deliveries, key=r.key.encode(), value=r.encode(),
            partition=0).get(timeout=30))

    async def run() -> list[str]:
        async with aiohttp.ClientSession() as session:
            sender = WebhookSender(session)
            return await send(config, digest, owned, sender.deliver, record,
                              min(config.give_up_after.total_seconds(), ON_DEMAND_GIVE_UP_S))

    try:
        lines = asyncio.run(run())
    finally:
        producer.close()
    return "\n".join([f"{head}:", *(f"  {line}" for line in lines)])


Compose = Callable[[Settings, Digest, dict[str, Account], datetime, datetime],
                   list[OwnerDigest]]


async def schedule(settings: Settings, config: NotifyConfig, directory: Directory,
                   holds_first: Callable[[], dict[str, str] | None], deliver: Send,
                   record: Record, compose: Compose = compose,
                   now: Callable[[], datetime] = lambda: datetime.now(UTC),
                   sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """The scheduled digests, sent when due by the notifier that holds partition 0 of the
    signals (``holds_first`` gives its record then, else None), until cancelled."""
    if not config.digest:
        return
    due = {d.name: next_due(d, now()) for d in config.digest}
    while True:
        name = min(due, key=lambda n: due[n])
        await sleep(max(0.0, (due[name] - now()).total_seconds()))
        if now() < due[name]:
            continue  # woken early: wait again
        digest = _digest(config, name)
        at = due[name]
        due[name] = next_due(digest, at)
        records = holds_first()
        if records is None:
            continue  # another notifier holds partition 0: it sends this one
        start, end = period(digest, at)
        try:
            owned = await asyncio.to_thread(compose, settings, digest,
                                            dict(directory.accounts), start, end)
            lines = await send(config, digest, owned, deliver, record,
                               config.give_up_after.total_seconds(), records.get, now)
        except Exception:  # noqa: BLE001 - a digest that fails must not stop the alerts
            log.exception("digest %s of %s failed", name, at.isoformat())
            continue
        log.info("digest %s: %s", name, "; ".join(lines) or "nothing new")
