"""Deadline rules are judged only from their due time on (``AccountState.deadline_due``).

The cache must never change what fires: a simulated world, late events and all, replayed
with it and with it disabled gives the same signals, tier changes and states.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from world import World, at, ts

from processors import engine
from processors.churn import renewal_at_risk
from processors.engine import advance_time, apply_event
from processors.rules import DEFAULT_RULES, Rules
from processors.state import DAY, AccountState, day_of
from schemas.decode import Rejection, decode_event
from schemas.events import InputEvent
from tools.simulation import SimConfig, Simulation

DETECTED_AT = datetime(2030, 1, 1, tzinfo=UTC)


def stream(config: SimConfig) -> list[InputEvent]:
    """The simulated world in the order it is published (about 0.5% of events late)."""
    sim = Simulation(config)
    lines = [line for day in sim.days() for line in day.lines]
    decoded = [decode_event(line.encode(), 1 << 20) for line in lines]
    return [e for e in decoded if not isinstance(e, Rejection)]


def replay(events: list[InputEvent]) -> tuple[list[str], list[str], dict[str, Any]]:
    """Signals, tier changes (as JSON) and final states, swept at each day boundary."""
    states: dict[str, AccountState] = {}
    signals: list[str] = []
    tiers: list[str] = []
    swept: int | None = None

    def collect(outcome: engine.Outcome) -> None:
        signals.extend(s.model_dump_json() for s in outcome.signals)
        if outcome.tier_change is not None:
            tiers.append(outcome.tier_change.model_dump_json())

    for e in events:
        today = day_of(e.occurred_at.timestamp())
        if swept is None:
            swept = today
        for day in range(swept + 1, today + 1):
            for account_id in sorted(states):
                state = states[account_id]
                if state.evaluated_day is None or state.evaluated_day < day:
                    collect(advance_time(state, day * DAY, DEFAULT_RULES, DETECTED_AT))
        swept = max(swept, today)
        state, outcome = apply_event(states.get(e.account_id), e, DEFAULT_RULES, DETECTED_AT)
        states[e.account_id] = state
        collect(outcome)
    return signals, tiers, {a: s.to_dict() for a, s in sorted(states.items())}


@pytest.fixture(scope="module")
def events() -> list[InputEvent]:
    return stream(SimConfig(accounts=24, days=240, seed=11))


def never_cached(state: AccountState, rules: Rules) -> float:
    return float("-inf")


def test_the_cache_changes_nothing_that_fires(events: list[InputEvent],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    late = sum(1 for a, b in zip(events, events[1:], strict=False)
               if b.occurred_at < a.occurred_at)
    assert late > 20, "the world should hold late events"
    cached = replay(events)
    monkeypatch.setattr(engine, "deadline_due", never_cached)
    plain = replay(events)
    kinds = {s.split('"type":"', 1)[1].split('"', 1)[0] for s in plain[0]}
    assert {"engagement_silence", "succession_overdue", "renewal_at_risk",
            "continuity_gap"} <= kinds, "every deadline rule should fire in this world"
    assert cached[0] == plain[0]
    assert cached[1] == plain[1]
    assert cached[2] == plain[2]


def count_calls(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[int]:
    calls = [0]
    real: Callable[..., Any] = module.check

    def counted(ctx: Any) -> Any:
        calls[0] += 1
        return real(ctx)

    monkeypatch.setattr(module, "check", counted)
    return calls


def test_the_cache_skips_most_deadline_judgements(events: list[InputEvent],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_calls(monkeypatch, renewal_at_risk)
    replay(events)
    cached = calls[0]
    monkeypatch.setattr(engine, "deadline_due", never_cached)
    calls[0] = 0
    replay(events)
    assert cached < calls[0] / 2, (cached, calls[0])


def test_a_touch_after_a_fired_silence_starts_the_next_one() -> None:
    w = World()
    w.profile(0)
    w.reply(10, "a")
    w.advance_to(71)  # silent since day 10: fired at day 70
    # silence fired: next is the renewal window (day 365 - 90, less the rounding margin)
    assert w.state is not None and w.state.deadline_due == ts(365 - 90) - 1
    w.reply(72.5, "a")
    assert w.state.deadline_due <= ts(72.5 + 60)
    w.advance_to(133)
    assert [s.occurred_at for s in w.of("engagement_silence")] == [at(70), at(132.5)]


def test_a_profile_naming_a_near_renewal_is_judged_at_once() -> None:
    w = World()
    w.profile(0)
    w.reply(1, "a")
    w.advance_to(50)
    assert w.state is not None and w.state.deadline_due == ts(1 + 60)  # the silence first
    w.profile(50.5, renewal_day=100)  # renewal within 90 days, nobody engaged for 49 days
    w.advance_to(51)  # not day 61, when the cached due time alone would have judged it
    assert [s.occurred_at <= at(51) for s in w.of("renewal_at_risk")] == [True]


def renewal_thinning() -> tuple[int | None, int]:
    """Renewal on day 200 (window from day 110): three engaged, one of them (c) engaging every
    ten days so the account is never silent; a and b age out of the 90-day window inside the
    renewal window (a on day 185.3), which makes it thin. Returns the day the signal was
    detected on (its ``occurred_at`` is dated back to when its reason began) and how many."""
    w = World()
    w.profile(0, renewal_day=200)
    for sid in "abc":
        w.join(0, sid)
    w.reply(95.3, "a")
    w.reply(100.6, "b")
    w.content(100.2, "c", "view")
    detected = None
    for day in range(101, 200):
        if day % 10 == 0:
            w.content(day + 0.5, "c", "view")
        w.advance_to(day)
        if detected is None and w.of("renewal_at_risk"):
            detected = day
    return detected, len(w.of("renewal_at_risk"))


def test_a_renewal_thinning_inside_its_window_is_detected_on_the_same_day_with_the_cache(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cached = renewal_thinning()
    assert cached == (186, 1)  # the sweep at the start of day 186, after a aged out at 185.3
    monkeypatch.setattr(engine, "deadline_due", never_cached)
    assert renewal_thinning() == cached
