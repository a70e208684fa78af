"""SPEC section 4, one rule at a time, at its threshold: just past it fires, just short of it not.

Each world starts on 2026-01-01 (day 0); days below count from there. Windowed conditions need
their window observed since the account's first event, and deadline signals carry the deadline
as ``occurred_at`` (see ``processors/``), so the days chosen here are exact.
"""

from __future__ import annotations

import pytest
from world import DAY_S, World, at, ts

SECOND = 1 / DAY_S


def signal_types(world: World) -> list[str]:
    return sorted(world.types())


# -- champion_left ---------------------------------------------------------------------------


def test_champion_listed_on_the_profile_leaving_is_a_critical_alert() -> None:
    w = World()
    w.profile(0, renewal_day=100, champion_ids=("champ",))
    w.join(1, "champ", function="commercial", seniority="manager")
    w.leave(10, "champ", event_id="left-1", title="Marketing Manager")

    s = w.one("champion_left")
    assert (s.severity, s.category, s.is_alert) == ("critical", "churn", True)
    assert s.stakeholder_id == "champ"
    assert s.occurred_at == at(10)
    assert s.evidence["event_ids"] == ["left-1"]
    assert s.evidence["title"] == "Marketing Manager"
    assert s.evidence["renewal_in_days"] == 90


def test_champion_by_buying_role_leaving_is_a_critical_alert() -> None:
    w = World()
    w.profile(0)
    w.join(1, "champ", buying_role="champion")
    w.leave(10, "champ", event_id="left-1")  # the left event itself says buying_role unknown

    s = w.one("champion_left")
    assert (s.severity, s.stakeholder_id, s.occurred_at) == ("critical", "champ", at(10))


def test_champion_named_only_on_the_profile_and_never_seen_before_leaving_fires() -> None:
    w = World()
    w.profile(0, champion_ids=("champ",))
    w.leave(10, "champ")
    assert w.one("champion_left").stakeholder_id == "champ"


@pytest.mark.parametrize("buying_role", ["end_user", "economic_buyer", "unknown"])
def test_a_non_champion_leaving_fires_nothing(buying_role: str) -> None:
    w = World()
    w.profile(0, champion_ids=("champ",))
    w.join(1, "someone", buying_role=buying_role)
    w.leave(10, "someone")
    assert w.signals == []
    assert w.state is not None and w.state.departures == []


def test_a_champion_leaving_twice_fires_once() -> None:
    w = World()
    w.profile(0, champion_ids=("champ",))
    w.leave(10, "champ")
    w.leave(11, "champ")
    assert len(w.of("champion_left")) == 1


@pytest.mark.parametrize("known_before", [True, False])
def test_a_left_event_that_names_the_person_champion_is_a_champion_leaving(
        known_before: bool) -> None:
    w = World()
    w.profile(0)
    if known_before:
        w.join(1, "champ")  # buying role not known yet
    w.leave(10, "champ", buying_role="champion", event_id="left-1")
    s = w.one("champion_left")
    assert (s.severity, s.stakeholder_id, s.evidence["event_ids"]) == (
        "critical", "champ", ["left-1"])


# -- key_contact_changed ---------------------------------------------------------------------


@pytest.mark.parametrize("buying_role", ["champion", "economic_buyer"])
@pytest.mark.parametrize("change", ["promoted", "role_changed"])
def test_key_contact_promoted_or_changing_role_is_high(buying_role: str, change: str) -> None:
    w = World()
    w.profile(0)
    w.join(1, "key", buying_role=buying_role, title="Marketing Manager")
    w.role(20, "key", change, buying_role=buying_role, title="CMO", seniority="c_level",
           event_id="chg-1")

    s = w.one("key_contact_changed")
    assert (s.severity, s.category, s.stakeholder_id) == ("high", "churn", "key")
    assert s.occurred_at == at(20)
    assert s.evidence["event_ids"] == ["chg-1"]
    assert s.evidence["role"] == buying_role
    assert s.evidence["change"] == change
    assert (s.evidence["previous_title"], s.evidence["new_title"]) == ("Marketing Manager", "CMO")


