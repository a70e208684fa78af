"""Which events are judged for conditions and tier mid-day: those that can move them."""

from __future__ import annotations

from world import World, at


def committee(champion: str = "a") -> World:
    w = World()
    w.profile(0, champion_ids=(champion,))
    for sid, function in (("a", "commercial"), ("b", "financial"), ("c", "technical"),
                          ("d", "operations")):
        w.join(0, sid, function=function)
    return w


def test_the_tier_turns_expansion_ready_on_the_event_that_makes_it_so_not_the_next_day() -> None:
    w = committee()
    w.reply(5.1, "a")
    w.reply(5.2, "b")
    w.reply(5.3, "a")  # a again: nobody new, nothing judged
    assert w.tier == "stable"
    w.reply(5.6, "c")  # the third engaged person, mid-day
    assert w.tier == "expansion_ready"
    assert w.tier_changes[-1].occurred_at == at(5.6)


def test_multi_threaded_starts_on_the_newly_engaged_person_mid_day() -> None:
    w = committee()
    w.reply(5.1, "a")
    w.reply(5.2, "b")
    w.content(5.3, "b", "view")  # b again: the engaged set does not grow
    assert w.of("multi_threaded") == []
    w.content(5.7, "d", "view")
    assert [s.occurred_at for s in w.of("multi_threaded")] == [at(5.7)]


def test_reference_candidate_starts_on_a_champions_public_act_mid_day() -> None:
    w = committee()
    for day, sid in ((5.1, "a"), (5.2, "b"), (5.3, "c")):
        w.reply(day, sid)
    assert w.of("reference_candidate") == []
    w.content(5.8, "a", "share", public=True)  # a is engaged already; the public act moves it
    assert [s.occurred_at for s in w.of("reference_candidate")] == [at(5.8)]


def test_single_threaded_starts_when_a_role_change_thins_the_engaged_set_mid_day() -> None:
    w = committee()
    w.reply(10, "a")
    w.reply(10, "b")
    w.advance_to(95)  # 90 days observed, two engaged within 90 days: not single-threaded
    w.impression(95.2, "c")
    assert w.of("single_threaded") == []
    w.role(95.5, "a", "left", function="commercial")  # a leaves: b is the only thread left
    assert [s.occurred_at for s in w.of("single_threaded")] == [at(95.5)]


def test_exposure_only_events_fire_nothing_but_a_pricing_visit_fires_even_at_zero_points() -> None:
    """Events that only expose (an impression) skip the rules mid-day; a rule that fires on
    the event itself whatever its weight (pricing_page_visit) is still judged."""
    from processors.rules import parse_rules

    w = committee()
    w.rules = parse_rules("[weights]\npricing_page_visit = 0\n")
    w.reply(5.1, "a")
    before = len(w.signals)
    for i in range(5):
        w.impression(5.2 + i / 100, "b")
    assert len(w.signals) == before
    w.content(5.6, "c", "pricing_page_visit")
    assert [s.occurred_at for s in w.of("pricing_page_visit")] == [at(5.6)]
    assert w.state is not None and w.state.stakeholders["c"].last_engaged is None
