"""The ``radar notify`` process (SPEC section 10): its configuration read and judged before
anything starts, the directory followed, the signals consumed as a group, the record written
before each commit, ``/metrics`` served, and a clean stop on SIGTERM (``streams.notify`` holds
what it does with a signal)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from schemas.notify import NotifyConfig, NotifyConfigError, load_notify_config
from streams.metrics import Metrics
from streams.notify import Notifier, counted_retries, restore
from streams.notify_digest import schedule
from streams.notify_kafka import Directory, RecordReader, follow_directory, partitions_of
from streams.settings import Settings

log = logging.getLogger(__name__)
COMMIT_EVERY_S = 1.0
POLL_TIMEOUT_MS = 100
STOP_GRACE_S = 30.0
DIRECTORY_TIMEOUT_S = 120.0


def read_config(settings: Settings, env: Mapping[str, str] | None = None) -> NotifyConfig:
    """The configuration ``RADAR_NOTIFY_CONFIG`` names; NotifyConfigError naming what is
    wrong (the file, or each key)."""
    path = settings.notify_config
    if path is None:
        raise NotifyConfigError(["RADAR_NOTIFY_CONFIG is not set: point it at your notify.toml "
                                 "(start from notify.example.toml)"])
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NotifyConfigError([f"RADAR_NOTIFY_CONFIG: cannot read {path}: "
                                 f"{type(exc).__name__}"]) from exc
    return load_notify_config(text, os.environ if env is None else env)


async def _serve_metrics(settings: Settings, metrics: Metrics) -> Any:
    from aiohttp import web

    from streams.web import metrics_web_app

    runner = web.AppRunner(metrics_web_app(metrics))
    await runner.setup()
    await web.TCPSite(runner, settings.web_host, settings.notify_port).start()
    return runner


async def _commit(consumer: Any, topic: str, offsets: Mapping[int, int],
                  committed: dict[int, int]) -> None:
    from aiokafka import TopicPartition
    from aiokafka.errors import KafkaError

    changed = {p: o for p, o in offsets.items() if committed.get(p) != o}
    if not changed:
        return
    try:
        await consumer.commit({TopicPartition(topic, p): o for p, o in changed.items()})
        committed.update(changed)
    except (KafkaError, AssertionError) as exc:
        # a rebalance is under way: the record keeps what was done from being done again
        log.info("commit failed (%s); the record of deliveries keeps them once",
                 type(exc).__name__)


async def _until_ready(caught_up: asyncio.Event, following: asyncio.Future[Any]) -> None:
    """The directory read whole, or the reason it cannot be (raised)."""
    waiting: asyncio.Future[Any] = asyncio.ensure_future(caught_up.wait())
    try:
        done, _ = await asyncio.wait([waiting, following], timeout=DIRECTORY_TIMEOUT_S,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
    if following in done:
        following.result()
        raise RuntimeError("the directory stopped being followed")
    if not done:
        raise RuntimeError(f"the accounts and snoozes topics were not read within "
                           f"{DIRECTORY_TIMEOUT_S:g} s")


async def run(settings: Settings, config: NotifyConfig, stopping: asyncio.Event) -> None:
    import aiohttp
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener

    from sinks.webhook import WebhookSender

    topics = settings.topics
    metrics = Metrics()
    directory = Directory()
    caught_up = asyncio.Event()
    following: asyncio.Future[None] = asyncio.ensure_future(
        follow_directory(settings, directory, caught_up))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                enable_idempotence=True, client_id="radar-notify")
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                group_id=settings.notify_group, client_id="radar-notify",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    reader = RecordReader(settings)
    session = aiohttp.ClientSession()
    runner = None
    scheduled: asyncio.Future[None] | None = None
    committed: dict[int, int] = {}
    try:
        await _until_ready(caught_up, following)
        await producer.start()
        await consumer.start()
        await reader.start(len(await partitions_of(settings, topics.signals)))
        runner = await _serve_metrics(settings, metrics)

        async def produce(topic: str, partition: int, key: bytes, value: bytes) -> None:
            await producer.send_and_wait(topic, value, key=key, partition=partition)

        sender = WebhookSender(session, on_retry=counted_retries(metrics))
        notifier = Notifier(config, topics.notify_deliveries, directory, metrics,
                            sender.deliver, produce)

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                parts = [tp.partition for tp in revoked if tp.topic == topics.signals]
                await notifier.release(parts)
                offsets = notifier.committable()
                await _commit(consumer, topics.signals,
                              {p: o for p, o in offsets.items() if p in parts}, committed)
                notifier.forget(parts)
                for p in parts:
                    committed.pop(p, None)
                metrics.notify_partitions.set(len(notifier.partitions))

            async def on_partitions_assigned(self, assigned: Any) -> None:
                parts = [tp.partition for tp in assigned if tp.topic == topics.signals]
                await restore(reader, notifier, notifier.assigned(parts))
                metrics.notify_partitions.set(len(notifier.partitions))
                log.info("notifying for partitions %s", sorted(parts))

        consumer.subscribe([topics.signals], listener=Listener())
        scheduled = asyncio.ensure_future(schedule(
            settings, config, directory, notifier.holds_first, sender.deliver,
            notifier.record_digest))
        loop = asyncio.get_running_loop()
        last_commit = loop.time()
        while not stopping.is_set():
            if following.done():
                following.result()  # the directory's reader failed: say why, stop
            fetched = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
            for tp, messages in fetched.items():
                for m in messages:
                    notifier.take(tp.partition, m.offset, m.value)
            if loop.time() - last_commit >= COMMIT_EVERY_S:
                await _commit(consumer, topics.signals, notifier.committable(), committed)
                last_commit = loop.time()
        held = list(notifier.partitions)
        await asyncio.wait_for(notifier.release(held), STOP_GRACE_S)
        await _commit(consumer, topics.signals, notifier.committable(), committed)
    finally:
        following.cancel()
        if scheduled is not None:
            scheduled.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await following
        for stop in (consumer.stop, reader.stop, producer.stop, session.close):
            with contextlib.suppress(Exception):
                await stop()
        if runner is not None:
            await runner.cleanup()


def run_notify(settings: Settings) -> None:
    """``radar notify`` until SIGTERM or SIGINT; a bad configuration stops it before it
    touches Kafka (NotifyConfigError, raised)."""
    config = read_config(settings)
    logging.basicConfig(level=settings.log_level.upper().replace("CRIT", "CRITICAL")
                        .replace("WARN", "WARNING"),
                        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s")

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await run(settings, config, stopping)

    asyncio.run(main())