def test_profile_champion_promoted_is_a_key_contact_change() -> None:
    w = World()
    w.profile(0, champion_ids=("champ",))
    w.join(1, "champ")
    w.role(20, "champ", "promoted", title="CMO")
    s = w.one("key_contact_changed")
    assert (s.stakeholder_id, s.evidence["role"]) == ("champ", "champion")


@pytest.mark.parametrize("buying_role", ["end_user", "technical_evaluator", "unknown"])
def test_other_contacts_changing_role_fire_nothing(buying_role: str) -> None:
    w = World()
    w.profile(0)
    w.join(1, "user", buying_role=buying_role)
    w.role(20, "user", "promoted", buying_role=buying_role)
    w.role(21, "user", "role_changed", buying_role=buying_role)
    assert w.signals == []


# -- engagement_silence ------------------------------------------------------------------------


def test_silence_fires_at_sixty_days_not_at_59_9() -> None:
    w = World()
    w.profile(0)
    w.reply(10.5, "a", event_id="last-reply")
    w.impression(10.5 + 59.9, "a")  # exposure moves event time on but is no engagement
    assert w.of("engagement_silence") == []

    w.impression(10.5 + 60, "a")
    s = w.one("engagement_silence")
    assert (s.severity, s.category, s.stakeholder_id) == ("high", "churn", None)
    assert s.occurred_at == at(70.5)
    assert s.evidence["event_ids"] == ["last-reply"]
    assert s.evidence["silent_since"] == ts(10.5)
    assert s.evidence["threshold_days"] == 60
    assert s.evidence["never_engaged"] is False


def test_silence_fires_once_per_silence_as_days_pass() -> None:
    w = World()
    w.profile(0)
    w.reply(10, "a")
    w.advance_to(69)
    assert w.of("engagement_silence") == []
    w.advance_to(70)
    assert w.one("engagement_silence").occurred_at == at(70)
    w.advance_to(150)
    assert len(w.of("engagement_silence")) == 1


def test_silence_fires_again_after_a_new_engagement_and_a_new_silence() -> None:
    w = World()
    w.profile(0)
    w.reply(10, "a")
    w.advance_to(80)
    w.reply(80.25, "a")
    w.advance_to(141)
    assert [s.occurred_at for s in w.of("engagement_silence")] == [at(70), at(140.25)]
    assert len({s.signal_id for s in w.of("engagement_silence")}) == 2


def test_an_account_that_never_engaged_is_silent_sixty_days_after_first_seen() -> None:
    w = World()
    w.profile(0)
    w.impression(1, "a")
    w.advance_to(60)
    s = w.one("engagement_silence")
    assert s.occurred_at == at(60)
    assert s.evidence["never_engaged"] is True
    assert s.evidence["event_ids"] == []


# -- engagement_drop ---------------------------------------------------------------------------


@pytest.mark.parametrize(("prior", "last", "fires"), [
    (100, 61, False),  # -39%
    (100, 60, True),   # -40%
    (19, 0, False),    # prior below 20 points
    (20, 0, True),
])
def test_engagement_drop_boundaries(prior: int, last: int, fires: bool) -> None:
    w = World()
    w.profile(0)
    w.points(1, "a", prior)  # the prior 30 days at day 60: days 1..30
    w.points(31, "a", last)  # the trailing 30 days at day 60: days 31..60
    # the windows already show the drop on day 59, but 60 days are not observed yet
    w.advance_to(59)
    assert w.of("engagement_drop") == []

    w.advance_to(60)
    found = w.of("engagement_drop")
    if not fires:
        assert found == []
        return
    assert len(found) == 1
    s = found[0]
    assert (s.severity, s.category, s.occurred_at) == ("medium", "churn", at(60))
    assert (s.evidence["score_30d"], s.evidence["score_prior_30d"]) == (last, prior)
    assert s.evidence["change_pct"] == round((last - prior) / prior * 100, 2)
    assert (s.evidence["threshold_drop_pct"], s.evidence["min_prior_points"]) == (40, 20)


def test_engagement_drop_fires_once_while_it_holds() -> None:
    w = World()
    w.profile(0)
    w.points(1, "a", 100)
    w.advance_to(75)
    assert [s.occurred_at for s in w.of("engagement_drop")] == [at(60)]


