"""``radar erase``: remove a person or an account while the pipeline runs (SPEC section 12).

An erasure has two halves:
- **the engine forgets**: a record on ``<prefix>.erasures`` (compacted, key = the subject's
  hash; it holds the hash and the time, never the id) reaches every worker. Each one reads the
  whole topic before it starts, and follows it while it runs (``follow_erasures``). Applying a
  record (``Eraser.apply``) adds the hash to the shared set that drops the subject's events
  at decode and in the engine, waits until every batch decoded before that is done with, then
  forgets the subject in every account state (``SignalStage.erase``);
- **ClickHouse forgets**: ``sinks.erasure`` removes the subject from every table, counts it
  and records the receipt; run where the database is open (``radar store``), once the batch it
  is inserting is in, so no batch decoded before the erasure is written after it.

With embedded ClickHouse and a running ``radar store``, ``radar erase`` asks the store (``POST
/erase``), which holds the database; otherwise it publishes the record and erases in the
database itself (a worker or store started later reads the record first). The store follows
the records too, so the events it decodes after one are dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from processors.erasure import SUBJECT_KINDS, Erased, SubjectKind, subject_hash
from sinks.clickhouse import init_schema, open_client
from sinks.erasure import erase as erase_in_clickhouse
from streams.kafka_admin import create_if_missing, open_admin
from streams.metrics import Metrics
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.signal_stage import SignalStage

log = logging.getLogger(__name__)
READ_TIMEOUT_S = 60.0


class ErasureError(RuntimeError):
    """An erasure could not be carried out; the message says what was (not) done."""


class NoStore(ErasureError):
    """Nothing answers at the store's address."""


def erasure_record(kind: SubjectKind, digest: str, at: datetime) -> tuple[bytes, bytes]:
    """(key, value) of the record on the erasures topic."""
    value = {"kind": kind, "hash": digest, "erased_at": at.isoformat()}
    return f"{kind}:{digest}".encode(), json.dumps(value).encode()


def parse_record(value: bytes | None) -> tuple[SubjectKind, str] | None:
    try:
        body = json.loads(value or b"")
        kind, digest = body["kind"], body["hash"]
    except (ValueError, KeyError, TypeError):
        return None
    if kind not in SUBJECT_KINDS or not isinstance(digest, str):
        return None
    return kind, digest


def ensure_erasures_topic(settings: Settings) -> None:
    """The erasures topic must keep its records for ever (compacted, one per subject): when it
    is missing it is created so, before anything reads it, since a broker that creates topics
    on first use would make one that deletes records after its retention, and a worker started
    after that would no longer know the erasure. One that deletes is reported loudly."""
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import KafkaError

    topic = settings.topics.erasures
    admin = open_admin(settings, "radar-erasures", ErasureError, f"check {topic}")
    try:
        if create_if_missing(admin, topic, settings.topic_partitions,
                             {"cleanup.policy": "compact"}):
            log.warning("created %s (compacted): it keeps every erasure for ever", topic)
            return
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"cleanup.policy": None})],
            config_filter="all")
        policy = described.get("topic", {}).get(topic, {}).get("cleanup.policy", {}).get("value")
        if isinstance(policy, str) and "compact" not in policy.split(","):
            log.error("%s has cleanup.policy=%s: erasure records are deleted after its "
                      "retention, and a worker started later would not know them; set "
                      "cleanup.policy=compact", topic, policy)
    except KafkaError as exc:
        log.warning("could not check %s (%s): it must be compacted", topic, type(exc).__name__)
    finally:
        admin.close()


def read_erasures(settings: Settings, erased: Erased) -> dict[int, int]:
    """Read the whole erasures topic into ``erased`` (at start, before any event is applied);
    returns the next offset per partition, where following it goes on."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    ensure_erasures_topic(settings)
    topic = settings.topics.erasures
    deadline = time.monotonic() + READ_TIMEOUT_S
    while True:
        try:
            consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","),
                                     enable_auto_commit=False, consumer_timeout_ms=1000)
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise ErasureError(f"cannot read {topic} from {settings.kafka_bootstrap}: "
                                   f"{exc}") from exc
            time.sleep(1)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return {}  # not created yet: nothing was ever erased here
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    parsed = parse_record(record.value)
                    if parsed is not None:
                        erased.add(*parsed)
            if time.monotonic() > deadline:
                raise ErasureError(f"reading {topic} took longer than {READ_TIMEOUT_S:g}s")
        return {tp.partition: ends[tp] for tp in tps}
    finally:
        consumer.close()


class Eraser:
    """The engine's half of an erasure, inside a running worker."""

    def __init__(self, erased: Erased, stage: SignalStage | None, metrics: Metrics,
                 gate: asyncio.Lock, drain: Callable[[], Awaitable[None]],
                 publish: Callable[[bytes, bytes], Awaitable[None]] | None = None,
                 erase_tables: Callable[[SubjectKind, str], Awaitable[dict[str, int]]]
                 | None = None) -> None:
        self.erased = erased
        self.stage = stage
        self.metrics = metrics
        self.gate = gate  # held by the agent while it decodes and applies a batch
        self.drain = drain  # returns once every batch taken so far is done with
        # (key, value) on the erasures topic, acknowledged; and ClickHouse's half, on the
        # writer's thread: only where the database is written (radar store)
        self.publish = publish
        self.erase_tables = erase_tables

    async def erase(self, kind: SubjectKind, subject_id: str) -> dict[str, int]:
        """The whole erasure, in the store that holds the database: the record for every
        worker, this process's half (nothing decoded before it is stored after it), then the
        tables. Returns the rows removed per table."""
        assert self.publish is not None and self.erase_tables is not None, "not a store"
        digest = subject_hash(kind, subject_id)
        await self.publish(*erasure_record(kind, digest, datetime.now(UTC)))
        await self.apply(kind, digest)
        return await self.erase_tables(kind, subject_id)

    async def apply(self, kind: SubjectKind, digest: str) -> None:
        """From now on the subject's events are dropped; what was taken before is done with
        first, then every state forgets the subject. Idempotent (counted once)."""
        new = self.erased.add(kind, digest)
        async with self.gate:
            await self.drain()
            if self.stage is not None:
                await self.stage.erase()
        if new:
            self.metrics.erasures.inc()


