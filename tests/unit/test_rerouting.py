"""Several workers, one sequence (SPEC sections 9 and 11): a misrouted event travels to its
account's owner through the rerouted topic, and each partition's watermark counts every source
of the inputs, those read by other workers by their progress marks (processors.rerouting).
Pure: the topic is a list here (tests/integration/test_delivery.py runs ``no-keys3`` on Kafka).
"""

from __future__ import annotations

import random
import sys
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_signal_stage_delivery import event

from processors.ingest import AcceptedEvent, RawMessage
from processors.partitioning import partition_of
from processors.rerouting import (
    ORIGIN_HEADER,
    PROGRESS_HEADER,
    Origin,
    encode_progress,
    partition_watermark,
    read_rerouted,
)
from processors.rules import DEFAULT_RULES
from processors.sequencer import Sequencer
from processors.sequencer_ports import MemoryStateTable
from processors.watermark import Source
from streams.settings import load_settings
from tools.simulation import SimConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from determinism_check import (  # noqa: E402
    Uncounted,
    broker_logs,
    interleaved,
    one_fetch,
    several_workers,
    world_events,
)

SETTINGS = load_settings({"RADAR_TOPIC_PARTITIONS": "4"})
REPLIES, CONTENT = "radar.outreach-replies", "radar.content-interactions"
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


# -- the messages ------------------------------------------------------------------------------


def test_an_origin_and_a_mark_read_back_exactly() -> None:
    origin = Origin("radar.accounts", 3, 1234, 1_772_441_234.123456789, 1_772_441_234_567)
    assert read_rerouted([(ORIGIN_HEADER, origin.header())], b"{}") == origin
    progress = {("radar.accounts", 0): (1_772_441_234.1, False), (REPLIES, 5): (None, True)}
    assert read_rerouted([("other", b"x"), (PROGRESS_HEADER, b"1")],
                         encode_progress(progress)) == progress


@pytest.mark.parametrize(("headers", "value"), [
    ([], b"{}"),  # neither
    ([(ORIGIN_HEADER, b"not json")], b"{}"),
    ([(ORIGIN_HEADER, b'["t", "0", 1, 2.0, null]')], b"{}"),  # a partition as a string
    ([(ORIGIN_HEADER, b'["t", 0, 1, NaN, null]')], b"{}"),
    ([(PROGRESS_HEADER, b"1")], b'{"a": 1}'),
    ([(PROGRESS_HEADER, b"1")], b'[["t", 0, 1.0]]'),
    ([(PROGRESS_HEADER, b"1")], b'[["t", 0, 1.0, "yes"]]'),
    ([(PROGRESS_HEADER, b"1")], b'[["t", 0, true, false]]'),
])
def test_a_message_no_worker_wrote_is_neither(headers: list[tuple[str, bytes]],
                                              value: bytes) -> None:
    assert read_rerouted(headers, value) is None


# -- one partition's watermark -----------------------------------------------------------------


class Worker:
    """A sequencer owning partition 0 of 2, reading the replies and content of partition 0;
    the sources of partition 1 are read by another worker."""

    def __init__(self) -> None:
        self.every: list[Source] = [(t, p) for t in (REPLIES, CONTENT) for p in (0, 1)]
        self.assigned = [(REPLIES, 0), (CONTENT, 0)]
        self.holding: set[Source] = set(self.assigned)
        self.stage = Sequencer(DEFAULT_RULES, MemoryStateTable(), Uncounted(), self.sources, 2,
                               lambda: T0, every_source=lambda: self.every)
        self.offsets: dict[Source, int] = {}
        self.signals: list[str] = []

    def sources(self) -> tuple[Collection[Source], Collection[Source]]:
        return self.assigned, self.holding

    def item(self, kind: str, at: datetime, event_id: str, account: str, partition: int,
             **fields: Any) -> AcceptedEvent:
        e = event(kind, at, event_id, account=account, **fields)
        source = (REPLIES if kind == "outreach_reply" else CONTENT, partition)
        offset = self.offsets[source] = self.offsets.get(source, -1) + 1
        return AcceptedEvent(e, RawMessage(source[0], partition, offset, None, b""))

    def watermark(self, partition: int) -> tuple[float | None, Source | None]:
        return partition_watermark(partition, self.every, self.assigned, self.holding,
                                   self.stage.event_clock.high,
                                   self.stage.marks.get(partition, {}))

    def step(self) -> None:
        result, _ = self.stage.step()
        self.signals += [s.type for s in result.signals]