# -- single_threaded ---------------------------------------------------------------------------


def _roster_world(people: tuple[str, ...], engaged: tuple[str, ...]) -> World:
    w = World()
    w.profile(0)
    for sid in people:
        w.join(0, sid)
    for sid in engaged:
        w.reply(10, sid)
    return w


def test_one_engaged_with_two_on_the_roster_is_single_threaded_once_90_days_are_observed() -> None:
    w = _roster_world(("a", "b"), engaged=("a",))
    w.advance_to(89)
    assert w.of("single_threaded") == []
    w.advance_to(90)
    s = w.one("single_threaded")
    assert (s.severity, s.category, s.occurred_at) == ("medium", "churn", at(90))
    assert s.evidence["engaged_stakeholders"] == ["a"]
    assert s.evidence["roster"] == 2
    assert s.evidence["window_days"] == 90


def test_two_engaged_is_not_single_threaded() -> None:
    w = _roster_world(("a", "b"), engaged=("a", "b"))
    w.advance_to(95)
    assert w.of("single_threaded") == []


def test_a_roster_of_one_is_not_single_threaded() -> None:
    w = _roster_world(("a",), engaged=("a",))
    w.advance_to(95)
    assert w.of("single_threaded") == []


def test_a_stakeholder_who_left_is_no_longer_a_thread() -> None:
    w = _roster_world(("a", "b", "c"), engaged=())
    w.reply(60, "a")
    w.reply(60, "b")
    w.leave(70, "b")  # roster a, c: only a engages
    w.advance_to(90)
    s = w.one("single_threaded")
    assert s.evidence["engaged_stakeholders"] == ["a"]


# -- renewal_at_risk -----------------------------------------------------------------------------

RENEWAL = 200  # renewal 90 days ahead from day 110 on


def _renewal_world(*, first_day: float = 0, champion_ids: tuple[str, ...] = ()) -> World:
    w = World()
    w.profile(first_day, renewal_day=RENEWAL, champion_ids=champion_ids)
    for sid in ("a", "b", "c"):
        w.join(first_day, sid)
    return w


def _renewal(w: World) -> list[str]:
    return [s.type for s in w.signals if s.type == "renewal_at_risk"]


def test_renewal_with_a_45_day_silence_fires_when_90_days_away_not_91() -> None:
    w = _renewal_world()
    for sid in ("a", "b", "c"):
        w.reply(65, sid)
    w.advance_to(RENEWAL - 91)
    assert _renewal(w) == []

    w.advance_to(RENEWAL - 90)
    s = w.one("renewal_at_risk")
    assert (s.severity, s.category, s.is_alert) == ("critical", "churn", True)
    assert s.occurred_at == at(RENEWAL - 90)
    assert s.evidence["reasons"] == ["no engagement for 45 days"]
    assert s.evidence["renewal_in_days"] == 90
    assert s.evidence["silent_days"] == 45.0
    assert s.evidence["engaged_stakeholders"] == ["a", "b", "c"]


def test_renewal_with_a_44_day_silence_and_three_engaged_is_not_at_risk() -> None:
    w = _renewal_world()
    for sid in ("a", "b", "c"):
        w.reply(66, sid)
    w.advance_to(RENEWAL - 90)
    assert _renewal(w) == []


def test_renewal_with_fewer_than_three_engaged_in_90_days() -> None:
    w = _renewal_world()
    w.reply(100, "a")
    w.reply(100, "b")
    w.advance_to(RENEWAL - 91)
    assert _renewal(w) == []
    w.advance_to(RENEWAL - 90)
    s = w.one("renewal_at_risk")
    assert s.evidence["reasons"] == ["2 engaged stakeholder(s) in 90 days"]
    assert s.evidence["engaged_stakeholders"] == ["a", "b"]


def test_renewal_with_three_engaged_and_no_silence_is_not_at_risk() -> None:
    w = _renewal_world()
    for sid in ("a", "b", "c"):
        w.reply(100, sid)
    w.advance_to(RENEWAL - 80)
    assert _renewal(w) == []


