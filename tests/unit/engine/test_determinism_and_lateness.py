"""Re-processing never duplicates a signal, late events within the allowed lateness still count,
later ones change nothing, and the account state survives a changelog round trip (SPEC 3-4)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest
from world import World, at, ts

from processors.engine import apply_event
from processors.rules import parse_rules
from processors.state import TRANSIENT, AccountState, day_of
from schemas.events import INPUT_EVENT
from schemas.signals import Signal


def history(w: World) -> World:
    """A year in the life of one account: every kind of signal has a chance to fire."""
    w.profile(0, tier=1, renewal_day=200, champion_ids=("champ",))
    w.join(0, "champ", function="commercial", seniority="director", buying_role="champion")
    w.join(0, "cfo", function="financial", seniority="c_level")
    w.join(0, "ops", function="operations", seniority="manager")
    for day in range(0, 60, 4):
        w.impression(day, "cfo")
        w.reply(day, "champ", "positive_reply")
        w.content(day, "ops", "comment")
    w.content(61, "champ", "share", public=True)
    w.content(62, "cfo", "pricing_page_visit")
    w.role(70, "champ", "promoted", buying_role="champion", title="CMO")
    w.leave(80, "champ")
    w.join(85, "successor", function="commercial", seniority="director")
    w.advance_to(250)
    return w


def snapshot(w: World) -> dict[str, object]:
    assert w.state is not None
    return copy.deepcopy(w.state.to_dict())


# -- determinism -------------------------------------------------------------------------------


def test_the_same_events_on_fresh_state_give_the_same_signals() -> None:
    first, second = history(World()), history(World())
    assert len(first.signals) >= 10
    assert [s.signal_id for s in first.signals] == [s.signal_id for s in second.signals]
    assert first.signals == second.signals
    assert first.tier_changes == second.tier_changes
    assert snapshot(first) == snapshot(second)


def test_the_history_fires_every_family_of_signal() -> None:
    """Guards the determinism test above: it compares something worth comparing."""
    kinds = set(history(World()).types())
    assert {"champion_left", "key_contact_changed", "succession_overdue", "engagement_silence",
            "continuity_gap", "renewal_at_risk", "pricing_page_visit", "champion_advocacy",
            "new_stakeholder_engaged", "multi_threaded"} <= kinds


def test_signal_ids_are_unique_within_a_history() -> None:
    signals = history(World()).signals
    assert len({s.signal_id for s in signals}) == len(signals)


def _multi_threaded_around_day_30(mid_day: Callable[[World], object]) -> list[Signal]:
    """Multi-threaded holds from day 30, 01:00; by 12:00 a's engagement is 30 days old, then
    ``mid_day`` happens, then d engages at 18:00 (b, c, d: it holds, again or still)."""
    w = World()
    w.profile(0)
    for sid, function in (("a", "commercial"), ("b", "financial"), ("c", "technical"),
                          ("d", "operations")):
        w.join(0, sid, function=function)
    w.reply(0.25, "a")
    w.reply(10, "b")
    w.reply(30 + 1 / 24, "c")  # 3 engaged in 30 days, 3 functions: multi-threaded (01:00)
    mid_day(w)
    w.reply(30.75, "d")
    return w.of("multi_threaded")


def test_a_condition_firing_twice_in_one_day_gives_two_distinct_signals() -> None:
    # b's new title is judged (a role change can move the condition): it stops holding, and
    # d's engagement starts a second episode the same day
    fired = _multi_threaded_around_day_30(
        lambda w: w.role(30.5, "b", "role_changed", function="financial"))
    assert [s.occurred_at for s in fired] == [at(30 + 1 / 24), at(30.75)]
    assert fired[0].signal_id != fired[1].signal_id


def test_an_event_that_cannot_move_a_condition_is_not_judged_on_a_day_already_judged() -> None:
    def bare(w: World) -> None:
        w.impression(30.5, "b")
        w.content(30.6, "b", "view")  # b engaged already: the engaged set does not grow

    # neither is judged: the episode never ended, so d's engagement fires nothing new
    assert [s.occurred_at for s in _multi_threaded_around_day_30(bare)] == [at(30 + 1 / 24)]


def test_a_new_rules_version_gives_new_signal_ids_for_the_same_triggers() -> None:
    v1 = history(World())
    v2 = history(World(rules=parse_rules('version = "2026-02"')))
    assert [(s.type, s.occurred_at) for s in v1.signals] == [
        (s.type, s.occurred_at) for s in v2.signals]
    assert {s.rule_version for s in v2.signals} == {"2026-02"}
    assert not {s.signal_id for s in v1.signals} & {s.signal_id for s in v2.signals}


def test_a_redelivered_event_is_not_counted_twice() -> None:
    w = World()
    w.profile(0)
    w.reply(5, "a", event_id="reply-1")
    before = snapshot(w)
    outcome = w.reply(5, "a", event_id="reply-1")
    assert outcome.signals == [] and outcome.tier_change is None
    assert outcome.duplicate is True
    assert snapshot(w) == before


# -- lateness ----------------------------------------------------------------------------------


def _late_world() -> World:
    w = World()
    w.profile(0)
    w.reply(1, "a", "reply")
    w.reply(20, "a", "reply")  # the high-water mark: day 20
    return w


def _score_on(w: World, day: float) -> float:
    assert w.state is not None
    return w.state.score_days.get(day_of(ts(day)), 0.0)


@pytest.mark.parametrize("days_late", [6, 7])
def test_a_late_event_within_the_allowed_lateness_updates_the_figures(days_late: int) -> None:
    w = _late_world()
    outcome = w.reply(20 - days_late, "b", "meeting_booked")
    assert outcome.late is False
    assert _score_on(w, 20 - days_late) == 20
    assert w.state is not None and w.state.late_ignored == 0
    assert w.state.high_water == ts(20)  # event time does not go back
    s = w.of("new_stakeholder_engaged")[-1]
    assert (s.stakeholder_id, s.occurred_at) == ("b", at(20 - days_late))
    assert s.evidence["figures"]["score_30d"] == 8 + 8 + 20
    assert s.evidence["figures"]["engaged_30d"] == 2


def test_a_late_pricing_visit_within_the_lateness_still_fires_at_its_own_time() -> None:
    w = _late_world()
    w.content(15, "b", "pricing_page_visit", event_id="late-pricing")
    s = w.one("pricing_page_visit")
    assert (s.occurred_at, s.evidence["event_ids"]) == (at(15), ["late-pricing"])


def test_an_event_beyond_the_allowed_lateness_changes_nothing_and_is_counted() -> None:
    w = _late_world()
    before = snapshot(w)
    outcome = w.content(20 - 7 - 1 / 24, "b", "pricing_page_visit", event_id="too-late")
    assert outcome.late is True
    assert (outcome.signals, outcome.tier_change) == ([], None)
    assert w.late == ["too-late"]
    assert w.state is not None
    assert w.state.late_ignored == 1
    after = w.state.to_dict()
    assert after.pop("late_ignored") == 1
    before.pop("late_ignored")
    assert after == before
    assert _score_on(w, 20 - 7 - 1 / 24) == 0
    assert "b" not in w.state.stakeholders


def test_a_too_late_champion_departure_fires_no_alert() -> None:
    w = World()
    w.profile(0, champion_ids=("champ",))
    w.reply(30, "a")
    w.leave(10, "champ")
    assert w.of("champion_left") == []
    assert w.state is not None and w.state.late_ignored == 1 and w.state.departures == []


def test_allowed_lateness_is_configurable() -> None:
    w = World(rules=parse_rules("[engagement]\nallowed_lateness_days = 0\n"))
    w.profile(0)
    w.reply(20, "a")
    assert w.reply(19.99, "b").late is True
    assert w.reply(20, "c").late is False


# -- state round trip ----------------------------------------------------------------------------


def _continue(w: World) -> World:
    for day in range(260, 300, 6):
        w.reply(day, "successor", "meeting_booked")
        w.content(day + 1, "cfo", "like")
        w.impression(day + 2, "ops", clicked=True)
    w.leave(301, "successor")
    w.content(302, "ops", "pricing_page_visit")
    w.advance_to(420)
    return w


def test_state_survives_a_json_round_trip() -> None:
    w = history(World())
    assert w.state is not None
    original = w.state.to_dict()
    # the round trip covers more than empty defaults
    assert original["departures"] and original["churn_history"] and original["fired"]
    restored = AccountState.from_dict(json.loads(json.dumps(original)))
    assert restored.to_dict() == original
    assert restored == w.state


def test_state_with_live_windows_survives_a_json_round_trip() -> None:
    w = World()
    w.profile(0, champion_ids=("champ",))
    w.reply(1, "ops")
    w.content(2, "champ", "share", public=True)
    w.impression(3, "cfo", clicked=True)  # a third engaged: reference candidate holds
    assert w.state is not None
    original = w.state.to_dict()
    assert original["score_days"] and original["stakeholders"]["champ"]["score_days"]
    assert original["active"]
    restored = AccountState.from_dict(json.loads(json.dumps(original)))
    assert restored.to_dict() == original
    assert isinstance(next(iter(restored.score_days)), int)


def test_continuing_from_a_restored_state_gives_the_same_signals() -> None:
    original = history(World())
    assert original.state is not None
    restored_state = AccountState.from_dict(json.loads(json.dumps(original.state.to_dict())))
    restored = World(state=restored_state, clock_day=original.clock_day, _seq=original._seq)
    mark = len(original.signals)

    _continue(original)
    _continue(restored)
    later = original.signals[mark:]
    assert len(later) >= 3
    assert restored.signals == later
    assert restored.tier_changes == original.tier_changes[-len(restored.tier_changes):]
    assert snapshot(restored) == snapshot(original)


def test_apply_event_on_a_fresh_account_starts_its_clock_at_the_first_event() -> None:
    event = INPUT_EVENT.validate_python({
        "event_id": "e1", "type": "outreach_reply", "schema_version": 1,
        "occurred_at": "2026-03-01T10:00:00+02:00", "account_id": "acct-9",
        "stakeholder_id": "p", "sequence_id": "s", "channel": "email", "reply_kind": "reply",
    }, strict=False)
    state, outcome = apply_event(None, event, World().rules, at(0))
    assert (state.account_id, state.first_seen, state.high_water) == (
        "acct-9", event.occurred_at.timestamp(), event.occurred_at.timestamp())
    assert [s.type for s in outcome.signals] == ["new_stakeholder_engaged"]
    assert outcome.signals[0].occurred_at == event.occurred_at


def test_to_dict_is_exactly_what_asdict_gives_for_a_state_using_every_field() -> None:
    """to_dict is hand-written for speed: a field it forgets (or shares instead of copying)
    would be lost from, or corrupt, the changelog."""
    from dataclasses import asdict, fields

    w = World()
    w.profile(0, champion_ids=("a",), renewal_day=100)
    w.join(0, "a")
    w.join(0, "b", function="financial")
    w.reply(1, "a")
    w.content(2, "a", "share", public=True)
    w.impression(3, "b")
    w.role(40, "a", "left")
    w.advance_to(95)
    state = w.state
    assert state is not None
    d = state.to_dict()
    # everything but the transient cache, which a restart recomputes
    assert {"deadline_due"} == TRANSIENT
    assert d == {k: v for k, v in asdict(state).items() if k not in TRANSIENT}
    assert set(d) == {f.name for f in fields(state)} - TRANSIENT
    assert AccountState.from_dict(d) == state
    d["score_days"][999] = 1.0  # a copy, not the live dict
    d["stakeholders"]["a"]["score_days"][999] = 1.0
    assert 999 not in state.score_days and 999 not in state.stakeholders["a"].score_days
