"""Acknowledgement order: Faust commits a partition up to its first gap, so we never make one."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

from streams.acks import AckTracker
from streams.faust_internals import PINNED_FAUST


@dataclass(frozen=True)
class Msg:
    partition: int
    offset: int


def tracker() -> tuple[AckTracker[Msg], list[Msg]]:
    acked: list[Msg] = []
    return AckTracker(lambda m: m.partition, acked.append), acked


def test_a_message_finished_early_waits_for_those_received_before_it() -> None:
    t, acked = tracker()
    m = [Msg(0, i) for i in range(4)]
    t.received(m)
    assert t.finish([m[2], m[3]]) == 0  # offsets 0 and 1 are still held (event-time order)
    assert acked == []
    assert t.finish([m[0]]) == 1
    assert acked == [m[0]]
    assert t.finish([m[1]]) == 3
    assert acked == m
    assert t.pending() == 0


def test_partitions_are_independent() -> None:
    t, acked = tracker()
    a, b = Msg(0, 10), Msg(1, 5)
    t.received([a, b])
    t.finish([b])
    assert acked == [b]
    assert t.pending() == 1


def test_a_revoked_partition_is_forgotten_and_acknowledges_nothing_more() -> None:
    t, acked = tracker()
    m = [Msg(0, 0), Msg(0, 1), Msg(1, 0)]
    t.received(m)
    t.finish([m[1]])
    t.forget([0])
    t.finish([m[0]])  # finished after the rebalance: its new owner reads it again
    assert acked == []
    assert t.pending() == 1


def test_a_late_finish_from_before_a_rebalance_does_not_count_for_the_reassigned_partition(
) -> None:
    """Writes still in flight when a partition was revoked may finish after it came back: the
    old messages are not the new ones, and mark nothing finished."""
    t, acked = tracker()
    old = [Msg(0, 0), Msg(0, 1)]
    t.received(old)
    t.forget([0])
    new = [Msg(0, 0), Msg(0, 1)]  # read again after the partition came back
    t.received(new)
    t.finish(old)
    assert acked == []
    assert t.finished == set()
    t.finish(new)
    assert acked == new
    assert t.pending() == 0 and t.queued == set()


def test_the_batch_consumer_runs_on_the_faust_version_it_was_written_for() -> None:
    """streams.faust_internals replaces an internal method: a new Faust must be re-checked."""
    assert version("faust-streaming") == PINNED_FAUST
    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert f"faust-streaming=={PINNED_FAUST}" in project["project"]["dependencies"]


def test_faust_internals_are_touched_in_one_module_only() -> None:
    """Private attributes of faust-streaming (and of mode, its service library) are named only
    in the package streams/faust_internals, whose version is pinned above."""
    import re
    from pathlib import Path

    private = re.compile(r"[.\"']_(committed_offset|thread|ensure_consumer|set_current_event|"
                         r"schedule_shutdown|read_offset|drain_messages|new_messages|add_gap|"
                         r"wait_next_records|tp_index|buffered_partitions|subscription|"
                         r"new_changelog_topic|active_partitions|paused_partitions|fetcher|in_flight|queues|"
                         r"clear_on_resume|radar_metadata)\b|\.(key|value)_serializer\s*=")
    root = Path(__file__).resolve().parents[2]
    internals = root / "streams" / "faust_internals"
    offenders = sorted(str(p.relative_to(root)) for folder in ("streams", "processors", "sinks", "tools")
                       for p in (root / folder).rglob("*.py")
                       if internals not in p.parents and private.search(p.read_text()))
    assert offenders == []
    assert all(private.search(p.read_text()) for p in internals.glob("[a-z]*.py"))


def test_radar_sql_and_erase_import_neither_faust_nor_a_kafka_stream_client() -> None:
    """The analyst's commands start fast and work where only the database is reachable."""
    import subprocess
    import sys

    probe = ("import sys, streams.cli, streams.query, streams.erasure, streams.store_client; "
             "print(sorted(m for m in ('faust', 'mode', 'aiokafka') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_a_batch_fetched_before_the_last_rebalance_is_not_handled() -> None:
    """A fetch that waited in the agent's queue across a rebalance is read again from the
    committed offsets: handled too, its messages would be acknowledged twice."""
    from types import SimpleNamespace
    from typing import Any, cast

    from streams.faust_internals import FetchedBatch, count_revocation, is_stale

    app = cast(Any, SimpleNamespace(consumer_generation_id=3))
    before, now = FetchedBatch(2), FetchedBatch(3)
    before.extend(["m1", "m2"])
    assert is_stale(before, app) and list(before) == ["m1", "m2"]
    assert not is_stale(now, app)
    assert not is_stale(["a plain list"], app)
    # a revocation since it was handed over (the generation changes only when the rebalance
    # ends): the signal stage has forgotten what it read of the batch's partitions
    count_revocation(app)
    assert is_stale(now, app)
    later = FetchedBatch(3)
    later.revocations = 1
    assert not is_stale(later, app)


def test_a_stale_batch_is_discarded_without_holding_back_the_messages_after_it() -> None:
    acked: list[list[int]] = []
    tracker: AckTracker[list[int]] = AckTracker(lambda m: m[0], acked.append)
    stale, fresh = [[0, 5], [0, 6], [1, 9]], [[0, 5], [0, 6]]  # read again: equal, not the same
    tracker.received(stale)
    tracker.received(fresh)
    tracker.discard(stale)
    assert tracker.finish(fresh) == 2 and acked == fresh
    assert tracker.pending() == 0


def _bare_consumer(gaps: list[tuple[int, int]]) -> Any:
    """A BatchConsumer with only what ``_new_messages`` touches: topic ``t`` is a batch topic."""
    from types import SimpleNamespace

    from faust.types import TP

    from streams.faust_internals import BatchConsumer

    consumer = cast(Any, object.__new__(BatchConsumer))

    async def add_gap(tp: TP, start: int, end: int) -> None:
        gaps.append((start, end))

    consumer._add_gap = add_gap
    consumer.app = SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: True))
    consumer.batch_topics = frozenset({"t"})
    consumer._read_offset = {}
    return consumer