# an account of partition 0 and one of partition 1 (of 2)
HOME = next(a for a in (f"acct-{n}" for n in range(50)) if partition_of(a, 2) == 0)
AWAY = next(a for a in (f"acct-{n}" for n in range(50)) if partition_of(a, 2) == 1)


def test_a_source_read_elsewhere_holds_the_watermark_until_marked() -> None:
    w = Worker()
    w.stage.admit([(w.item("outreach_reply", T0, "r1", HOME, 0), "r1"),
                   (w.item("content_interaction", T0, "c1", HOME, 0), "c1")])
    w.step()
    assert w.stage.held() == 2  # partition 1's sources are not known yet
    w.stage.progress(0, {(REPLIES, 1): (T0.timestamp() + 60, False),
                         (CONTENT, 1): (T0.timestamp() - 60, False)})
    w.step()
    assert w.stage.held() == 2  # content of partition 1 is behind: it may bring older ones
    w.stage.progress(0, {(CONTENT, 1): (T0.timestamp() + 1, False)})
    w.step()
    # the content at the watermark goes; the reply waits, as its own source (still at that
    # time, and after content in the sources' order) may bring another of that very time
    assert w.stage.held() == 1
    w.stage.admit([(w.item("outreach_reply", T0 + timedelta(seconds=1), "r2", HOME, 0), "r2")])
    w.step()
    assert w.stage.held() == 2  # content of partition 0, still at T0, holds both
    w.holding = {(REPLIES, 0)}  # content of partition 0 idle
    w.step()
    # r1 out; r2 at T0 + 1 s waits for content of partition 1, marked at that very time
    assert w.stage.held() == 1


def test_a_mark_saying_idle_lets_event_time_pass_it_and_all_idle_is_the_latest() -> None:
    w = Worker()
    w.stage.admit([(w.item("outreach_reply", T0, "r1", HOME, 0), "r1")])
    w.stage.progress(0, {(REPLIES, 1): (None, True), (CONTENT, 1): (T0.timestamp() - 3600, True)})
    w.step()
    assert w.stage.held() == 1  # content of partition 0 (read here) has not delivered
    w.holding = {(REPLIES, 0)}  # content of partition 0 idle: only the replies hold
    w.step()
    assert w.stage.held() == 0
    watermark, until = w.watermark(0)
    assert (watermark, until) == (T0.timestamp(), (REPLIES, 0))
    w.holding = set()
    w.stage.progress(0, {(CONTENT, 1): (T0.timestamp() + 7200, True)})
    assert w.watermark(0) == \
        (T0.timestamp() + 7200, None)


def test_a_misrouted_event_is_forwarded_not_held_and_a_forwarded_one_is_held() -> None:
    w = Worker()
    left = w.item("role_change", T0, "left", AWAY, 0, stakeholder_id="c", change="left")
    reply = w.item("outreach_reply", T0, "r", AWAY, 0)
    w.stage.admit([(reply, "token")])
    assert w.stage.held() == 0
    [forward] = w.stage.outbox
    assert (forward.partition, forward.item, forward.at, forward.token) == \
        (1, reply, T0.timestamp(), "token")
    # what another worker forwards here comes with its place in event time
    forwarded = AcceptedEvent(event("outreach_reply", T0, "r2", account=HOME),
                              RawMessage(REPLIES, 1, 7, None, b""))
    w.stage.admit_forwarded([(forwarded, T0.timestamp() + 5, "fwd")])
    assert w.stage.held() == 1 and left.event.account_id == AWAY
    [held] = w.stage.buffers[0]._heap
    assert held[:3] == (T0.timestamp() + 5, (REPLIES, 1), 7)


