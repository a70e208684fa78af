"""Acknowledgement order: Faust commits a partition up to its first gap, so we never make one."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from streams.acks import AckTracker
from streams.batch_consumer import PINNED_FAUST


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
    """streams.batch_consumer replaces an internal method: a new Faust must be re-checked."""
    assert version("faust-streaming") == PINNED_FAUST
    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert f"faust-streaming=={PINNED_FAUST}" in project["project"]["dependencies"]