def test_fewer_than_three_engaged_counts_only_once_90_days_are_observed() -> None:
    w = _renewal_world(first_day=30)
    w.reply(100, "a")
    w.reply(100, "b")
    w.advance_to(119)  # renewal within 90 days since day 110, but only 89 days watched
    assert _renewal(w) == []
    w.advance_to(120)
    s = w.one("renewal_at_risk")
    assert s.occurred_at == at(120)
    assert s.evidence["renewal_in_days"] == 80
    assert s.evidence["reasons"] == ["2 engaged stakeholder(s) in 90 days"]


@pytest.mark.parametrize(("left_day", "fires"), [(20, True), (19, False)])
def test_renewal_after_a_champion_left_within_90_days(left_day: int, fires: bool) -> None:
    w = _renewal_world(champion_ids=("champ",))
    w.leave(left_day, "champ", event_id="champ-left")
    for sid in ("a", "b", "c"):
        w.reply(100, sid)
    w.advance_to(RENEWAL - 91)
    assert _renewal(w) == []
    w.advance_to(RENEWAL - 90)
    if not fires:
        assert _renewal(w) == []
        return
    s = w.one("renewal_at_risk")
    assert s.evidence["reasons"] == ["champion left champ"]
    assert s.evidence["event_ids"][0] == "champ-left"


def test_renewal_at_risk_fires_once_per_renewal_date() -> None:
    w = _renewal_world()
    w.reply(100, "a")
    w.advance_to(RENEWAL)
    assert len(w.of("renewal_at_risk")) == 1


def test_renewal_found_after_a_jump_in_event_time_is_dated_at_its_deadline() -> None:
    w = World(sweep=False)  # no day sweeps: event time jumps from day 100 to day 150
    w.profile(0, renewal_day=RENEWAL)
    for sid in ("a", "b", "c"):
        w.join(0, sid)
    w.reply(100, "a")
    w.reply(100, "b")  # 2 engaged in 90 days: at risk as soon as the renewal is 90 days out
    w.impression(150, "a")
    s = w.one("renewal_at_risk")
    assert s.occurred_at == at(RENEWAL - 90)
    assert s.evidence["renewal_in_days"] == 90


# -- continuity_gap --------------------------------------------------------------------------------


def test_tier_one_gap_in_exposure_fires_past_30_days_not_at_exactly_30() -> None:
    w = World()
    w.profile(0, tier=1)
    w.impression(0.5, "a", event_id="last-ad")
    w.reply(30.5, "a")  # exactly 30 days without exposure: the rule is "more than 30"
    assert w.of("continuity_gap") == []

    w.reply(30.5 + SECOND, "a")
    s = w.one("continuity_gap")
    assert (s.severity, s.category, s.is_alert) == ("medium", "churn", False)
    assert s.occurred_at == at(30.5)
    assert s.evidence["event_ids"] == ["last-ad"]
    assert s.evidence["last_exposed_at"] == ts(0.5)
    assert (s.evidence["threshold_days"], s.evidence["tier"]) == (30, 1)

    w.advance_to(80)
    assert len(w.of("continuity_gap")) == 1


def test_tier_one_gap_found_by_passing_days() -> None:
    w = World()
    w.profile(0, tier=1)
    w.impression(0, "a")
    assert w.advance_to(30) == []
    fresh = w.advance_to(31)
    assert [s.type for s in fresh] == ["continuity_gap"]
    assert fresh[0].occurred_at == at(30)


@pytest.mark.parametrize("tier", [2, 3])
def test_continuity_gap_never_fires_below_tier_one(tier: int) -> None:
    w = World()
    w.profile(0, tier=tier)
    w.impression(0, "a")
    w.advance_to(120)
    assert w.of("continuity_gap") == []


# -- succession_overdue ------------------------------------------------------------------------


def _departure_world() -> World:
    w = World()
    w.profile(0, champion_ids=("champ",))
    w.join(1, "champ")
    w.leave(10, "champ", event_id="champ-left")
    w.join(12, "newbie", function="financial", seniority="c_level")
    return w


