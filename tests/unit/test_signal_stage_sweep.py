"""The signal stage's day sweep skips the days on which nothing can happen: its batches give what
the day-by-day sweep it had before gives, and one event dated in year 9999 no longer stalls its
partition (the incident: 162 s at 100% CPU, then signals dated after the world ended).

No Kafka or ClickHouse: ``step`` is the stage's pure part (release, apply, sweep)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import processors.sweep
from processors.engine import Outcome, advance_time
from processors.ingest import AcceptedEvent, RawMessage
from processors.partitioning import partition_of
from processors.rules import DEFAULT_RULES
from processors.sequencer_ports import MemoryStateTable
from processors.state import DAY, AccountState, day_of
from schemas.decode import Rejection, decode_event
from schemas.events import AdImpression, InputEvent
from streams.metrics import Metrics
from streams.settings import load_settings
from streams.signal_stage import YIELD_EVERY, BatchResult, SignalStage
from tools.simulation import SimConfig, Simulation

SETTINGS = load_settings({})
DETECTED_AT = datetime(2030, 1, 1, tzinfo=UTC)



class DailyStage(SignalStage):
    """The stage with the sweep it had before: every account judged at every midnight."""

    def _sweep(self, partition: int, watermark: float, detected_at: datetime,
               result: BatchResult, dirty: dict[str, tuple[int, AccountState]]
               ) -> Iterator[None]:
        today = day_of(watermark)
        last = self.swept_day.get(partition)
        if last is None:
            self.swept_day[partition] = today
            return
        for day in range(last + 1, today + 1):
            for account_id in sorted(self.members.get(partition, ())):
                state = self._state(account_id)
                if state is None or state.evaluated_day is not None and \
                        state.evaluated_day >= day:
                    continue
                outcome = advance_time(state, day * DAY, self.rules, detected_at)
                if outcome.signals or outcome.tier_change:
                    dirty[account_id] = (partition, state)
                result.collect(outcome)
        self.swept_day[partition] = today
        yield from ()


def stage(kind: type[SignalStage] = SignalStage, partitions: int = 3) -> SignalStage:
    no_io: Any = None  # step() writes nothing
    settings = SETTINGS.model_copy(update={"topic_partitions": partitions})
    return kind(settings, DEFAULT_RULES, MemoryStateTable(), Metrics(), no_io,
                sources=lambda: ((), ()), clock=lambda: DETECTED_AT)


def accepted(event: InputEvent, offset: int, partitions: int) -> tuple[AcceptedEvent, Any]:
    partition = partition_of(event.account_id, partitions)
    topic = SETTINGS.topics.for_type(event.type) or ""
    return AcceptedEvent(event, RawMessage(topic, partition, offset, None, b"", None)), offset


def simulated(config: SimConfig) -> list[InputEvent]:
    lines = [line for day in Simulation(config).days() for line in day.lines]
    decoded = [decode_event(line.encode(), 1 << 20) for line in lines]
    return [e for e in decoded if not isinstance(e, Rejection)]


def paused(events: list[InputEvent], from_day: int, days: int) -> list[InputEvent]:
    """Everything from ``from_day`` of the world on comes ``days`` later."""
    start = events[0].occurred_at
    return [e.model_copy(update={"occurred_at": e.occurred_at + timedelta(days=days)})
            if e.occurred_at - start >= timedelta(days=from_day) else e for e in events]


def run(s: SignalStage, events: list[InputEvent], partitions: int,
        batch: int = 1500) -> list[dict[str, Any]]:
    """Each batch's signals, tier changes and changed states, as the stage hands them on."""
    out = []
    for i in range(0, len(events), batch):
        s.admit([accepted(e, i + n, partitions) for n, e in enumerate(events[i:i + batch])])
        result, dirty = s.step()
        out.append({
            "signals": [x.model_dump_json() for x in result.signals],
            "tiers": [x.model_dump_json() for x in result.tier_changes],
            "dirty": {a: (p, st.to_dict()) for a, (p, st) in sorted(dirty.items())},
            "released": len(result.released),
        })
    return out