def test_a_revoked_partition_forgets_its_marks_and_keeps_the_forwards_of_others() -> None:
    w = Worker()
    forwarded = AcceptedEvent(event("outreach_reply", T0, "r2", account=HOME),
                              RawMessage(REPLIES, 1, 7, None, b""))
    w.stage.admit_forwarded([(forwarded, T0.timestamp(), "fwd")])
    w.stage.progress(0, {(REPLIES, 1): (T0.timestamp(), False)})
    w.stage.progress(1, {(REPLIES, 1): (T0.timestamp(), False)})
    w.stage._forget({1})  # the partition of the forward's origin, not of its account
    assert w.stage.held() == 1 and set(w.stage.marks) == {0}
    w.stage._forget({0})
    assert w.stage.held() == 0 and w.stage.marks == {}


# -- a world through several workers ------------------------------------------------------------


@pytest.mark.parametrize(("workers", "batch", "seed", "rebalances"), [
    (2, 300, 1, 0), (3, 40, 2, 0), (4, 1000, 3, 0), (3, 200, 4, 3), (2, 60, 5, 2),
])
def test_several_workers_without_keys_give_the_keyed_replay(workers: int, batch: int,
                                                            seed: int, rebalances: int) -> None:
    """Also when the partitions move between workers mid-stream: each is read again from its
    committed offset by its new owner, what was acknowledged since the last commit twice."""
    settings = SETTINGS
    events = world_events(SimConfig(accounts=14, days=120, seed=seed), settings)
    reference = one_fetch(settings, broker_logs(events, settings))
    keyless = broker_logs(events, settings, random.Random(seed))
    run = several_workers(settings, keyless, workers, batch, seed, rebalances)
    assert len(reference.signals) > 50
    assert {(s.signal_id, s.status) for s in run.signals.values()} == \
        {(s.signal_id, s.status) for s in reference.signals.values()}
    # the very states of one worker reading the same logs (an event late in its source is
    # placed where that source had got to, and without keys its sources are others than with)
    assert run.states == interleaved(settings, keyless, batch, seed).states


def test_several_workers_wait_for_every_source_not_only_their_own() -> None:
    """The same world where marks are ignored (each worker's watermark over its own sources
    only, as before the rerouted topic): the signals differ, so the test above can fail."""
    settings = SETTINGS
    events = world_events(SimConfig(accounts=14, days=120, seed=1), settings)
    reference = one_fetch(settings, broker_logs(events, settings))
    keyless = broker_logs(events, settings, random.Random(1))
    ignore_marks = Sequencer.progress
    try:
        Sequencer.progress = lambda self, partition, marks: self.marks.setdefault(  # type: ignore[method-assign]
            partition, {}).update(dict.fromkeys(marks, (None, True)))
        run = several_workers(settings, keyless, 3, 300, 1)
    except AssertionError as held:  # events left behind for good: as wrong
        assert "still held" in str(held)
        return
    finally:
        Sequencer.progress = ignore_marks  # type: ignore[method-assign]
    assert {s.signal_id for s in run.signals.values()} != \
        {s.signal_id for s in reference.signals.values()}


def test_time_moves_on_with_the_slowest_worker() -> None:
    """No held event of one worker is applied before a mark of the others covers it."""
    w = Worker()
    w.holding = set()
    w.stage.admit([(w.item("outreach_reply", T0 + timedelta(days=3), "r", HOME, 0), "r")])
    w.stage.progress(0, {(REPLIES, 1): (T0.timestamp(), False), (CONTENT, 1): (None, True)})
    w.step()
    assert w.stage.held() == 1
    w.stage.progress(0, {(REPLIES, 1): (T0.timestamp() + 4 * 86400, False)})
    w.step()
    assert w.stage.held() == 0


def test_a_partition_taken_away_leaves_no_state_of_its_accounts_behind() -> None:
    """A state loaded before its partition's accounts were (a lateness judgement on arrival
    loads one while the watermark is not known yet) is forgotten with the partition: taken
    back later, the partition's accounts are read from the table, as its last owner left them."""
    w = Worker()
    table = w.stage.table
    assert isinstance(table, MemoryStateTable)
    w.stage.admit([(w.item("outreach_reply", T0 + timedelta(days=30), "r1", HOME, 0), "r1")])
    w.step()  # held: partition 1's sources are not marked yet, so nothing is loaded
    old = w.stage.cache.setdefault(HOME, w.stage._state(HOME) or _a_state(HOME))
    table.put(HOME, 0, {"p": 0, "s": {**old.to_dict(), "late_ignored": 7}})  # another owner
    w.stage._forget({0})
    state = w.stage._state(HOME)
    assert state is not None and state.late_ignored == 7