def erasure_partitions(settings: Settings) -> set[int]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","))
    try:
        return set(consumer.partitions_for_topic(settings.topics.erasures) or ())
    finally:
        consumer.close()


async def follow_erasures(settings: Settings, eraser: Eraser, start: dict[int, int]) -> None:
    """Apply the erasure records that arrive while the process runs (from ``radar erase``,
    through a store or without one). Runs until cancelled."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = settings.topics.erasures
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                enable_auto_commit=False)
    # the partitions read_erasures read (it made sure the topic exists); aiokafka's metadata of
    # a consumer without subscription does not name the topic, so it is not asked
    partitions = set(start)
    while not partitions:
        partitions = await asyncio.to_thread(erasure_partitions, settings)
        if not partitions:
            await asyncio.sleep(1)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start.get(tp.partition, 0))
        while True:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    parsed = parse_record(record.value)
                    if parsed is not None:
                        await eraser.apply(*parsed)
    finally:
        await consumer.stop()


def send_erasure_record(settings: Settings, key: bytes, value: bytes) -> None:
    """A record on the erasures topic, acknowledged by the broker."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","),
                                 acks="all", max_block_ms=15_000)
        try:
            producer.send(settings.topics.erasures, key=key, value=value).get(timeout=15)
        finally:
            producer.close()
    except KafkaError as exc:
        raise ErasureError(
            f"cannot publish to {settings.topics.erasures} on {settings.kafka_bootstrap} "
            f"({type(exc).__name__}): the engine would not learn of the erasure, so nothing "
            "was erased; start Kafka and run it again") from exc


def erase_through_store(url: str, kind: SubjectKind, subject_id: str,
                        token: str | None) -> dict[str, int]:
    from streams.store_client import StoreRefused, StoreUnreachable, post_to_store

    try:
        answer = post_to_store(url, "/erase", {"kind": kind, "id": subject_id}, token,
                               timeout=600)
    except StoreRefused as exc:
        raise ErasureError(str(exc)) from exc
    except StoreUnreachable as exc:
        raise NoStore(str(exc)) from exc
    removed: dict[str, int] = answer["removed"]
    return removed


def erase_here(settings: Settings, kind: SubjectKind, subject_id: str) -> dict[str, int]:
    """No store holds the database: the record for the engine, then the tables here."""
    key, value = erasure_record(kind, subject_hash(kind, subject_id), datetime.now(UTC))
    send_erasure_record(settings, key, value)
    client = open_client(settings.dsn)
    try:
        init_schema(client, settings.events_ttl_days)  # the receipts table, if new
        return erase_in_clickhouse(client, kind, subject_id, lambda: datetime.now(UTC))
    finally:
        client.close()


def run_erase(settings: Settings, kind: SubjectKind, subject_id: str) -> dict[str, int]:
    from streams.store_client import read_store_state

    token = settings.sql_token.get_secret_value() if settings.sql_token else None
    if settings.embedded:
        state = read_store_state(settings)
        if state is not None:  # it holds the database: only it can erase there
            return erase_through_store(str(state["url"]), kind, subject_id, token)
    else:
        # a store writing to the same server erases after its own writes in flight
        try:
            return erase_through_store(settings.store_url, kind, subject_id, token)
        except NoStore:
            pass
    return erase_here(settings, kind, subject_id)


def handle_erase_request(body: Any) -> tuple[SubjectKind, str]:
    """The subject of a ``POST /erase`` body, or ValueError."""
    if not isinstance(body, dict) or body.get("kind") not in SUBJECT_KINDS or \
            not isinstance(body.get("id"), str) or not body["id"]:
        raise ValueError('send {"kind": "stakeholder" | "account", "id": "..."}')
    kind: SubjectKind = body["kind"]
    return kind, body["id"]