def test_succession_overdue_30_days_after_the_champion_left_not_29() -> None:
    w = _departure_world()
    w.advance_to(39)
    assert w.of("succession_overdue") == []
    w.advance_to(40)
    s = w.one("succession_overdue")
    assert (s.severity, s.category, s.is_alert) == ("high", "churn", True)
    assert s.stakeholder_id == "champ"
    assert s.occurred_at == at(40)
    assert s.evidence["event_ids"] == ["champ-left"]
    assert s.evidence["departed_champion"] == "champ"
    assert s.evidence["joined_since"] == ["newbie"]
    assert s.evidence["threshold_days"] == 30
    w.advance_to(90)
    assert len(w.of("succession_overdue")) == 1


@pytest.mark.parametrize("reach", ["impression", "reply"])
@pytest.mark.parametrize("day", [12.5, 40 - SECOND])
def test_a_joiner_reached_within_30_days_means_no_succession_signal(reach: str, day: float) -> None:
    w = _departure_world()
    if reach == "impression":
        w.impression(day, "newbie")
    else:
        w.reply(day, "newbie")
    w.advance_to(90)
    assert w.of("succession_overdue") == []


def test_a_joiner_reached_only_after_the_deadline_does_not_prevent_the_signal() -> None:
    w = _departure_world()
    w.impression(41, "newbie")
    w.advance_to(45)
    assert w.one("succession_overdue").occurred_at == at(40)


# -- engagement_surge --------------------------------------------------------------------------


@pytest.mark.parametrize(("prior", "last", "fires"), [
    (1000, 1300, False),  # +30%: the rule is "more than 30%"
    (1000, 1301, True),   # +30.1%
    (19, 100, False),     # prior below 20 points
    (20, 100, True),
])
def test_engagement_surge_boundaries(prior: int, last: int, fires: bool) -> None:
    w = World()
    w.profile(0)
    w.points(1, "a", prior)
    w.points(31, "a", last)
    w.advance_to(59)  # not observed for 60 days yet
    assert w.of("engagement_surge") == []

    w.advance_to(60)
    found = w.of("engagement_surge")
    if not fires:
        assert found == []
        return
    assert len(found) == 1
    s = found[0]
    assert (s.severity, s.category, s.occurred_at) == ("medium", "expansion", at(60))
    assert (s.evidence["score_30d"], s.evidence["score_prior_30d"]) == (last, prior)
    assert s.evidence["change_pct"] == round((last - prior) / prior * 100, 2)
    assert s.evidence["threshold_rise_pct"] == 30


# -- new_stakeholder_engaged -------------------------------------------------------------------


def test_first_engagement_of_a_stakeholder_fires() -> None:
    w = World()
    w.profile(0)
    w.join(1, "cfo", function="financial", seniority="c_level", title="CFO")
    w.reply(5, "cfo", "positive_reply", event_id="cfo-reply")
    s = w.one("new_stakeholder_engaged")
    assert (s.severity, s.category, s.stakeholder_id) == ("high", "expansion", "cfo")
    assert s.occurred_at == at(5)
    assert s.evidence["event_ids"] == ["cfo-reply"]
    assert (s.evidence["function"], s.evidence["seniority"], s.evidence["title"]) == (
        "financial", "c_level", "CFO")
    assert s.evidence["previous_engagement_at"] is None
    assert s.evidence["points"] == 12
    assert s.evidence["threshold_quiet_days"] == 180


@pytest.mark.parametrize(("gap", "fires_again"), [(179, False), (180, True)])
def test_engaging_again_after_180_quiet_days_is_new_again(gap: int, fires_again: bool) -> None:
    w = World()
    w.profile(0)
    w.join(0, "p")
    w.content(5, "p", "like")
    w.content(5 + gap, "p", "comment", event_id="again")
    found = w.of("new_stakeholder_engaged")
    assert len(found) == (2 if fires_again else 1)
    if fires_again:
        assert found[1].occurred_at == at(5 + gap)
        assert found[1].evidence["previous_engagement_at"] == ts(5)
        assert found[1].evidence["event_ids"] == ["again"]


