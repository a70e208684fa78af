"""Deadline grace and withdrawals (SPEC section 9), pure: the engine alone, event by event.

A deadline signal is judged at its deadline and goes out once event time is
``deadline_grace_hours`` past it, ``occurred_at`` staying the deadline. A late event (older
than the account's event time, within the allowed lateness) that proves it premature cancels
it while it waits, or withdraws it once out: the same id, status "withdrawn", the event named.
"""

from __future__ import annotations

from world import DETECTED_AT, World, at

from processors.rules import DEFAULT_RULES

SECOND = 1 / 86_400
HOUR = 1 / 24
GRACE = DEFAULT_RULES.engagement.deadline_grace_hours * HOUR
LATENESS = DEFAULT_RULES.engagement.allowed_lateness_days


def silent_world() -> World:
    """Last reply on day 10.5: the silence (60 days) is due at day 70.5."""
    w = World(rules=DEFAULT_RULES)
    w.profile(0)
    w.reply(10.5, "a", event_id="last-reply")
    return w


def test_a_deadline_signal_goes_out_when_the_grace_has_passed_dated_at_its_deadline() -> None:
    assert GRACE == 1.0  # the default: 24 hours
    w = silent_world()
    w.impression(70.5 + GRACE - SECOND, "a")  # judged, but the grace has not passed
    assert w.of("engagement_silence") == []
    assert w.state is not None and len(w.state.parked) == 1

    w.impression(70.5 + GRACE, "a")
    s = w.one("engagement_silence")
    assert s.occurred_at == at(70.5)  # the deadline, not the moment it went out
    assert s.status == "open" and s.withdrawn_at is None
    assert w.state.parked == [] and len(w.state.watched) == 1


def test_the_grace_also_passes_with_the_days() -> None:
    w = silent_world()
    w.advance_to(71)  # the midnight after the deadline: judged, waiting
    assert w.of("engagement_silence") == []
    w.advance_to(72)  # 1.5 days after it
    assert w.one("engagement_silence").occurred_at == at(70.5)


def test_a_late_reply_within_the_grace_cancels_the_silence_before_it_goes_out() -> None:
    w2 = silent_world()
    w2.impression(71.2, "a")  # past the deadline (70.5), within the grace: judged, waiting
    cancelled = w2.reply(70.5 - 2 * HOUR, "a", event_id="late-reply")  # 2 h before it
    assert [s.type for s in cancelled.cancelled] == ["engagement_silence"]
    assert cancelled.withdrawn == [] and cancelled.signals == []
    w2.advance_to(75)
    assert w2.of("engagement_silence") == []  # never out
    assert w2.state is not None and w2.state.parked == [] and w2.state.watched == []


def test_a_late_reply_after_the_grace_withdraws_the_silence_and_the_tier_is_judged_again(
        ) -> None:
    w = silent_world()
    w.impression(72, "a")
    silence = w.one("engagement_silence")
    assert w.tier == "at_risk"

    w.reply(70.5 - SECOND, "a", event_id="late-reply")  # the last second of the silence
    [withdrawn] = w.withdrawn
    assert withdrawn.signal_id == silence.signal_id
    assert withdrawn.status == "withdrawn" and withdrawn.withdrawn_at == DETECTED_AT
    assert withdrawn.occurred_at == silence.occurred_at
    assert withdrawn.evidence["withdrawn_by"]["event_id"] == "late-reply"
    assert withdrawn.evidence["silent_since"] == silence.evidence["silent_since"]
    assert w.tier == "stable" and w.tier_changes[-1].tier == "stable"
    assert w.state is not None and w.state.watched == []


def test_a_late_event_that_does_not_break_it_withdraws_nothing() -> None:
    w = silent_world()
    w.impression(72, "a")
    w.one("engagement_silence")
    w.reply(70.5, "a")  # at the deadline itself: the silence was complete
    w.impression(70, "a")  # exposure is not engagement
    w.reply(10, "a")  # before the silence began
    assert w.withdrawn == [] and w.tier == "at_risk"
    w.content(69, "a", "view", event_id="late-view")  # within it: engagement
    assert [s.evidence["withdrawn_by"]["event_id"] for s in w.withdrawn] == ["late-view"]


def test_an_event_beyond_the_allowed_lateness_withdraws_nothing() -> None:
    w = silent_world()
    w.impression(72, "a")
    w.one("engagement_silence")
    w.reply(72 - LATENESS - SECOND, "a", event_id="too-late")
    assert w.late == ["too-late"]
    assert w.withdrawn == [] and w.tier == "at_risk"


def test_a_withdrawable_signal_is_final_once_nothing_older_can_be_accepted() -> None:
    w = silent_world()
    w.impression(72, "a")
    assert w.state is not None and len(w.state.watched) == 1
    w.advance_to(77)  # event time (the day sweeps count) minus the lateness: day 70
    assert len(w.state.watched) == 1
    w.advance_to(78)  # day 71: nothing older than the silence (70.5) can be accepted now
    assert w.state.watched == []


def test_lateness_counts_from_the_day_sweeps_too() -> None:
    """An account whose own events stopped is still moved on by the sweeps: an event more than
    the allowed lateness behind the day it was judged at is late."""
    for day, late in ((80 - LATENESS, False), (80 - LATENESS - SECOND, True)):
        w = World(rules=DEFAULT_RULES)
        w.profile(0)
        w.reply(15, "a")  # the silence: due on day 75, out on day 76
        w.advance_to(80)  # the account's own latest event is on day 15
        assert len(w.of("engagement_silence")) == 1
        w.reply(day, "a", event_id="arrives-now")
        assert (w.late == ["arrives-now"]) is late, day
        # within the lateness, the reply (within the silence) withdraws it
        assert len(w.withdrawn) == (0 if late else 1)


def test_a_late_exposure_withdraws_a_continuity_gap() -> None:
    w = World(rules=DEFAULT_RULES)
    w.profile(0, tier=1)
    w.impression(0.5, "a", event_id="last-ad")
    w.reply(32, "a")
    gap = w.one("continuity_gap")  # 30 days without exposure from day 0.5, out a day later
    assert gap.occurred_at == at(30.5)
    w.reply(29, "a")  # a reply is no exposure
    assert w.withdrawn == []
    w.impression(30, "a", event_id="late-ad")
    assert [(s.signal_id, s.evidence["withdrawn_by"]["event_id"]) for s in w.withdrawn] == [
        (gap.signal_id, "late-ad")]


def test_a_late_joiner_reached_by_the_deadline_withdraws_succession_overdue() -> None:
    w = World(rules=DEFAULT_RULES)
    w.profile(0, champion_ids=("champ",))
    w.join(1, "champ")
    w.leave(10, "champ", event_id="champ-left")
    w.advance_to(42)
    overdue = w.one("succession_overdue")
    assert overdue.occurred_at == at(40)
    w.join(38, "newbie", event_id="late-join")  # joined after the departure ...
    assert w.withdrawn == []  # ... but not reached by the deadline yet
    w.reply(39, "newbie", event_id="late-reply")
    assert [(s.signal_id, s.evidence["withdrawn_by"]["event_id"]) for s in w.withdrawn] == [
        (overdue.signal_id, "late-reply")]
