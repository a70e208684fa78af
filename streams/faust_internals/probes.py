"""The private state of faust-streaming and aiokafka the worker reads or sets, for the pinned
version (streams.faust_internals): committed offsets and metadata, the last fetch of a
partition, partition counts, the current event of a stream, a table's serializers, the worker
class, and the report of a partition that stopped moving."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka.structs import TopicPartition
from faust.exceptions import NotReady
from faust.types import TP

log = logging.getLogger(__name__)
# how long reading where a partition's reading starts may take (streams.signal_agent)
COMMITTED_TIMEOUT_S = 5.0


def partition_report(consumer: Any, tp: TP) -> str:
    """What Faust and aiokafka know of a partition's reading, in one line, for a log: Faust's
    active and paused sets and read offset; aiokafka's assignment, position, pause and reset
    state, its buffered fetch result and whether a fetch is in flight; when records last came.
    Every lookup is guarded: this is for a warning, and must never fail."""
    parts = [f"{tp.topic}[{tp.partition}]"]

    def add(name: str, get: Callable[[], Any]) -> None:
        try:
            parts.append(f"{name}={get()!r}")
        except Exception as exc:  # noqa: BLE001  (a report, never an error)
            parts.append(f"{name}=<{type(exc).__name__}>")

    add("faust_active", lambda: tp in (consumer._active_partitions or ()))
    add("faust_paused", lambda: tp in consumer._paused_partitions)
    add("faust_read", lambda: consumer._read_offset[tp])
    add("committed", lambda: committed_offsets(consumer).get(tp))
    add("highwater", lambda: consumer.highwater(tp))
    received = consumer.__dict__.get("_radar_received", {}).get(tp)
    parts.append("received_s_ago=" + (f"{time.monotonic() - received:.1f}"
                                      if received is not None else "never"))
    try:
        client = consumer._thread._ensure_consumer()
        assignment = client._subscription.subscription.assignment
        fetcher = client._fetcher
    except Exception as exc:  # noqa: BLE001
        parts.append(f"aiokafka=<{type(exc).__name__}>")
        return " ".join(parts)
    add("assigned", lambda: tp in assignment.tps)
    add("state", lambda: assignment.state_value(tp))
    add("paused", lambda: assignment.state_value(tp).paused)
    add("buffered", lambda: fetcher._records.get(tp))
    add("in_flight", lambda: sorted(fetcher._in_flight))
    add("last_poll", lambda: client.last_poll_timestamp(tp))
    return " ".join(parts)


async def committed_metadata(consumer: Any, tps: list[TP], timeout: float = COMMITTED_TIMEOUT_S
                             ) -> dict[TP, tuple[int, str]]:
    """The committed offset and metadata of each partition still assigned and committed; what
    is not known within ``timeout`` (a rebalance under way) is left out, and said. The wait
    holds one of the consumer thread's two call workers, so it is bounded."""
    client = consumer._thread._ensure_consumer()

    async def fetch() -> dict[TP, tuple[int, str]]:  # in the consumer's thread
        assignment = client._subscription.subscription.assignment
        if assignment is None:
            return {}
        asked = [tp for tp in tps if TopicPartition(tp.topic, tp.partition) in assignment.tps]
        points = await asyncio.wait_for(asyncio.gather(*(
            assignment.state_value(TopicPartition(tp.topic, tp.partition)).fetch_committed()
            for tp in asked)), timeout)
        return {tp: (point.offset, point.metadata or "")
                for tp, point in zip(asked, points, strict=True) if point.offset >= 0}

    try:
        result: dict[TP, tuple[int, str]] = await consumer._thread.call_thread(fetch)
    except Exception as exc:  # noqa: BLE001  (a timeout, a rebalance: the worker goes on)
        log.warning("the committed offsets of %s could not be read (%r): their sources start "
                    "their place in event time from nothing", tps, exc)
        return {}
    return result


def committed_offsets(consumer: Any) -> Mapping[TP, int]:
    """The offsets the consumer last committed, per partition (empty before the first)."""
    committed: Mapping[TP, int] = getattr(consumer, "_committed_offset", {})
    return committed


def last_poll(consumer: Any) -> Callable[[TP], int | None] | None:
    """When the broker last answered a fetch for a partition (ms since the epoch), or None
    while unknown (the consumer is not started yet, e.g. while a restarted worker waits to
    join its group)."""
    try:
        polled: Callable[[TP], int | None] = \
            consumer._thread._ensure_consumer().last_poll_timestamp
    except (AttributeError, RuntimeError, NotReady):
        return None
    return polled


def partition_count(consumer: Any, topic: str) -> int | None:
    """How many partitions ``topic`` has, by the consumer's cluster metadata (None while not
    known). Faust's ``topic_partitions`` reads the group coordinator's snapshot, which only the
    group's leader fills."""
    try:
        found = consumer._thread._ensure_consumer().partitions_for_topic(topic)
    except (AttributeError, RuntimeError, NotReady):
        return None
    return len(found) if found else None


def set_current_event(stream: Any, event: Any) -> None:
    """Make ``event`` the stream's current one: a table write then goes to that event's
    partition."""
    stream._set_current_event(event)


def set_table_serializers(table: Any, key: Any, value: Any) -> None:
    """A table encodes keys and values with its own serializers (taken from key_type and
    value_type, "json" by default), not its schema's; its store takes them when first used,
    and its changelog topic, made when the table was registered, is made again with them (it
    reads the changelog back in recovery and for standbys)."""
    table.key_serializer = key
    table.value_serializer = value
    table.changelog_topic = table._new_changelog_topic()


def worker_class(on_shutdown: Callable[[], Any]) -> type[Any]:
    """Faust's Worker, calling ``on_shutdown`` first when a signal asks it to stop."""
    from faust import Worker

    class RadarWorker(Worker):
        def _schedule_shutdown(self, signal: Any) -> None:
            on_shutdown()
            super()._schedule_shutdown(signal)

    return RadarWorker