@pytest.mark.parametrize(("function", "seniority", "severity"), [
    ("financial", "manager", "high"),
    ("operations", "individual", "high"),
    ("commercial", "c_level", "high"),
    ("technical", "vp", "high"),
    ("commercial", "director", "medium"),
    ("technical", "manager", "medium"),
    ("procurement", "individual", "medium"),
])
def test_new_stakeholder_severity(function: str, seniority: str, severity: str) -> None:
    w = World()
    w.profile(0)
    w.join(1, "p", function=function, seniority=seniority)
    w.content(5, "p", "save")
    assert w.one("new_stakeholder_engaged").severity == severity


def test_a_stakeholder_with_no_known_role_is_medium() -> None:
    w = World()
    w.profile(0)
    w.content(5, "stranger", "view")
    s = w.one("new_stakeholder_engaged")
    assert (s.severity, s.stakeholder_id, s.evidence["function"]) == ("medium", "stranger", None)


def test_an_unclicked_impression_is_exposure_not_engagement() -> None:
    w = World()
    w.profile(0)
    w.join(1, "cfo", function="financial", seniority="c_level")
    w.impression(5, "cfo")
    w.reply(6, "cfo", "not_interested")  # 0 points: no engagement either
    w.reply(7, "cfo", "unsubscribe")
    assert w.signals == []
    w.impression(8, "cfo", clicked=True, event_id="click")
    s = w.one("new_stakeholder_engaged")
    assert (s.stakeholder_id, s.severity, s.evidence["event_ids"], s.evidence["points"]) == (
        "cfo", "high", ["click"], 5)


# -- champion_advocacy ---------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["like", "comment", "share"])
def test_a_champion_in_public_is_advocacy(action: str) -> None:
    w = World()
    w.profile(0, champion_ids=("champ",))
    w.content(5, "champ", action, public=True, event_id="post")
    s = w.one("champion_advocacy")
    assert (s.severity, s.category, s.stakeholder_id) == ("medium", "expansion", "champ")
    assert s.occurred_at == at(5)
    assert s.evidence["event_ids"] == ["post"]
    assert (s.evidence["action"], s.evidence["content_id"]) == (action, "post-1")


def test_a_champion_by_buying_role_in_public_is_advocacy() -> None:
    w = World()
    w.profile(0)
    w.join(1, "champ", buying_role="champion")
    w.content(5, "champ", "share", public=True)
    assert w.one("champion_advocacy").stakeholder_id == "champ"


@pytest.mark.parametrize(("who", "action", "public"), [
    ("champ", "share", False),       # private
    ("champ", "view", True),         # a view is never public advocacy
    ("champ", "save", True),
    ("someone", "share", True),      # not a champion
])
def test_no_advocacy(who: str, action: str, public: bool) -> None:
    w = World()
    w.profile(0, champion_ids=("champ",))
    w.content(5, who, action, public=public)
    assert w.of("champion_advocacy") == []


# -- pricing_page_visit ----------------------------------------------------------------------------


def test_a_pricing_page_visit_is_high_intent() -> None:
    w = World()
    w.profile(0)
    w.content(7.25, "p", "pricing_page_visit", event_id="pricing")
    s = w.one("pricing_page_visit")
    assert (s.severity, s.category, s.stakeholder_id) == ("high", "expansion", "p")
    assert s.occurred_at == at(7.25)
    assert s.evidence["event_ids"] == ["pricing"]
    assert s.evidence["content_id"] == "post-1"


def test_other_website_visits_are_not_pricing_visits() -> None:
    w = World()
    w.profile(0)
    w.content(7, "p", "website_visit")
    assert w.of("pricing_page_visit") == []


# -- multi_threaded ------------------------------------------------------------------------------


@pytest.mark.parametrize(("functions", "fires"), [
    (("commercial", "commercial", "financial"), True),
    (("commercial", "commercial", "commercial"), False),
    (("commercial", "financial"), False),
])
def test_multi_threaded(functions: tuple[str, ...], fires: bool) -> None:
    w = World()
    w.profile(0)
    people = [f"p{i}" for i in range(len(functions))]
    for sid, function in zip(people, functions, strict=True):
        w.join(1, sid, function=function)
    for sid in people:
        w.reply(5, sid)
    found = w.of("multi_threaded")
    if not fires:
        assert found == []
        return
    assert len(found) == 1
    s = found[0]
    assert (s.severity, s.category, s.occurred_at) == ("low", "expansion", at(5))
    assert s.evidence["engaged_stakeholders"] == people
    assert s.evidence["functions"] == ["commercial", "financial"]


