"""What ``radar notify`` reads from Kafka besides the signals (SPEC section 10):

- the **directory**: each account's name and owner, from its latest ``account_profile`` (the
  compacted accounts topic: a small one, where the account-state topic carries a large row per
  change of any account), and the snoozes ``radar snooze`` wrote on the compacted snoozes
  topic; both read whole before the first signal is judged, then followed;
- the **record of deliveries** of a signals partition (the deliveries topic, compacted, one
  record per Idempotency-Key, on the signal's partition): read whole when the partition is
  assigned, so what an earlier notifier delivered is not sent again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from processors.notify.messages import Account
from processors.notify.routing import Snooze
from schemas.events import INPUT_EVENT, AccountProfile
from schemas.notify import DeliveryRecord
from streams.settings import Settings

log = logging.getLogger(__name__)
POLL_MS = 200


class NotifyKafkaError(RuntimeError):
    """Kafka is not as radar notify needs it (a topic missing, partitions that differ)."""


def snooze_key(account_id: str, signal_type: str | None) -> bytes:
    return f"{account_id}\x1f{signal_type or '*'}".encode()


def snooze_value(snooze: Snooze) -> bytes:
    return json.dumps({"account_id": snooze.account_id, "type": snooze.type,
                       "until": snooze.until.isoformat()}).encode()


def parse_snooze(value: bytes | None) -> Snooze | None:
    try:
        body = json.loads(value or b"")
        until = datetime.fromisoformat(body["until"])
        kind = body.get("type")
        if not isinstance(body["account_id"], str) or until.tzinfo is None or \
                not (kind is None or isinstance(kind, str)):
            return None
        return Snooze(body["account_id"], until, kind)
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class Directory:
    """Names and owners by account, and the snoozes by key, as last read."""

    accounts: dict[str, Account] = field(default_factory=dict)
    snoozes: dict[bytes, Snooze] = field(default_factory=dict)
    # the event time of each account's profile: a late older one changes nothing
    profiled_at: dict[str, datetime] = field(default_factory=dict)

    def account(self, account_id: str) -> Account:
        return self.accounts.get(account_id) or Account(account_id)

    def apply_profile(self, value: bytes | None) -> None:
        """An ``account_profile`` as the worker judges it (the same contract): the latest by
        event time wins, as in the engine; anything else on the topic is left out."""
        if not value:
            return
        try:
            profile = INPUT_EVENT.validate_json(value)
        except ValidationError:
            return
        if not isinstance(profile, AccountProfile):
            return
        before = self.profiled_at.get(profile.account_id)
        if before is not None and profile.occurred_at < before:
            return
        self.profiled_at[profile.account_id] = profile.occurred_at
        self.accounts[profile.account_id] = Account(profile.account_id, profile.name,
                                                    profile.owner)

    def apply_snooze(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        snooze = parse_snooze(value)
        if snooze is None:  # a cleared snooze (tombstone), or nothing readable
            self.snoozes.pop(key, None)
        else:
            self.snoozes[key] = snooze


def _partitions(settings: Settings, topic: str) -> list[int]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","),
                             client_id="radar-notify-metadata")
    try:
        return sorted(consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close()


async def partitions_of(settings: Settings, topic: str) -> list[int]:
    """The partitions of ``topic`` (an error naming it when it does not exist)."""
    from kafka.errors import KafkaError

    try:
        found = await asyncio.to_thread(_partitions, settings, topic)
    except KafkaError as exc:
        raise NotifyKafkaError(f"cannot reach Kafka at {settings.kafka_bootstrap}: "
                               f"{type(exc).__name__}") from exc
    if not found:
        raise NotifyKafkaError(f"the topic {topic} does not exist (`radar kafka up` creates "
                               "every topic; on another cluster, create it)")
    return found


def _consumer(settings: Settings, client_id: str) -> Any:
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                            client_id=client_id, enable_auto_commit=False,
                            auto_offset_reset="earliest")


async def follow_directory(settings: Settings, directory: Directory,
                           caught_up: asyncio.Event) -> None:
    """Read the accounts and snoozes topics whole (then set ``caught_up``), and follow them
    until cancelled."""
    from aiokafka import TopicPartition

    topics = settings.topics
    consumer = _consumer(settings, "radar-notify-directory")
    await consumer.start()
    try:
        accounts = topics.accounts
        tps = [TopicPartition(t, p) for t in (accounts, topics.notify_snoozes)
               for p in await partitions_of(settings, t)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while True:
            fetched = await consumer.getmany(timeout_ms=POLL_MS, max_records=10_000)
            for tp, messages in fetched.items():
                for m in messages:
                    if tp.topic == accounts:
                        directory.apply_profile(m.value)
                    else:
                        directory.apply_snooze(m.key, m.value)
            if not caught_up.is_set() and \
                    all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                caught_up.set()
    finally:
        await consumer.stop()


class RecordReader:
    """Reads the record of deliveries of signals partitions, whole, when they are assigned."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topics.notify_deliveries
        self.consumer = _consumer(settings, "radar-notify-records")

    async def start(self, signals_partitions: int) -> None:
        await self.consumer.start()
        found = len(await partitions_of(self.settings, self.topic))
        if found != signals_partitions:
            raise NotifyKafkaError(
                f"{self.topic} has {found} partitions and the signals topic "
                f"{signals_partitions}: the record of a signal's deliveries is kept on the "
                "signal's partition, so they must be equal")

    async def stop(self) -> None:
        await self.consumer.stop()

    async def read(self, partitions: Collection[int]) -> dict[int, dict[str, str]]:
        """Each partition's record: outcome by key, the latest record of a key winning."""
        from aiokafka import TopicPartition

        records: dict[int, dict[str, str]] = {p: {} for p in partitions}
        tps = [TopicPartition(self.topic, p) for p in partitions]
        if not tps:
            return records
        self.consumer.assign(tps)
        await self.consumer.seek_to_beginning(*tps)
        ends = await self.consumer.end_offsets(tps)
        waiting = {tp for tp in tps if ends[tp] > 0}
        while waiting:
            fetched = await self.consumer.getmany(*waiting, timeout_ms=POLL_MS,
                                                  max_records=50_000)
            for tp, messages in fetched.items():
                for m in messages:
                    outcome = _outcome(m.value)
                    if m.key is not None and outcome is not None:
                        records[tp.partition][m.key.decode(errors="replace")] = outcome
            waiting = {tp for tp in waiting if await self.consumer.position(tp) < ends[tp]}
        return records


def _outcome(value: bytes | None) -> str | None:
    if not value:
        return None
    try:
        return DeliveryRecord.model_validate_json(value).outcome
    except ValidationError:
        log.warning("a record on the deliveries topic is not one; ignored")
        return None
