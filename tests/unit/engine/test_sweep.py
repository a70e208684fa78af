"""The day sweep judges an account only on the days on which time can change something for it
(``processors.sweep``), and the result is exactly the day-by-day sweep's: the same signals and
tier changes in the same order, and the same states after every jump, however far event time
jumps. A jump to year 9999 costs what a few months do."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import world
from world import DAY_S, DETECTED_AT, START, World, at

from processors.engine import Outcome, advance_time, apply_event
from processors.rules import DEFAULT_RULES, Rules, parse_rules
from processors.state import DAY, AccountState, day_of
from processors.sweep import next_change_day, sweep
from schemas.decode import Rejection, decode_event
from schemas.events import AdImpression, InputEvent
from tools.simulation import SimConfig, Simulation

Sweep = Callable[[Mapping[str, AccountState], int, int, Rules, datetime],
                 Iterator[tuple[str, Outcome]]]
BASE_DAY = int(START.timestamp() // DAY_S)  # START's day since the epoch (a multiple of 7)


def day_by_day(states: Mapping[str, AccountState], first_day: int, last_day: int,
               rules: Rules, detected_at: datetime) -> Iterator[tuple[str, Outcome]]:
    """The reference: every account judged at every midnight (as the stage did before)."""
    for day in range(first_day, last_day + 1):
        for account_id in sorted(states):
            state = states[account_id]
            if state.evaluated_day is None or state.evaluated_day < day:
                yield account_id, advance_time(state, day * DAY, rules, detected_at)


# -- simulated worlds with long gaps ---------------------------------------------------------------


def simulated(config: SimConfig) -> list[InputEvent]:
    """The world in the order it is published (late events included)."""
    lines = [line for day in Simulation(config).days() for line in day.lines]
    decoded = [decode_event(line.encode(), 1 << 20) for line in lines]
    return [e for e in decoded if not isinstance(e, Rejection)]


def with_gaps(events: list[InputEvent], *, pause_from: int, pause_days: int,
              silent: set[str], silent_from: int, jump_from: int | None = None,
              jump_days: int = 0) -> list[InputEvent]:
    """Everyone pauses ``pause_days`` from day ``pause_from`` of the world; the ``silent``
    accounts also say nothing from ``silent_from`` to the pause (silent for over a year); from
    ``jump_from`` on, event time jumps a further ``jump_days``."""
    start = events[0].occurred_at
    out = []
    for e in events:
        day = (e.occurred_at - start) / timedelta(days=1)
        if e.account_id in silent and silent_from <= day < pause_from:
            continue
        shift = timedelta(days=pause_days if day >= pause_from else 0)
        if jump_from is not None and day >= jump_from:
            shift += timedelta(days=jump_days)
        out.append(e.model_copy(update={"occurred_at": e.occurred_at + shift}))
    return out


@dataclass
class Replay:
    signals: list[str] = field(default_factory=list)
    tiers: list[str] = field(default_factory=list)
    after_jumps: list[dict[str, Any]] = field(default_factory=list)  # states after each jump
    states: dict[str, Any] = field(default_factory=dict)
    judged: int = 0  # advance_time calls
    jumps: int = 0  # sweeps over more than a day
    # (days, judgements, signals) of each sweep
    sweeps: list[tuple[int, int, int]] = field(default_factory=list)


def replay(events: list[InputEvent], rules: Rules, sweeper: Sweep) -> Replay:
    """The stream through the engine, each day boundary crossed swept by ``sweeper``."""
    states: dict[str, AccountState] = {}
    out = Replay()
    swept: int | None = None

    def collect(outcome: Outcome) -> None:
        out.signals.extend(s.model_dump_json() for s in outcome.signals)
        if outcome.tier_change is not None:
            out.tiers.append(outcome.tier_change.model_dump_json())

    for e in events:
        today = day_of(e.occurred_at.timestamp())
        if swept is not None and today > swept:
            judged, fired = out.judged, len(out.signals)
            for _, outcome in sweeper(states, swept + 1, today, rules, DETECTED_AT):
                out.judged += 1
                collect(outcome)
            out.sweeps.append((today - swept, out.judged - judged, len(out.signals) - fired))
            if today > swept + 1:
                out.jumps += 1
                out.after_jumps.append({a: s.to_dict() for a, s in sorted(states.items())})
        swept = today if swept is None else max(swept, today)
        state, outcome = apply_event(states.get(e.account_id), e, rules, DETECTED_AT)
        states[e.account_id] = state
        collect(outcome)
    out.states = {a: s.to_dict() for a, s in sorted(states.items())}
    return out


def jump_cost(replayed: Replay) -> int:
    """Judgements in the sweeps over more than a day."""
    return sum(judged for days, judged, _ in replayed.sweeps if days > 1)


def kinds(signals: list[str]) -> set[str]:
    return {json.loads(s)["type"] for s in signals}


def assert_same(reference: Replay, swept: Replay) -> None:
    assert swept.signals == reference.signals
    assert swept.tiers == reference.tiers
    assert len(swept.after_jumps) == len(reference.after_jumps) == reference.jumps
    for i, (mine, theirs) in enumerate(zip(swept.after_jumps, reference.after_jumps,
                                           strict=True)):
        assert mine == theirs, f"states differ after jump {i}"
    assert swept.states == reference.states


# custom rules: other windows and thresholds, every tier watched for gaps, fractional weights
# (the drop/surge windows are then summed afresh, not carried from day to day)
OTHER_RULES = parse_rules("""
version = "other-1"
[weights]
view = 2.5
like = 0.3
[churn.engagement_silence]
days = 13
[churn.continuity_gap]
days = 9
tiers = [1, 2, 3]
[churn.single_threaded]
window_days = 17
[churn.renewal_at_risk]
within_days = 200
silence_days = 20
[churn.succession_overdue]
days = 45
[expansion.multi_threaded]
window_days = 45
[expansion.reference_candidate]
champion_public_days = 11
[tiers]
at_risk_silence_days = 20
at_risk_signal_days = 12
expansion_window_days = 21
""")


@pytest.fixture(scope="module")
def gapped() -> list[InputEvent]:
    events = simulated(SimConfig(accounts=24, days=240, seed=11))
    accounts = sorted({e.account_id for e in events})
    return with_gaps(events, pause_from=100, pause_days=365, silent=set(accounts[::3]),
                     silent_from=40)


@pytest.mark.parametrize("rules", [DEFAULT_RULES, OTHER_RULES], ids=["default", "other"])
def test_a_world_with_a_year_long_pause_sweeps_as_day_by_day(gapped: list[InputEvent],
                                                             rules: Rules) -> None:
    reference = replay(gapped, rules, day_by_day)
    swept = replay(gapped, rules, sweep)
    # the comparison is worth making: every family of time-based signal, and jumps
    assert {"engagement_silence", "continuity_gap", "renewal_at_risk", "succession_overdue",
            "engagement_drop", "single_threaded"} <= kinds(reference.signals)
    assert len(reference.tiers) > 50 and reference.jumps >= 1
    assert_same(reference, swept)
    # the pause costs a fraction of what it costs day by day
    assert jump_cost(swept) < jump_cost(reference) / 4, (jump_cost(swept), jump_cost(reference))


def test_a_jump_of_decades_sweeps_as_day_by_day() -> None:
    events = simulated(SimConfig(accounts=6, days=150, seed=5))
    accounts = sorted({e.account_id for e in events})
    jumped = with_gaps(events, pause_from=60, pause_days=200, silent={accounts[0]},
                       silent_from=20, jump_from=110, jump_days=25 * 365)
    reference = replay(jumped, DEFAULT_RULES, day_by_day)
    swept = replay(jumped, DEFAULT_RULES, sweep)
    assert jump_cost(reference) > 6 * 25 * 365
    assert {"engagement_silence", "renewal_at_risk"} <= kinds(reference.signals)
    assert_same(reference, swept)
    # the decades cost a few months per account
    assert jump_cost(swept) < 6 * 200, jump_cost(swept)


# -- one account: each thing time alone can change, on its own day -------------------------------


class Jumping(World):
    """A world whose midnights are passed by the sweep instead of one by one."""

    judged: int = 0

    def advance_to(self, day: int) -> list[Any]:
        assert self.state is not None
        first = int(self.state.high_water // DAY_S) - BASE_DAY + 1
        if self.clock_day is not None:
            first = max(first, self.clock_day + 1)
        fresh = []
        for _, outcome in sweep({self.account_id: self.state}, BASE_DAY + first,
                                BASE_DAY + day, self.rules, DETECTED_AT):
            self.judged += 1
            fresh.extend(self._record(outcome).signals)
        if first <= day:
            self.clock_day = day
        return fresh


def both(scenario: Callable[[World], None], rules: Rules = DEFAULT_RULES) -> World:
    """Run ``scenario`` day by day and with the sweep; they must agree, the sweep judging the
    account on fewer days. Returns the day-by-day world."""
    reference, jumping = World(rules=rules), Jumping(rules=rules)
    judged = [0]

    def counted(*args: Any) -> Outcome:
        judged[0] += 1
        return advance_time(*args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(world, "advance_time", counted)
        scenario(reference)
    scenario(jumping)
    assert [s.model_dump() for s in jumping.signals] == [s.model_dump()
                                                         for s in reference.signals]
    assert jumping.tier_changes == reference.tier_changes
    assert reference.state is not None and jumping.state is not None
    assert jumping.state.to_dict() == reference.state.to_dict()
    assert 0 < jumping.judged < judged[0] / 2, (jumping.judged, judged[0])
    return reference


def test_single_threaded_starts_the_day_an_engagement_ages_out_of_its_window() -> None:
    def scenario(w: World) -> None:
        w.profile(0, tier=2, renewal_day=900)
        for sid in "abc":
            w.join(0, sid)
        w.reply(10.5, "a")
        w.reply(20.5, "b")
        w.advance_to(400)

    w = both(scenario)
    # a's engagement leaves the 90-day window at day 100.5: judged at the next midnight
    assert w.one("single_threaded").occurred_at == at(101)


def test_the_tier_leaves_expansion_ready_the_day_an_engagement_ages_out() -> None:
    def scenario(w: World) -> None:
        w.profile(0, tier=2, renewal_day=900, champion_ids=("champ",))
        w.join(0, "champ", buying_role="champion")
        w.join(0, "b", function="financial")
        w.reply(10.3, "champ")
        w.reply(10.4, "b")
        w.content(12.6, "c", "comment")
        w.advance_to(300)

    w = both(scenario)
    assert [(t.tier, t.occurred_at) for t in w.tier_changes[:3]] == [
        ("stable", at(0)), ("expansion_ready", at(12.6)), ("stable", at(41))]


def test_the_tier_turns_at_risk_the_day_the_silence_reaches_its_threshold() -> None:
    rules = parse_rules("[tiers]\nat_risk_silence_days = 20\n")

    def scenario(w: World) -> None:
        w.profile(0, tier=2, renewal_day=900)
        w.reply(3.7, "a")
        w.advance_to(200)

    w = both(scenario, rules)
    assert ("at_risk", at(24)) in [(t.tier, t.occurred_at) for t in w.tier_changes]
    assert w.one("engagement_silence").occurred_at == at(63.7)  # its own, later deadline


def test_a_churn_signal_leaves_the_tier_the_day_it_ages_out_of_its_memory() -> None:
    rules = parse_rules("[tiers]\nat_risk_signal_days = 20\n")

    def scenario(w: World) -> None:
        w.profile(0, tier=2, renewal_day=900, champion_ids=("champ",))
        w.join(0, "b")
        w.reply(2.2, "b")
        w.leave(5.5, "champ")  # champion_left, critical: at risk for 20 days
        w.advance_to(200)

    w = both(scenario, rules)
    assert [(t.tier, t.occurred_at) for t in w.tier_changes[:3]] == [
        ("stable", at(0)), ("at_risk", at(5.5)), ("stable", at(26))]


def test_single_threaded_starts_once_the_account_has_been_watched_for_its_window() -> None:
    def scenario(w: World) -> None:
        w.join(0.4, "a")
        w.join(0.4, "b")
        w.reply(50.7, "a")
        w.advance_to(250)

    w = both(scenario)
    assert w.one("single_threaded").occurred_at == at(91)  # watched from day 0.4


def test_a_gap_that_must_exceed_its_length_fires_the_midnight_after_it_reaches_it() -> None:
    def scenario(w: World) -> None:
        w.profile(0, tier=1, renewal_day=900)
        w.reply(5.2, "a")
        w.impression(10, "a")  # at midnight: the gap reaches 30 days at midnight of day 40
        w.advance_to(500)

    w = both(scenario)
    gap = w.one("continuity_gap")
    assert (gap.occurred_at, gap.evidence["gap_days"]) == (at(40), 31.0)


def test_a_drop_starts_the_day_the_last_points_move_to_the_prior_window() -> None:
    def scenario(w: World) -> None:
        w.profile(0, tier=2, renewal_day=900)
        w.impression(0, "a")
        w.points(40.3, "a", 20)
        w.points(45.6, "a", 20)
        w.advance_to(300)

    w = both(scenario)
    assert w.one("engagement_drop").occurred_at == at(75)


def test_a_renewal_years_ahead_fires_on_its_day_after_a_jump() -> None:
    def scenario(w: World) -> None:
        w.profile(0, tier=2, renewal_day=1000)
        w.reply(0.5, "a")
        w.advance_to(1400)

    w = both(scenario)
    assert w.one("renewal_at_risk").occurred_at == at(910)  # the window opens, long silent
    assert w.one("engagement_silence").occurred_at == at(60.5)


def test_the_states_after_a_jump_are_trimmed_as_day_by_day() -> None:
    """Stakeholders' days are trimmed on every seventh day: a jump ending between two of them
    leaves the trim of the last one passed."""
    def scenario(w: World) -> None:
        w.profile(0, tier=2, renewal_day=900)
        for day in range(0, 12, 3):
            w.reply(day + 0.5, "a")
            w.content(day + 1.5, "b", "like")
        w.reply(86.5, "a")
        w.advance_to(7 * 30 + 3)

    w = both(scenario)
    assert w.state is not None
    # trimmed on day 210 of all days up to day 90, a's last one (day 86) included
    assert w.state.stakeholders["a"].score_days == {}
    assert w.state.stakeholders["b"].score_days == {}
    assert w.state.checked_day == w.state.evaluated_day == BASE_DAY + 213


# -- the cost of a jump ------------------------------------------------------------------------


def test_nothing_changes_after_the_last_moment_that_can_change_anything() -> None:
    w = World()
    w.profile(0, tier=1, renewal_day=100, champion_ids=("champ",))
    w.join(0, "champ", buying_role="champion")
    w.reply(1, "champ")
    w.advance_to(101)
    assert w.state is not None
    assert next_change_day(w.state, BASE_DAY + 101, DEFAULT_RULES) is None


def test_a_jump_to_year_9999_judges_each_account_a_bounded_number_of_times(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The partition of the incident: one valid event dated 9999-12-31 moved its event time
    nearly three million days. The sweep judges each account on a few of them, and what fires
    is what a jump of a few years fires: nothing can happen after that."""
    events = simulated(SimConfig(accounts=40, days=100, seed=3))
    far = datetime(9999, 12, 31, tzinfo=UTC)
    few_years = events[-1].occurred_at + timedelta(days=3 * 365)
    impression = next(e for e in reversed(events)
                      if isinstance(e, AdImpression) and not e.clicked)
    outcomes: dict[datetime, Replay] = {}
    for end in (few_years, far):  # an impression fires nothing itself: what fires is the jump's
        last = impression.model_copy(update={"occurred_at": end, "event_id": "the-jump"})
        outcomes[end] = replay([*events, last], DEFAULT_RULES, sweep)
    to_9999, to_few_years = outcomes[far], outcomes[few_years]
    days, jump, fired = to_9999.sweeps[-1]
    assert days > 2_900_000
    accounts = len(to_9999.states)
    assert accounts == 40
    print(f"\njump of {days:,} days over {accounts} accounts: {jump:,} judgements "
          f"(day by day: {accounts * days:,})")
    assert jump < accounts * 100, jump
    assert to_9999.signals == to_few_years.signals
    assert kinds(to_9999.signals[-fired:]) >= {"engagement_silence", "renewal_at_risk"}
    assert to_9999.tiers == to_few_years.tiers


def test_each_sweep_judges_every_account_on_its_last_day() -> None:
    """The day-by-day sweep leaves every account judged on the last day; so does this one,
    which is what the next event on that day finds."""
    events = simulated(SimConfig(accounts=8, days=30, seed=2))
    states: dict[str, AccountState] = {}
    for e in events:
        states[e.account_id], _ = apply_event(states.get(e.account_id), e, DEFAULT_RULES,
                                              DETECTED_AT)
    first = max(day_of(e.occurred_at.timestamp()) for e in events) + 1
    last = first + 399
    judged = [(states[a].evaluated_day, a)  # the day just judged
              for a, _ in sweep(states, first, last, DEFAULT_RULES, DETECTED_AT)]
    assert {a for _, a in judged} == set(states)
    assert {s.evaluated_day for s in states.values()} == {last}
    assert {s.checked_day for s in states.values()} == {last}
    assert judged == sorted(judged)  # in the day-by-day order: by day, then account
    assert len(judged) < 8 * 400 / 3