def test_multi_threaded_counts_only_the_last_30_days() -> None:
    w = World()
    w.profile(0)
    for sid, function in (("a", "commercial"), ("b", "financial"), ("c", "technical")):
        w.join(1, sid, function=function)
    w.reply(2, "a")
    w.reply(40, "b")
    w.reply(41, "c")
    assert w.of("multi_threaded") == []


# -- reference_candidate ---------------------------------------------------------------------


def test_three_engaged_and_a_public_champion_is_a_reference_candidate() -> None:
    w = World()
    w.profile(0, champion_ids=("champ",))
    w.reply(5, "b")
    w.reply(5, "c")
    w.content(6, "champ", "like", public=True)
    s = w.one("reference_candidate")
    assert (s.severity, s.category, s.occurred_at) == ("medium", "expansion", at(6))
    assert s.evidence["engaged_stakeholders"] == ["b", "c", "champ"]
    assert s.evidence["public_champions"] == ["champ"]


def test_three_engaged_without_a_public_champion_is_no_reference_candidate() -> None:
    w = World()
    w.profile(0, champion_ids=("champ",))
    w.reply(5, "b")
    w.reply(5, "c")
    w.content(6, "champ", "like", public=False)
    w.content(6, "champ", "view", public=True)
    assert w.of("reference_candidate") == []


def test_a_public_champion_more_than_30_days_ago_is_no_reference() -> None:
    w = World()
    w.profile(0, champion_ids=("champ",))
    w.content(1, "champ", "share", public=True)
    w.reply(35, "champ")
    w.reply(35, "b")
    w.reply(35, "c")
    assert w.of("reference_candidate") == []


# -- tiers ---------------------------------------------------------------------------------------


def _committee(champion_engages: bool) -> World:
    w = World()
    w.profile(0, champion_ids=("champ",))
    for sid in ("b", "c", "d"):
        w.reply(5, sid)
    if champion_engages:
        w.reply(6, "champ")
    return w


def test_expansion_ready_needs_the_champion_among_the_engaged() -> None:
    assert _committee(champion_engages=False).tier == "stable"
    w = _committee(champion_engages=True)
    assert w.tier == "expansion_ready"
    assert w.tier_changes[-1].occurred_at == at(6)


def test_expansion_ready_lapses_when_engagement_is_30_days_old() -> None:
    w = _committee(champion_engages=True)
    w.advance_to(34)
    assert w.tier == "expansion_ready"
    w.advance_to(35)  # the three engaged on day 5: exactly 30 days ago is out of the window
    assert w.tier == "stable"
    assert (w.tier_changes[-1].previous_tier, w.tier_changes[-1].occurred_at) == (
        "expansion_ready", at(35))


def test_a_serious_churn_signal_makes_the_account_at_risk_for_30_days() -> None:
    w = World()
    w.profile(0, champion_ids=("champ",))
    w.reply(1, "champ")
    w.role(10, "champ", "promoted", buying_role="champion")  # key_contact_changed: high
    assert w.tier == "at_risk"
    assert w.tier_changes[-1].reasons == ["key_contact_changed in the last 30 days"]
    w.reply(35, "champ")
    w.advance_to(40)
    assert w.tier == "at_risk"
    w.advance_to(41)
    assert w.tier == "stable"


def test_a_medium_churn_signal_does_not_make_the_account_at_risk() -> None:
    w = World()
    w.profile(0, tier=1)
    w.impression(0, "a")
    w.reply(20, "a")
    w.reply(40, "a")
    assert w.one("continuity_gap").severity == "medium"
    assert w.tier == "stable"


def test_sixty_days_of_silence_makes_the_account_at_risk() -> None:
    w = World()
    w.profile(0)
    w.reply(1, "a")
    w.advance_to(60)
    assert w.tier == "stable"
    w.advance_to(61)
    assert w.tier == "at_risk"
    assert "no engagement for 60 days" in w.tier_changes[-1].reasons
