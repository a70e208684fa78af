"""The stalled-partition watch: a partition with lag whose committed offset stays put is
reported once, after the given time; moving, caught-up and new partitions are not."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.faust_internals import partition_report
from streams.stall import StallWatch


def test_a_partition_with_lag_and_no_commit_is_reported_once_after_the_time() -> None:
    watch = StallWatch(after_s=30)
    assert watch.observe([("a", 100, 40)], now=0) == []
    assert watch.observe([("a", 100, 40)], now=29) == []
    assert watch.observe([("a", 120, 40)], now=30) == ["a"]  # (new messages do not count)
    assert watch.observe([("a", 120, 40)], now=300) == []  # said once per stall


def test_progress_caught_up_and_unknown_ends_restart_the_clock() -> None:
    watch = StallWatch(after_s=30)
    watch.observe([("moving", 100, 40), ("caught", 50, 50), ("unknown", None, 7)], now=0)
    watch.observe([("moving", 100, 41), ("caught", 50, 50), ("unknown", None, 7)], now=20)
    assert watch.observe([("moving", 100, 41), ("caught", 50, 50), ("unknown", None, 7)],
                         now=45) == []
    assert watch.observe([("moving", 100, 41), ("caught", 60, 50), ("unknown", 9, 7)],
                         now=50) == ["moving"]  # 30 s since it last moved


def test_a_stall_after_progress_is_reported_again_and_lost_partitions_are_forgotten() -> None:
    watch = StallWatch(after_s=10)
    watch.observe([("a", 100, 40)], now=0)
    assert watch.observe([("a", 100, 40)], now=10) == ["a"]
    watch.observe([("a", 100, 60)], now=11)  # moved: a new stall may be reported
    assert watch.observe([("a", 100, 60)], now=21) == ["a"]
    watch.observe([], now=22)  # revoked
    assert watch.observe([("a", 100, 60)], now=30) == []  # assigned again: a new clock


def test_the_partition_report_never_fails_and_says_what_it_could_not_read() -> None:
    tp = TP("events", 3)

    def broken() -> Any:
        raise RuntimeError("consumer not started")

    consumer = SimpleNamespace(
        _active_partitions={tp}, _paused_partitions=set(), _read_offset={tp: 17},
        _committed_offset={tp: 12}, highwater=lambda _: 40,
        _thread=SimpleNamespace(_ensure_consumer=broken))
    line = partition_report(consumer, tp)
    assert line.startswith("events[3] ")
    for part in ("faust_active=True", "faust_paused=False", "faust_read=17", "committed=12",
                 "highwater=40", "received_s_ago=never", "aiokafka=<RuntimeError>"):
        assert part in line
    assert "faust_active" in partition_report(SimpleNamespace(), tp)  # nothing readable


def test_reading_where_partitions_start_never_stops_the_worker() -> None:
    """``committed_metadata`` waits in one of the consumer thread's two call workers: a
    rebalance that never answers must not hold it (nor the agent) for good."""
    import asyncio

    from streams.faust_internals import committed_metadata

    tp = TP("events", 0)

    class Never:
        def fetch_committed(self) -> Any:
            return asyncio.get_running_loop().create_future()  # never resolved

    from aiokafka.structs import TopicPartition

    assignment = SimpleNamespace(tps={TopicPartition("events", 0)},
                                 state_value=lambda ktp: Never())
    client = SimpleNamespace(_subscription=SimpleNamespace(
        subscription=SimpleNamespace(assignment=assignment)))

    async def call_thread(fn: Any) -> Any:
        return await fn()

    consumer = SimpleNamespace(_thread=SimpleNamespace(_ensure_consumer=lambda: client,
                                                       call_thread=call_thread))
    assert asyncio.run(committed_metadata(consumer, [tp], timeout=0.05)) == {}
