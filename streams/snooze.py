"""``radar snooze``: hold an account's alerts for a while (SPEC section 10).

A snooze is a record on the compacted snoozes topic (key = account and type, value = until
when); every ``radar notify`` follows the topic, and records the signals it holds as snoozed,
without pushing them. ``--clear`` writes tombstones; ``--list`` reads the topic whole. Kafka
holds the snoozes, so they need no database and reach every notifier.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from processors.notify.routing import Snooze
from streams.notify_kafka import parse_snooze, snooze_key, snooze_value
from streams.settings import Settings

READ_TIMEOUT_S = 30.0


class SnoozeError(RuntimeError):
    """A snooze could not be written or read; the message says why."""


@dataclass(frozen=True)
class Snoozes:
    """The snoozes topic, read whole: the live ones by key."""

    by_key: dict[bytes, Snooze]

    def active(self, now: datetime) -> list[Snooze]:
        return sorted((s for s in self.by_key.values() if s.until > now),
                      key=lambda s: (s.account_id, s.type or ""))


def read_snoozes(settings: Settings) -> Snoozes:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    topic = settings.topics.notify_snoozes
    try:
        consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","),
                                 enable_auto_commit=False, consumer_timeout_ms=1000)
    except KafkaError as exc:
        raise SnoozeError(f"cannot reach Kafka at {settings.kafka_bootstrap}: "
                          f"{type(exc).__name__}") from exc
    found: dict[bytes, Snooze] = {}
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return Snoozes(found)
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        deadline = time.monotonic() + READ_TIMEOUT_S
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise SnoozeError(f"{topic} was not read within {READ_TIMEOUT_S:g} s")
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    snooze = parse_snooze(r.value)
                    if r.key is None:
                        continue
                    if snooze is None:
                        found.pop(r.key, None)
                    else:
                        found[r.key] = snooze
    finally:
        consumer.close()
    return Snoozes(found)


def _send(settings: Settings, messages: list[tuple[bytes, bytes | None]]) -> None:
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","),
                                 acks="all", retries=5)
    except KafkaError as exc:
        raise SnoozeError(f"cannot reach Kafka at {settings.kafka_bootstrap}: "
                          f"{type(exc).__name__}") from exc
    try:
        for key, value in messages:
            producer.send(settings.topics.notify_snoozes, key=key, value=value).get(timeout=30)
    except KafkaError as exc:
        raise SnoozeError(f"the snooze was not written: {type(exc).__name__}") from exc
    finally:
        producer.close()


def snooze(settings: Settings, account_id: str, days: float, signal_type: str | None,
           now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Snooze:
    if not 0 < days <= 3650:
        raise SnoozeError("--days must be more than 0 and at most 3650")
    held = Snooze(account_id, now() + timedelta(days=days), signal_type)
    _send(settings, [(snooze_key(account_id, signal_type), snooze_value(held))])
    return held


def clear(settings: Settings, account_id: str, signal_type: str | None) -> list[Snooze]:
    """The account's snoozes removed (of ``signal_type`` only, when given); the ones that were
    there."""
    current = read_snoozes(settings).by_key
    keys = [k for k, s in current.items() if s.account_id == account_id and
            (signal_type is None or s.type == signal_type)]
    _send(settings, [(k, None) for k in keys])
    return [current[k] for k in keys]


def render(snoozes: list[Snooze]) -> str:
    if not snoozes:
        return "no account is snoozed"
    lines = [f"{'account':<24} {'type':<22} until"]
    lines += [f"{s.account_id:<24} {s.type or '(every type)':<22} "
              f"{s.until.isoformat(timespec='minutes')}" for s in snoozes]
    return "\n".join(lines)