def _a_state(account_id: str) -> Any:
    from processors.engine import apply_event
    state, _ = apply_event(None, event("outreach_reply", T0, "r0", account=account_id),
                           DEFAULT_RULES, T0, T0.timestamp())
    return state


def test_the_rerouter_writes_forwards_then_marks_of_what_changed_and_all_of_them_at_times() -> None:
    import asyncio

    from processors.sequencer_ports import Forward
    from streams.signal_stage import HEARTBEAT_S, MARK_EVERY_S, Rerouter

    sent: list[tuple[int, str, Any]] = []
    now = [100.0]

    async def enqueue(key: bytes | None, value: bytes, partition: int,
                      headers: list[tuple[str, bytes]]) -> Any:
        name = headers[0][0]
        sent.append((partition, name, read_rerouted(headers, value)))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def run() -> None:
        rerouter = Rerouter(enqueue, partitions=3, clock=lambda: now[0])
        raw = RawMessage(REPLIES, 0, 41, b"k", b"{}")
        reply = AcceptedEvent(event("outreach_reply", T0, "r", account=AWAY), raw)
        a, b = (REPLIES, 0), (CONTENT, 0)
        await rerouter.send([Forward(1, reply, 5.0, "t")], {a: (5.0, False), b: (None, False)})
        assert [(p, name) for p, name, _ in sent] == [(1, ORIGIN_HEADER)] + [
            (p, PROGRESS_HEADER) for p in range(3)]  # the forward first, then a mark on each
        assert sent[0][2] == Origin(REPLIES, 0, 41, 5.0, None)
        assert sent[1][2] == {a: (5.0, False), b: (None, False)}  # the first names them all
        sent.clear()
        now[0] += MARK_EVERY_S / 2
        await rerouter.send([], {a: (6.0, False), b: (None, False)})
        assert sent == []  # too soon after the last
        now[0] += MARK_EVERY_S
        await rerouter.send([], {a: (6.0, False), b: (None, False)})
        assert [m for _, _, m in sent] == [{a: (6.0, False)}] * 3  # only what changed
        sent.clear()
        await rerouter.send([], {a: (6.0, False), b: (None, False)})
        assert sent == []  # nothing changed
        now[0] += HEARTBEAT_S
        await rerouter.send([], {a: (6.0, False), b: (None, False)})
        assert [m for _, _, m in sent] == [{a: (6.0, False), b: (None, False)}] * 3
        sent.clear()
        now[0] += MARK_EVERY_S
        rerouter.rebalanced()
        await rerouter.send([], {a: (6.0, False), b: (None, False)})
        assert len(sent) == 3 and sent[0][2] == {a: (6.0, False), b: (None, False)}

    asyncio.run(run())


def test_the_stall_report_names_what_holds_a_partitions_watermark() -> None:
    """The stalled-partition warning (streams.stall) says, from the stage, which sources hold
    a partition back: its own that delivered nothing, others unmarked or marked empty."""
    from faust.types import TP

    from processors.watermark import SourceActivity
    from streams.metrics import Metrics
    from streams.signal_agent import SignalAgentState

    w = Worker()
    agent = SignalAgentState(w.stage, None, {}, SourceActivity(30), Metrics())  # type: ignore[arg-type]
    w.stage.admit([(w.item("outreach_reply", T0, "r1", HOME, 0), "r1")])
    w.stage.progress(0, {(REPLIES, 1): (None, False)})
    line = agent.report(TP(REPLIES, 0))
    for part in (f"high={T0.timestamp()}", "held_here=1", "watermark=None",
                 f"own_unread=[('{CONTENT}', 0)]", f"unmarked=[('{CONTENT}', 1)]",
                 f"marked_empty=[('{REPLIES}', 1)]"):
        assert part in line, (part, line)