def test_the_stage_gives_what_the_day_by_day_sweep_gives_across_long_pauses() -> None:
    events = paused(paused(simulated(SimConfig(accounts=16, days=150, seed=4)), 50, 300),
                    100, 2 * 365)
    reference, swept = stage(DailyStage), stage()
    expected = run(reference, events, partitions=3)
    got = run(swept, events, partitions=3)
    signals = [json.loads(s) for batch in expected for s in batch["signals"]]
    assert len(signals) > 200
    assert {"engagement_silence", "renewal_at_risk", "single_threaded"} <= {
        s["type"] for s in signals}
    assert sum(b["released"] for b in expected) == len(events)
    assert got == expected
    assert {a: s.to_dict() for a, s in swept.cache.items()} == {
        a: s.to_dict() for a, s in reference.cache.items()}
    assert swept.swept_day == reference.swept_day


def fifty_accounts_judged(monkeypatch: pytest.MonkeyPatch
                          ) -> tuple[list[InputEvent], SignalStage, list[str]]:
    """90 days of 50 accounts applied on one partition; then every judgement is counted."""
    events = simulated(SimConfig(accounts=50, days=90, seed=8))
    s = stage(partitions=1)
    run(s, events, partitions=1, batch=len(events))
    judged: list[str] = []

    def counted(state: AccountState, *args: Any) -> Outcome:
        judged.append(state.account_id)
        return advance_time(state, *args)

    monkeypatch.setattr(processors.sweep, "advance_time", counted)
    return events, s, judged


def test_an_event_dated_9999_sweeps_its_partition_in_a_bounded_number_of_judgements(
        monkeypatch: pytest.MonkeyPatch) -> None:
    events, s, judged = fifty_accounts_judged(monkeypatch)
    template = next(e for e in events if isinstance(e, AdImpression) and not e.clicked)
    last_day = max(day_of(e.occurred_at.timestamp()) for e in events)
    far = template.model_copy(update={"event_id": "far",
                                      "occurred_at": datetime(9999, 12, 31, tzinfo=UTC)})
    [batch] = run(s, [far], partitions=1)
    days = day_of(far.occurred_at.timestamp()) - last_day
    accounts = len(s.members[0])
    print(f"\n9999 jump through the stage: {days:,} days x {accounts} accounts, "
          f"{len(judged):,} judgements")
    assert accounts == 50 and days > 2_900_000
    assert set(judged) == s.members[0]  # every account judged, on its last day at least
    assert len(judged) < accounts * 100  # day by day: 146 million
    assert batch["released"] == 1
    assert {s.evaluated_day for s in s.cache.values()} == {day_of(far.occurred_at.timestamp())}
    # what fired is dated on the days it became due, a few years after the world at most
    fired = [json.loads(x) for x in batch["signals"]]
    assert fired and all(x["occurred_at"] < "2030" for x in fired)
    # the states to save: those the jump changed a signal or the tier of, and the event's own
    changed = {x["account_id"] for x in fired} | {
        json.loads(x)["account_id"] for x in batch["tiers"]}
    assert set(batch["dirty"]) == changed | {far.account_id}


def test_a_long_sweep_lets_the_event_loop_run_between_slices_of_judgements(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One event that starts a sweep of many judgements pauses every YIELD_EVERY of them, as
    the stage does between events: writes and acknowledgements go on meanwhile."""
    events, s, judged = fifty_accounts_judged(monkeypatch)
    template = next(e for e in events if isinstance(e, AdImpression) and not e.clicked)
    far = template.model_copy(update={"event_id": "far", "occurred_at":
                                      template.occurred_at + timedelta(days=3 * 365)})
    s.admit([accepted(far, len(events), 1)])
    pauses = sum(1 for _ in s._steps(BatchResult(), {}))

    assert len(judged) >= 2 * YIELD_EVERY
    assert pauses == len(judged) // YIELD_EVERY
