"""Scenarios from the retention playbook (``seeds/``), as the signal engine should read them.

Each test tells a story of one account from 2026-01-01 (day 0) on and checks what a revenue
team would be told, and when.
"""

from __future__ import annotations

from world import World, at

CHAMPION_SIGNALS = ("champion_left", "key_contact_changed", "succession_overdue")


def tiers(w: World) -> list[tuple[str | None, str]]:
    return [(t.previous_tier, t.tier) for t in w.tier_changes]


def test_proxima_industrial_contact_change_silence_and_renewal_pressure() -> None:
    """Renewal in 4 months; the marketing manager who championed the deal was promoted to CMO
    6 weeks ago; nobody has opened an ad or clicked a post in 45 days: an at-risk account."""
    today = 100  # the playbook's "now"
    renewal = today + 120  # 4 months
    w = World(account_id="proxima-industrial")
    w.profile(0, name="Proxima Industrial", tier=2, renewal_day=renewal,
              champion_ids=("marketing-manager",))
    w.join(0, "marketing-manager", function="commercial", seniority="manager",
           buying_role="champion", title="Marketing Manager")
    w.join(0, "ops-director", function="operations", seniority="director")
    w.join(0, "cto", function="technical", seniority="c_level")
    for day in (*range(0, 50, 7), 55):  # weekly engagement until 45 days before "now"
        for sid in ("marketing-manager", "ops-director", "cto"):
            w.content(day, sid, "like")
    w.role(today - 42, "marketing-manager", "promoted", function="executive",
           seniority="c_level", buying_role="champion", title="CMO", event_id="promoted-cmo")
    for day in range(56, today + 1, 7):  # the ads keep running, nobody clicks
        w.impression(day, "cto")
    w.advance_to(today)

    change = w.one("key_contact_changed")
    assert (change.severity, change.stakeholder_id) == ("high", "marketing-manager")
    assert change.occurred_at == at(58)
    assert change.evidence["event_ids"] == ["promoted-cmo"]
    assert (change.evidence["previous_title"], change.evidence["new_title"]) == (
        "Marketing Manager", "CMO")
    assert change.evidence["role"] == "champion"
    # the engagement fell away too: 27 points in the last 30 days against 45 before
    drop = w.of("engagement_drop")[0]
    assert (drop.severity, drop.occurred_at) == ("medium", at(65))
    assert (drop.evidence["score_30d"], drop.evidence["score_prior_30d"]) == (27, 45)
    # 45 days of silence is not yet the 60-day silence; renewal is still 120 days out
    assert w.of("engagement_silence") == []
    assert w.of("renewal_at_risk") == []
    assert w.of("champion_left") == []

    # event time moves on: silence at 60 days (day 115), renewal within 90 days (day 130)
    w.advance_to(renewal - 90)
    silence = w.one("engagement_silence")
    assert (silence.severity, silence.occurred_at) == ("high", at(55 + 60))
    renewal_risk = w.one("renewal_at_risk")
    assert (renewal_risk.severity, renewal_risk.is_alert) == ("critical", True)
    assert renewal_risk.occurred_at == at(renewal - 90)
    assert renewal_risk.evidence["renewal_in_days"] == 90
    assert renewal_risk.evidence["reasons"] == ["no engagement for 75 days"]
    assert w.tier == "at_risk"
    assert w.tier_changes[-1].tier == "at_risk"
    # the only good news came with the first week's engagement
    assert [(s.type, s.occurred_at) for s in w.signals if s.category == "expansion"] == [
        ("new_stakeholder_engaged", at(0))] * 3 + [("multi_threaded", at(0))]


def test_greengrid_solutions_new_cfo_never_exposed_until_the_ads_reach_them() -> None:
    """14 months into the programme the VP Marketing champion is still engaged, but a CFO who
    joined 6 months ago has never seen an ad. No champion alarm; once person-level ads reach
    and engage the CFO, the team hears about a new, senior thread."""
    w = World(account_id="greengrid-solutions")
    w.profile(0, name="GreenGrid Solutions", tier=2, renewal_day=500,
              champion_ids=("vp-marketing",))
    w.join(0, "vp-marketing", function="commercial", seniority="vp", title="VP Marketing")
    w.join(0, "it-lead", function="technical", seniority="director")
    cfo_joins = 425 - 182  # 6 months before "now", day 425 (14 months in)
    for day in range(0, 426, 10):
        if day == cfo_joins - 3:
            w.join(cfo_joins, "cfo", function="financial", seniority="c_level", title="CFO")
        w.impression(day, "vp-marketing")
        w.content(day, "vp-marketing", "like")
        if day % 30 == 0:
            w.reply(day, "it-lead", "reply")
    w.advance_to(425)

    assert not [s for s in w.signals if s.type in CHAMPION_SIGNALS]
    assert not [s for s in w.signals if s.stakeholder_id == "cfo"]
    assert w.state is not None
    assert w.state.stakeholders["cfo"].first_reached is None

    w.impression(426, "cfo")  # exposure: reach, not engagement
    assert not [s for s in w.signals if s.stakeholder_id == "cfo"]
    w.impression(433, "cfo", clicked=True, event_id="cfo-click")
    found = [s for s in w.signals if s.stakeholder_id == "cfo"]
    assert [s.type for s in found] == ["new_stakeholder_engaged"]
    s = found[0]
    assert (s.severity, s.category, s.occurred_at) == ("high", "expansion", at(433))
    assert s.evidence["event_ids"] == ["cfo-click"]
    assert (s.evidence["function"], s.evidence["seniority"], s.evidence["title"]) == (
        "financial", "c_level", "CFO")
    assert s.evidence["previous_engagement_at"] is None


