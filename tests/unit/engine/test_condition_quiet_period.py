"""A ratio condition hovering at its threshold comes back again and again: one episode, one signal."""

from __future__ import annotations

from world import DETECTED_AT, START, at

from processors.conditions import fire_on_entry
from processors.context import Context
from processors.rules import DEFAULT_RULES, parse_rules
from processors.state import AccountState


def judge(state: AccountState, day: float, holds: bool, quiet: int) -> bool:
    ctx = Context(state, DEFAULT_RULES, at(day).timestamp(), DETECTED_AT)
    return fire_on_entry(ctx, "engagement_drop", "medium", holds, {},
                         quiet_after_days=quiet) is not None


def test_an_entry_within_the_quiet_period_fires_nothing_and_one_after_it_does() -> None:
    state = AccountState("acme", START.timestamp(), START.timestamp())
    assert judge(state, 60, True, quiet=21)
    assert not judge(state, 61, False, quiet=21)  # lapses ...
    assert not judge(state, 80, True, quiet=21)  # ... and is back on day 20 after: quiet
    assert not judge(state, 81, False, quiet=21)
    assert judge(state, 81.5, True, quiet=21)  # day 21 after the last signal: a new episode


def test_without_a_quiet_period_every_entry_fires() -> None:
    state = AccountState("acme", START.timestamp(), START.timestamp())
    assert judge(state, 60, True, quiet=0)
    assert not judge(state, 61, False, quiet=0)
    assert judge(state, 62, True, quiet=0)


def test_the_quiet_period_is_a_rule_with_a_default_of_21_days() -> None:
    assert DEFAULT_RULES.churn.engagement_drop.quiet_after_days == 21
    assert DEFAULT_RULES.expansion.engagement_surge.quiet_after_days == 21
    rules = parse_rules("[churn.engagement_drop]\nquiet_after_days = 7\n")
    assert rules.churn.engagement_drop.quiet_after_days == 7


def test_the_memory_of_fired_deadline_episodes_keeps_only_the_latest_few_per_kind() -> None:
    from processors.conditions import FIRED_KEPT_PER_KIND, already_fired, mark_fired

    state = AccountState("acme", START.timestamp(), START.timestamp())
    ctx = Context(state, DEFAULT_RULES, at(1).timestamp(), DETECTED_AT)
    for n in range(10):
        mark_fired(ctx, "engagement_silence", str(n))
        mark_fired(ctx, "continuity_gap", str(n))
    assert len(state.fired) == 2 * FIRED_KEPT_PER_KIND
    assert already_fired(ctx, "engagement_silence", "9")  # the current episode still counts
    assert already_fired(ctx, "continuity_gap", "7")
    assert not already_fired(ctx, "engagement_silence", "0")


def test_the_memoised_30_day_windows_equal_the_sums_they_stand_for_even_with_late_events() -> None:
    import random

    from world import World

    from processors.state import window_points

    rng = random.Random(3)
    w = World()
    w.profile(0)
    day = 1.0
    for _ in range(400):
        day += rng.choice([0.0, 0.1, 0.3, 1.0, 2.5])
        late = rng.random() < 0.15
        at_day = max(1.0, day - rng.uniform(0.5, 6.5)) if late else day
        w.reply(at_day, rng.choice("abc"), rng.choice(["reply", "positive_reply"]))
        state = w.state
        assert state is not None
        ctx = Context(state, DEFAULT_RULES, state.high_water, DETECTED_AT)
        today = ctx.today
        assert ctx.last_and_prior_30() == (window_points(state.score_days, today, 30),
                                           window_points(state.score_days, today, 30, 30))
