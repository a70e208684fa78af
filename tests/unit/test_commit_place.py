"""Where a source's reading starts in event time (open 6 of issue 12): the first batch of an
input partition in an assignment asks for its commit once, and the source's clock starts from
the time the commit carries, before any of its events is admitted; the rerouted topic, later
batches and a commit without a time start nothing."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from processors.watermark import EventClock, SourceActivity, encode_high
from streams.metrics import Metrics
from streams.signal_agent import SignalAgentState


class Stage:
    """Only what the agent state touches: the clock, the lock's hook, the held count."""

    def __init__(self) -> None:
        self.event_clock = EventClock()
        self.seen_high_at_admit: dict[Any, float | None] = {}

    async def handle(self, accepted: Any, forwarded: Any, marks: Any, stale: Any,
                     taken: Any) -> asyncio.Future[list[Any]]:
        taken()  # under the stage's lock, before admitting
        for m in accepted:
            self.seen_high_at_admit[(m.topic, m.partition)] = \
                self.event_clock.high.get((m.topic, m.partition))
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        future.set_result([])
        return future

    def held(self) -> int:
        return 0

    async def forget(self, partitions: Any, forget_reading: Any) -> None:
        forget_reading()


def test_a_source_starts_from_the_time_its_commit_carries_once_per_assignment() -> None:
    asked: list[list[TP]] = []
    commits = {TP("ads", 0): (40, encode_high(800.0)), TP("replies", 1): (7, ""),
               TP("rerouted", 0): (3, encode_high(5.0))}

    async def fetch(tps: list[TP]) -> dict[TP, tuple[int, str]]:
        asked.append(tps)
        return {tp: commits[tp] for tp in tps if tp in commits}

    stage = Stage()
    agent = SignalAgentState(stage, None, {}, SourceActivity(30), Metrics(),  # type: ignore[arg-type]
                             inputs={"ads", "replies"}, commits=fetch)

    def msg(topic: str, partition: int, offset: int) -> Any:
        return SimpleNamespace(topic=topic, partition=partition, offset=offset)

    async def run() -> None:
        batch = [msg("ads", 0, 40), msg("replies", 1, 7), msg("rerouted", 0, 3),
                 msg("ads", 2, 0)]
        await agent.handle(batch, batch)
        assert asked == [[TP("ads", 0), TP("ads", 2), TP("replies", 1)]]  # inputs only
        assert stage.seen_high_at_admit[("ads", 0)] == 800.0  # seeded before admitting
        assert ("replies", 1) not in stage.event_clock.high  # its commit carries no time
        assert ("rerouted", 0) not in stage.event_clock.high and \
            ("ads", 2) not in stage.event_clock.high  # not an input; never committed
        assert stage.event_clock.high_before(("ads", 0), 40) == 800.0
        await agent.handle([msg("ads", 0, 41)], [])
        assert len(asked) == 1  # asked once per assignment
        await agent.forget([TP("ads", 0)])  # revoked: the next assignment asks again
        stage.event_clock.forget([0])
        await agent.handle([msg("ads", 0, 40)], [])
        assert asked[-1] == [TP("ads", 0)] and stage.event_clock.high[("ads", 0)] == 800.0

    asyncio.run(run())