def _messages(*offsets: int) -> list[Any]:
    from types import SimpleNamespace

    return [SimpleNamespace(offset=o) for o in offsets]


def test_no_gap_is_registered_over_offsets_handed_over_already() -> None:
    """After a seek back to the committed offset, a fetch that starts beyond it must not make
    Faust count offsets handed over (and acknowledged) a gap as well: it would commit one
    offset at a time. A real gap (compaction) past them still is one."""
    import asyncio

    from faust.types import TP

    gaps: list[tuple[int, int]] = []
    consumer = _bare_consumer(gaps)
    tp = TP("t", 0)
    consumer._read_offset[tp] = None

    async def run() -> None:
        assert len(await consumer._new_messages(tp, _messages(0, 1, 2, 3, 4), 7)) == 5
        consumer._handed[tp] = (7, 4)  # (put on the agents' queue)
        consumer._read_offset[tp] = 1  # a seek back to the committed offset
        assert [m.offset for m in await consumer._new_messages(tp, _messages(4, 5, 9), 7)] \
            == [5, 9]
        assert gaps == [(6, 9)]  # not 2..3: handed over already; 6..8 are a gap
        consumer._read_offset[tp] = None  # a new generation: nothing handed over in it yet
        await consumer._new_messages(tp, _messages(3, 6), 8)
        assert gaps == [(6, 9), (4, 6)]

    asyncio.run(run())


def test_messages_fetched_but_never_handed_over_are_not_dropped_when_read_again() -> None:
    """The stall of issue 12: a worker fetched a partition's messages (Faust's read offset
    moved past them) in one generation, a rebalance cleared the agents' queues, and in the
    next generation the same messages, read again from the committed offset while Faust's
    seek was still under way, were dropped as read already: aiokafka's position was then at
    the end, nothing was fetched again, and every watermark waited for that source. Only
    what was put on the agents' queues in this generation is dropped."""
    import asyncio

    from faust.types import TP

    consumer = _bare_consumer([])
    tp, changelog = TP("t", 0), TP("changelog", 0)

    async def run() -> None:
        consumer._read_offset[tp] = 1198  # fetched in generation 1, never handed over
        again = await consumer._new_messages(tp, _messages(2, 3, 4), 2)
        assert [m.offset for m in again] == [2, 3, 4]
        assert consumer._read_offset[tp] == 1198  # (gaps are judged past it, as before)
        consumer._handed[tp] = (2, 3)  # 2 and 3 put on the queue in generation 2
        assert [m.offset for m in await consumer._new_messages(tp, _messages(2, 3, 4), 2)] \
            == [4]
        assert len(await consumer._new_messages(tp, _messages(2, 3), 3)) == 2  # generation 3
        # a changelog (read by Faust's recovery, message by message) keeps Faust's rule
        consumer._read_offset[changelog] = 10
        assert [m.offset for m in await consumer._new_messages(changelog, _messages(9, 10, 11),
                                                                2)] == [10, 11]

    asyncio.run(run())


def test_batches_handed_to_the_agent_survive_faust_resuming_the_flow() -> None:
    """Faust clears the agents' queues whenever it resumes the flow, and a rebalance's recovery
    resumes it after the partitions were resumed and fetched from: those batches were lost
    (the second stall of issue 12). Our queues are kept; a stale batch is told by is_stale."""
    import asyncio

    from mode.utils.queues import FlowControlEvent, FlowControlQueue

    from streams.faust_internals import keep_through_resumes

    async def run() -> tuple[int, int]:
        flow = FlowControlEvent(initially_suspended=False)
        stock: FlowControlQueue[str] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
        ours: FlowControlQueue[str] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
        keep_through_resumes(ours, flow)
        for queue in (stock, ours):
            await queue.put("batch")
        flow.resume()  # the recovery's last resume
        return stock.qsize(), ours.qsize()

    assert asyncio.run(run()) == (0, 1)  # (Faust's own queues are still cleared)