def test_champion_leaves_and_no_successor_is_reached_within_30_days() -> None:
    w = World(account_id="northwind")
    w.profile(0, champion_ids=("champ",), renewal_day=300)
    w.join(0, "champ", function="commercial", seniority="director", title="Head of Marketing")
    w.join(0, "analyst", function="technical", seniority="individual")
    for day in range(0, 20, 5):
        w.reply(day, "champ")
        w.content(day, "analyst", "view")
    w.leave(20, "champ", event_id="champ-left", title="Head of Marketing")
    w.join(25, "new-head", function="commercial", seniority="director", buying_role="unknown")
    for day in range(21, 60, 5):
        w.content(day, "analyst", "view")  # the account stays warm: no silence signals
    w.advance_to(60)

    churn = [s for s in w.signals if s.category == "churn" and s.type in CHAMPION_SIGNALS]
    assert [s.type for s in churn] == ["champion_left", "succession_overdue"]
    left, overdue = churn
    assert (left.severity, left.is_alert, left.stakeholder_id) == ("critical", True, "champ")
    assert left.occurred_at == at(20)
    assert left.evidence["event_ids"] == ["champ-left"]
    assert left.evidence["renewal_in_days"] == 280
    assert (overdue.severity, overdue.is_alert, overdue.stakeholder_id) == ("high", True, "champ")
    assert overdue.occurred_at == at(50)
    assert overdue.evidence["joined_since"] == ["new-head"]
    assert overdue.evidence["event_ids"] == ["champ-left"]
    # at risk from the departure on, for 30 days after the last serious signal
    at_risk = [t for t in w.tier_changes if t.tier == "at_risk"]
    assert at_risk[0].occurred_at == at(20)
    assert "champion_left in the last 30 days" in at_risk[0].reasons
    assert w.tier == "at_risk"


def test_buying_committee_warms_up_and_the_account_becomes_expansion_ready() -> None:
    w = World(account_id="helios")
    w.profile(0, champion_ids=("champ",), renewal_day=300)
    w.join(0, "champ", function="commercial", seniority="director", title="Marketing Director")
    w.join(0, "cfo", function="financial", seniority="c_level", title="CFO")
    w.join(0, "ops", function="operations", seniority="manager", title="Ops Lead")
    assert w.tier == "stable"

    w.content(10, "cfo", "like", event_id="cfo-like")
    w.reply(11, "ops", "positive_reply", event_id="ops-reply")
    w.content(12, "champ", "share", public=True, event_id="champ-share")
    w.content(13, "cfo", "pricing_page_visit", event_id="cfo-pricing")

    assert [(s.type, s.stakeholder_id, s.severity) for s in w.signals] == [
        ("new_stakeholder_engaged", "cfo", "high"),
        ("new_stakeholder_engaged", "ops", "high"),
        ("new_stakeholder_engaged", "champ", "medium"),
        ("champion_advocacy", "champ", "medium"),
        ("multi_threaded", None, "low"),
        ("reference_candidate", None, "medium"),
        ("pricing_page_visit", "cfo", "high"),
    ]
    assert all(s.category == "expansion" for s in w.signals)
    advocacy = w.one("champion_advocacy")
    assert advocacy.evidence["event_ids"] == ["champ-share"]
    assert advocacy.occurred_at == at(12)
    multi = w.one("multi_threaded")
    assert multi.evidence["functions"] == ["commercial", "financial", "operations"]
    assert w.one("reference_candidate").evidence["public_champions"] == ["champ"]
    pricing = w.one("pricing_page_visit")
    assert (pricing.occurred_at, pricing.evidence["event_ids"]) == (at(13), ["cfo-pricing"])

    assert tiers(w) == [(None, "stable"), ("stable", "expansion_ready")]
    ready = w.tier_changes[-1]
    assert ready.occurred_at == at(12)
    assert "champion engaged: champ" in ready.reasons


def test_tier_one_account_whose_ads_stopped_has_a_continuity_gap() -> None:
    w = World(account_id="tier-one")
    w.profile(0, tier=1)
    for day in range(0, 41, 5):
        w.impression(day, "a")
    for day in range(0, 90, 3):  # still engaged: only the advertising stopped
        w.reply(day, "a", "reply")
        w.content(day, "b", "view")
    w.advance_to(90)
    s = w.one("continuity_gap")
    assert (s.severity, s.category) == ("medium", "churn")
    assert s.occurred_at == at(70)  # 30 days after the last impression on day 40
    assert s.evidence["last_exposed_at"] == at(40).timestamp()
    assert w.of("engagement_silence") == []


def test_an_account_where_only_one_person_engages_for_90_days_is_single_threaded() -> None:
    w = World(account_id="one-thread")
    w.profile(0, tier=2)
    w.join(0, "champ", function="commercial", seniority="manager", buying_role="champion")
    w.join(0, "cfo", function="financial", seniority="c_level")
    w.join(0, "it", function="technical", seniority="director")
    for day in range(0, 100, 7):
        w.reply(day, "champ", "reply")
        w.impression(day, "cfo")  # exposure only
    w.advance_to(100)
    s = w.one("single_threaded")
    assert (s.severity, s.occurred_at) == ("medium", at(90))
    assert s.evidence["engaged_stakeholders"] == ["champ"]
    assert s.evidence["roster"] == 3
    assert w.of("engagement_silence") == []
