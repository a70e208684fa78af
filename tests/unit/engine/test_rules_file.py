"""The rules file: SPEC defaults, partial overrides, and refusals that name the offending key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from world import World, at

from processors.rules import DEFAULT_RULES, Rules, RulesError, parse_rules


def test_default_weights_are_the_spec_weights() -> None:
    assert DEFAULT_RULES.weights.model_dump() == {
        "impression": 1, "ad_click": 5, "view": 2, "like": 3, "comment": 5, "save": 4,
        "share": 8, "website_visit": 3, "pricing_page_visit": 10, "reply": 8,
        "positive_reply": 12, "meeting_booked": 20, "not_interested": 0, "unsubscribe": 0,
    }


def test_default_thresholds_are_the_spec_thresholds() -> None:
    r = DEFAULT_RULES
    assert r.engagement.allowed_lateness_days == 7
    churn, expansion, tiers = r.churn, r.expansion, r.tiers
    assert churn.engagement_silence.days == 60
    assert (churn.engagement_drop.drop_pct, churn.engagement_drop.min_prior_points) == (40, 20)
    st = churn.single_threaded
    assert (st.min_engaged, st.window_days, st.min_roster) == (2, 90, 2)
    rr = churn.renewal_at_risk
    assert (rr.within_days, rr.silence_days, rr.min_engaged, rr.engaged_window_days,
            rr.champion_left_days) == (90, 45, 3, 90, 90)
    assert (churn.continuity_gap.days, churn.continuity_gap.tiers) == (30, [1])
    assert churn.succession_overdue.days == 30
    surge = expansion.engagement_surge
    assert (surge.rise_pct, surge.min_prior_points) == (30, 20)
    nse = expansion.new_stakeholder_engaged
    assert nse.quiet_days == 180
    assert sorted(nse.high_functions) == ["financial", "operations"]
    assert sorted(nse.high_seniorities) == ["c_level", "vp"]
    mt = expansion.multi_threaded
    assert (mt.min_stakeholders, mt.min_functions, mt.window_days) == (3, 2, 30)
    rc = expansion.reference_candidate
    assert (rc.min_engaged, rc.window_days, rc.champion_public_days) == (3, 30, 30)
    assert (tiers.at_risk_signal_days, tiers.at_risk_silence_days, tiers.expansion_min_engaged,
            tiers.expansion_window_days) == (30, 60, 3, 30)


def test_an_empty_file_is_the_defaults() -> None:
    assert parse_rules("") == DEFAULT_RULES
    assert Rules() == DEFAULT_RULES


PARTIAL = """
version = "2026-02-acme"

[weights]
share = 10

[churn.engagement_silence]
days = 45

[expansion.new_stakeholder_engaged]
high_functions = ["financial"]
"""


def test_a_partial_file_overrides_only_its_keys() -> None:
    rules = parse_rules(PARTIAL)
    assert rules.version == "2026-02-acme"
    assert rules.weights.share == 10
    assert rules.churn.engagement_silence.days == 45
    assert rules.expansion.new_stakeholder_engaged.high_functions == ["financial"]
    # everything else keeps its default
    expected = DEFAULT_RULES.model_dump()
    expected["version"] = "2026-02-acme"
    expected["weights"]["share"] = 10
    expected["churn"]["engagement_silence"]["days"] = 45
    expected["expansion"]["new_stakeholder_engaged"]["high_functions"] = ["financial"]
    assert rules.model_dump() == expected


def test_the_parsed_rules_drive_the_engine_and_stamp_their_version() -> None:
    w = World(rules=parse_rules(PARTIAL))
    w.profile(0)
    w.content(1, "a", "share")
    w.advance_to(46)
    assert w.of("engagement_silence") == []  # judged, waiting for the grace (24 h)
    w.advance_to(47)
    silence = w.one("engagement_silence")
    assert silence.occurred_at == at(46)  # the deadline itself
    assert silence.rule_version == "2026-02-acme"
    assert silence.evidence["threshold_days"] == 45
    assert w.state is not None and sum(w.state.score_days.values()) == 10


@pytest.mark.parametrize(("text", "key", "problem"), [
    ("[churn.engagement_silence]\nday = 45\n", "churn.engagement_silence.day", "unknown key"),
    ("[churn.silence]\ndays = 45\n", "churn.silence", "unknown key"),
    ("colour = 'red'\n", "colour", "unknown key"),
    ('[churn.engagement_silence]\ndays = "60"\n', "churn.engagement_silence.days", "'60'"),
    ('[weights]\nshare = "8"\n', "weights.share", "'8'"),
    ("[churn.engagement_silence]\ndays = -5\n", "churn.engagement_silence.days", "-5"),
    ("[churn.succession_overdue]\ndays = 0\n", "churn.succession_overdue.days", "0"),
    ("[churn.engagement_drop]\ndrop_pct = -10\n", "churn.engagement_drop.drop_pct", "-10"),
    ("[weights]\nmeeting_booked = -1\n", "weights.meeting_booked", "-1"),
    ("[engagement]\nallowed_lateness_days = -1\n", "engagement.allowed_lateness_days", "-1"),
    ("[churn.continuity_gap]\ntiers = [4]\n", "churn.continuity_gap.tiers", "4"),
    ('version = ""\n', "version", "''"),
])
def test_a_bad_value_is_refused_naming_the_key(text: str, key: str, problem: str) -> None:
    with pytest.raises(RulesError) as refused:
        parse_rules(text, source="rules.toml")
    message = str(refused.value)
    assert message.startswith("rules.toml refused:")
    assert key in message
    assert problem in message


def test_invalid_toml_is_refused() -> None:
    with pytest.raises(RulesError, match=r"rules\.toml is not valid TOML"):
        parse_rules("[churn.engagement_silence\ndays = 45\n", source="rules.toml")


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(RulesError) as refused:
        parse_rules("[weights]\nshare = 'x'\nlike = -3\n")
    assert "weights.share" in str(refused.value)
    assert "weights.like" in str(refused.value)


def test_rules_are_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        DEFAULT_RULES.churn.engagement_silence.days = 1  # type: ignore[misc]


def test_the_shipped_rules_file_lists_every_key_with_its_default() -> None:
    path = Path(__file__).resolve().parents[3] / "rules.toml"
    text = path.read_text(encoding="utf-8")
    assert parse_rules(text, source=str(path)) == DEFAULT_RULES

    def keys(model: dict[str, object], prefix: str = "") -> set[str]:
        found: set[str] = set()
        for name, value in model.items():
            found |= keys(value, f"{prefix}{name}.") if isinstance(value, dict) else {
                prefix + name}
        return found

    assert keys(tomllib.loads(text)) == keys(DEFAULT_RULES.model_dump())
