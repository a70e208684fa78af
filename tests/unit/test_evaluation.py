"""``radar evaluate``: precision, recall and lead time per signal type, computed by hand.

The world below has four accounts over a year. a1 churns on day 200, a2 on day 300, a3
expands on day 100; champions leave a1 (day 50), a2 (day 120) and a3 (day 10). Every expected
figure is worked out in the comments next to it.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.labels import LABEL, ChampionLeftLabel, Label
from schemas.signals import CHURN_TYPES, EXPANSION_TYPES, Signal
from streams.settings import Settings, load_settings
from tools.evaluate import (
    CHART_FILE,
    REPORT_FILE,
    LabelsError,
    read_labels,
    render_markdown,
    render_text,
    run_evaluation,
    signals_query,
    write_chart,
)
from tools.evaluation import (
    SIGNAL_TYPES,
    EvaluationReport,
    SignalRecord,
    TypeResult,
    evaluate,
    percentile,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def day(n: float) -> datetime:
    return START + timedelta(days=n)


def label_lines() -> list[dict[str, Any]]:
    def account(account_id: str, tier: int, trajectory: str) -> dict[str, Any]:
        return {"kind": "account", "account_id": account_id, "name": account_id.upper(),
                "tier": tier, "sector": "energy", "arr": 100000.0, "trajectory": trajectory}

    return [
        {"kind": "world", "seed": 7, "accounts": 4, "days": 365,
         "start": day(0).isoformat(), "end": day(365).isoformat()},
        account("a1", 1, "churning"),
        account("a2", 2, "churning"),
        account("a3", 1, "expanding"),
        account("a4", 3, "healthy"),
        {"kind": "churn", "account_id": "a1", "at": day(200).isoformat()},
        {"kind": "churn", "account_id": "a2", "at": day(300).isoformat()},
        {"kind": "expansion", "account_id": "a3", "at": day(100).isoformat()},
        {"kind": "champion_left", "account_id": "a1", "stakeholder_id": "p1",
         "at": day(50).isoformat()},
        {"kind": "champion_left", "account_id": "a2", "stakeholder_id": "p2",
         "at": day(120).isoformat()},
        {"kind": "champion_left", "account_id": "a3", "stakeholder_id": "p3",
         "at": day(10).isoformat()},
    ]


def labels() -> list[Label]:
    return [LABEL.validate_python(x) for x in label_lines()]


_SEVERITY = {"engagement_silence": "high", "engagement_drop": "medium",
             "renewal_at_risk": "critical", "champion_left": "critical",
             "pricing_page_visit": "high"}


def sig(signal_type: str, account_id: str, at: datetime, stakeholder_id: str | None = None,
        rule_version: str = "v1") -> SignalRecord:
    signal_id = f"{signal_type}-{account_id}-{stakeholder_id}-{at.isoformat()}"
    return SignalRecord(signal_id, account_id, stakeholder_id, signal_type,
                        _SEVERITY.get(signal_type, "medium"), at, rule_version)


def signals() -> list[SignalRecord]:
    return [
        sig("engagement_silence", "a1", day(150)),  # 50 days before a1's churn: TP
        sig("engagement_silence", "a1", day(190)),  # 10 days before: TP
        sig("engagement_silence", "a1", day(210)),  # after the churn: not a TP
        sig("engagement_silence", "a2", day(100)),  # a2 churns 200 days later, beyond 180: not
        sig("engagement_silence", "a4", day(100)),  # a4 never churns: not
        sig("engagement_drop", "a1", day(20)),  # exactly 180 days before: TP (inclusive)
        sig("engagement_drop", "a2", day(290)),  # 10 days before: TP
        sig("renewal_at_risk", "a2", day(300)),  # at the churn itself: predicts nothing
        sig("pricing_page_visit", "a3", day(90)),  # 10 days before a3's expansion: TP
        sig("pricing_page_visit", "a3", day(40)),  # 60 days before: TP, the first one
        sig("pricing_page_visit", "a1", day(90)),  # a1 never expands: not
        sig("champion_left", "a1", day(50) + timedelta(hours=2), "p1"),  # matches a1/p1
        sig("champion_left", "a2", day(120) + timedelta(hours=12), "p2"),  # matches a2/p2
        sig("champion_left", "a2", day(120), "p-other"),  # another person: no match
        sig("champion_left", "a2", day(125), "p2"),  # five days off: no match
        # a3/p3's departure on day 10 has no signal: a miss
        sig("engagement_silence", "zz", day(100)),  # an account the labels do not name
        sig("mystery_signal", "a1", day(100)),  # a type evaluation does not know
    ]


@pytest.fixture(scope="module")
def report() -> EvaluationReport:
    return evaluate(signals(), labels(), horizon_days=180)


def figures(row: TypeResult) -> tuple[Any, ...]:
    return (row.signals, row.true_positives, row.precision, row.outcomes, row.detected,
            row.recall, row.lead_times_days)


# -- per signal type ---------------------------------------------------------------------------

def test_a_signal_after_the_outcome_or_beyond_the_horizon_is_not_a_true_positive(
    report: EvaluationReport,
) -> None:
    # 5 signals, 2 true positives; a1's churn is caught (first signal day 150: 50 days ahead),
    # a2's is not (its only signal is 200 days before)
    assert figures(report.result("engagement_silence")) == (5, 2, 0.4, 2, 1, 0.5, (50.0,))
    row = report.result("engagement_silence")
    assert (row.lead_median_days, row.lead_p90_days) == (50.0, 50.0)


def test_the_horizon_includes_its_last_day(report: EvaluationReport) -> None:
    row = report.result("engagement_drop")
    assert figures(row) == (2, 2, 1.0, 2, 2, 1.0, (10.0, 180.0))
    assert row.lead_median_days == 95.0
    assert row.lead_p90_days == 180.0  # nearest rank: ceil(0.9 * 2) = 2nd of 2


def test_a_signal_at_the_moment_of_the_outcome_predicts_nothing(report: EvaluationReport) -> None:
    row = report.result("renewal_at_risk")
    assert figures(row) == (1, 0, 0.0, 2, 0, 0.0, ())
    assert (row.lead_median_days, row.lead_p90_days) == (None, None)


def test_expansion_signals_are_judged_against_expansions_from_their_first_signal(
    report: EvaluationReport,
) -> None:
    row = report.result("pricing_page_visit")
    assert figures(row) == (3, 2, pytest.approx(2 / 3), 1, 1, 1.0, (60.0,))


def test_champion_left_is_matched_by_account_stakeholder_and_a_one_day_window(
    report: EvaluationReport,
) -> None:
    row = report.result("champion_left")
    # 4 signals, 2 match a departure; 3 departures, 2 caught
    assert (row.signals, row.true_positives, row.outcomes, row.detected) == (4, 2, 3, 2)
    assert row.precision == 0.5
    assert row.recall == pytest.approx(2 / 3)
    assert row.matched_against == "champion_left"
    assert {(s.stakeholder_id, s.occurred_at) for s in report.unmatched_champion_left} == {
        ("p-other", day(120)), ("p2", day(125))}


def test_a_missed_departure_lowers_recall_and_is_named(report: EvaluationReport) -> None:
    assert not report.champion_left_complete
    assert report.missed_departures == (
        ChampionLeftLabel(kind="champion_left", account_id="a3", stakeholder_id="p3", at=day(10)),
    )


def test_every_departure_caught_is_full_recall() -> None:
    departures = [x for x in labels() if isinstance(x, ChampionLeftLabel)]
    caught = [sig("champion_left", d.account_id, d.at - timedelta(hours=23), d.stakeholder_id)
              for d in departures]
    result = evaluate(caught, labels())
    assert result.champion_left_complete
    assert (result.result("champion_left").recall, result.result("champion_left").precision) == \
        (1.0, 1.0)


def test_types_without_signals_report_n_a_instead_of_failing(report: EvaluationReport) -> None:
    row = report.result("succession_overdue")
    assert figures(row) == (0, 0, None, 2, 0, 0.0, ())
    assert "| `succession_overdue` | churn | 0 | 0 | n/a | 2 | 0 | 0.0% | n/a | n/a |" in \
        render_markdown(report)


def test_no_outcomes_and_no_signals_is_all_n_a() -> None:
    world_only = [x for x in labels() if x.kind == "world"]
    empty = evaluate([], world_only)
    for row in empty.types + empty.rollups:
        assert (row.precision, row.recall, row.lead_median_days, row.lead_p90_days) == \
            (None, None, None, None)
    assert empty.champion_left_complete
    assert "n/a" in render_text(empty)


def test_every_signal_type_gets_a_row_in_the_spec_order(report: EvaluationReport) -> None:
    assert [r.name for r in report.types] == list(CHURN_TYPES + EXPANSION_TYPES)
    assert len(report.types) == 14
    assert {r.category for r in report.types if r.name in CHURN_TYPES} == {"churn"}
    assert {r.category for r in report.types if r.name in EXPANSION_TYPES} == {"expansion"}


def test_signals_of_unlabelled_accounts_and_unknown_types_are_ignored_and_counted(
    report: EvaluationReport,
) -> None:
    assert (report.signals_outside_labels, report.signals_unknown_type) == (1, 1)
    assert report.signals_evaluated == len(signals()) - 2


def test_the_signals_whose_horizon_outlives_the_labelled_period_are_counted(
    report: EvaluationReport,
) -> None:
    # after day 365 - 180 = 185: silence on 190 and 210, drop on 290, renewal on 300
    assert report.signals_after_labelled_end == 4


def test_the_signals_of_accounts_that_already_churned_are_counted(
    report: EvaluationReport,
) -> None:
    # a1 churned on day 200: silence on 210; a2 on day 300: none after (renewal is at 300)
    assert report.signals_after_churn == 1


# -- rollups ------------------------------------------------------------------------------------

def test_any_churn_signal_rolls_up_every_churn_type(report: EvaluationReport) -> None:
    any_churn = report.rollups[0]
    assert any_churn.name == "any churn signal"
    # 5 silence + 2 drop + 1 renewal + 4 champion_left; true positives: silence 2, drop 2 and
    # all four champion_left signals (each is 175..180 days before its account's churn)
    assert (any_churn.signals, any_churn.true_positives) == (12, 8)
    # a1: the drop on day 20 is first (180 days); a2: the champion signal on day 120 (180)
    assert (any_churn.detected, any_churn.lead_times_days) == (2, (180.0, 180.0))


def test_the_at_risk_grade_rollup_keeps_high_and_critical_churn_signals(
    report: EvaluationReport,
) -> None:
    severe = report.rollups[1]
    assert severe.name == "any high/critical churn signal"
    assert (severe.signals, severe.true_positives) == (10, 6)  # no medium engagement_drop
    # a1: champion_left at day 50 + 2 h is its first; a2: champion_left on day 120
    assert severe.lead_times_days == (pytest.approx(150 - 2 / 24), 180.0)


def test_any_expansion_signal_and_the_tier_rollups(report: EvaluationReport) -> None:
    any_expansion = report.rollups[2]
    assert figures(any_expansion) == (3, 2, pytest.approx(2 / 3), 1, 1, 1.0, (60.0,))
    by_name = {r.name: r for r in report.tier_rollups}
    assert len(report.tier_rollups) == 9  # three rollups for each of tiers 1, 2, 3
    tier2 = by_name["any churn signal, tier 2"]  # a2 only: silence, drop, renewal, 3 champion
    assert (tier2.signals, tier2.true_positives, tier2.outcomes, tier2.detected) == (6, 4, 1, 1)
    assert by_name["any expansion signal, tier 3"].recall is None  # a4 never expands


def test_base_rates_come_from_the_account_labels(report: EvaluationReport) -> None:
    assert (report.accounts, report.churned_accounts, report.expanded_accounts) == (4, 2, 1)
    assert "50.0% of 4 accounts churned" in render_markdown(report)


def test_without_account_labels_every_signal_is_judged() -> None:
    no_accounts = [x for x in labels() if x.kind != "account"]
    result = evaluate(signals(), no_accounts)
    assert result.signals_outside_labels == 0
    assert result.result("engagement_silence").signals == 6  # zz's signal counts too
    assert result.tier_rollups == ()


def test_a_shorter_horizon_drops_the_early_signals(report: EvaluationReport) -> None:
    short = evaluate(signals(), labels(), horizon_days=30)
    assert figures(short.result("engagement_drop")) == (2, 1, 0.5, 2, 1, 0.5, (10.0,))
    with pytest.raises(ValueError, match="horizon_days"):
        evaluate(signals(), labels(), horizon_days=0)


def test_percentile_is_the_nearest_rank() -> None:
    assert percentile([], 90) is None
    assert percentile([5.0], 90) == 5.0
    assert percentile([float(x) for x in range(1, 11)], 90) == 9.0
    assert percentile([float(x) for x in range(1, 21)], 90) == 18.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_mixed_rule_versions_are_warned_about() -> None:
    mixed = evaluate([sig("engagement_silence", "a1", day(150), rule_version="v1"),
                      sig("engagement_silence", "a1", day(150), rule_version="v2")], labels())
    assert mixed.rule_versions == ("v1", "v2")
    assert "rule versions are mixed" in render_text(mixed)
    assert "rule versions are mixed" in render_markdown(mixed)


# -- the report files ---------------------------------------------------------------------------

def test_the_markdown_report_has_every_type_the_definitions_and_the_misses(
    report: EvaluationReport, tmp_path: Path,
) -> None:
    text = render_markdown(report, labels_path=tmp_path / "labels.jsonl")
    for signal_type in SIGNAL_TYPES:
        assert f"| `{signal_type}` |" in text, signal_type
    assert "| type | category | signals | TP | precision |" in text
    assert "| `engagement_silence` | churn | 5 | 2 | 40.0% | 2 | 1 | 50.0% | 50.0 | 50.0 |" in text
    assert "| `champion_left` | churn | 4 | 2 | 50.0% | 3 | 2 | 66.7% | - | - |" in text
    assert "## Definitions" in text and "Precision" in text and "Lead time" in text
    assert "MISSED: champion_left caught 2 of 3" in text
    assert "| `a3` | `p3` | 2026-01-11T00:00:00+00:00 |" in text
    assert "any high/critical churn signal" in text
    assert f"]({CHART_FILE})" in text


def test_the_text_table_lists_every_type_and_flags_a_miss(report: EvaluationReport) -> None:
    text = render_text(report)
    for signal_type in SIGNAL_TYPES:
        assert signal_type in text
    assert "MISSED: champion_left caught 2 of 3 champion departures; 1 fired no signal" in text
    complete = evaluate([], [x for x in labels() if x.kind == "world"])
    assert "caught all 0 champion departures" in render_text(complete)


def test_the_chart_is_a_real_png(report: EvaluationReport, tmp_path: Path) -> None:
    path = tmp_path / CHART_FILE
    write_chart(report, path)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000


def test_the_chart_copes_with_no_lead_times(tmp_path: Path) -> None:
    path = tmp_path / CHART_FILE
    write_chart(evaluate([], labels()), path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)


# -- reading the labels --------------------------------------------------------------------------

def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_labels_are_read_line_by_line_skipping_blank_lines(tmp_path: Path) -> None:
    lines = [json.dumps(x) for x in label_lines()]
    path = write_lines(tmp_path / "labels.jsonl", [lines[0], "", *lines[1:]])
    assert read_labels(path) == labels()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        pytest.param('{"kind": "churn", "account_id": "a1"}', r"line 2: not a valid label "
                     r"\(churn\.at: Field required\)", id="missing-field"),
        pytest.param("not json", r"line 2: not a valid label \(Invalid JSON", id="not-json"),
        pytest.param('{"kind": "upsell", "account_id": "a1"}', r"line 2: .*'upsell'",
                     id="unknown-kind"),
        pytest.param('{"kind": "churn", "account_id": "a1", "at": "2026-06-01T00:00:00"}',
                     r"line 2: .*timezone", id="naive-timestamp"),
    ],
)
def test_a_bad_labels_line_names_the_file_and_line(tmp_path: Path, bad: str, message: str) -> None:
    path = write_lines(tmp_path / "labels.jsonl", [json.dumps(label_lines()[0]), bad])
    with pytest.raises(LabelsError, match=rf"labels\.jsonl, {message}"):
        read_labels(path)


def test_an_empty_or_missing_labels_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LabelsError, match="holds no labels"):
        read_labels(write_lines(tmp_path / "empty.jsonl", [""]))
    with pytest.raises(LabelsError, match="cannot read the labels file .*missing.jsonl"):
        read_labels(tmp_path / "missing.jsonl")


def test_the_cli_reports_a_bad_labels_line_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from streams.cli import main

    for name in [n for n in os.environ if n.startswith("RADAR_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RADAR_LOCAL_DIR", str(tmp_path))
    path = write_lines(tmp_path / "labels.jsonl", [json.dumps(label_lines()[0]), "{"])
    assert main(["evaluate", "--labels", str(path)]) == 2
    assert "labels.jsonl, line 2: not a valid label" in capsys.readouterr().err
    assert main(["evaluate", "--labels", str(path), "--horizon-days", "0"]) == 2


# -- end to end against embedded ClickHouse -------------------------------------------------------

def test_signals_query_counts_open_signals_and_filters_one_rule_version_safely() -> None:
    assert "WHERE status = 'open'\n" in signals_query()
    assert "rule_version" not in signals_query().split("FROM")[1]
    assert "WHERE status = 'open' AND rule_version = 'it\\'s'" in signals_query("it's")


def _stored(record: SignalRecord, detected_at: datetime) -> Signal:
    return Signal(signal_id=record.signal_id, account_id=record.account_id,
                  stakeholder_id=record.stakeholder_id, type=record.type,
                  category="churn" if record.type in CHURN_TYPES else "expansion",
                  severity=record.severity, occurred_at=record.occurred_at,  # type: ignore[arg-type]
                  detected_at=detected_at, rule_version=record.rule_version,
                  evidence={"event_ids": ["e1"]})


@pytest.fixture
def chdb_settings(tmp_path: Path) -> Settings:
    """An embedded database holding :func:`signals` (one stored twice, one of another rules
    version), closed again so ``run_evaluation`` can open it."""
    from sinks.clickhouse import init_schema, open_client
    from sinks.rows import SIGNAL_COLUMNS, signal_row

    settings = load_settings({"RADAR_LOCAL_DIR": str(tmp_path),
                              "RADAR_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'clickhouse'}"})
    records = [r for r in signals() if r.type != "mystery_signal"]
    now = day(400)
    rows = [signal_row(_stored(r, now), now) for r in records]
    rows.append(signal_row(_stored(records[0], now), now + timedelta(seconds=1)))  # redelivered
    other = sig("engagement_silence", "a4", day(10), rule_version="v0")
    rows.append(signal_row(_stored(other, now), now))
    client = open_client(settings.dsn)
    try:
        init_schema(client)
        client.insert("signals", rows, column_names=list(SIGNAL_COLUMNS))
    finally:
        client.close()
    return settings


def test_run_evaluation_reads_embedded_clickhouse_and_writes_the_report(
    chdb_settings: Settings, tmp_path: Path,
) -> None:
    labels_path = write_lines(tmp_path / "labels.jsonl", [json.dumps(x) for x in label_lines()])
    out = tmp_path / "reports"

    result = run_evaluation(chdb_settings, labels_path, out, 180, rule_version="v1")

    expected = evaluate([r for r in signals() if r.type != "mystery_signal"], labels(), 180)
    assert result.types == expected.types  # the redelivered duplicate counted once
    assert result.rollups == expected.rollups
    assert result.missed_departures == expected.missed_departures
    assert result.rule_versions == ("v1",)
    assert "| `engagement_silence` | churn | 5 | 2 | 40.0% |" in (out / REPORT_FILE).read_text()
    assert (out / CHART_FILE).read_bytes().startswith(PNG_SIGNATURE)

    everything = run_evaluation(chdb_settings, labels_path, out, 180)
    assert everything.rule_versions == ("v0", "v1")
    assert everything.result("engagement_silence").signals == 6


def test_radar_evaluate_prints_the_table_and_where_the_report_is(
    chdb_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from streams.cli import main

    for name in [n for n in os.environ if n.startswith("RADAR_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RADAR_LOCAL_DIR", str(chdb_settings.local))
    monkeypatch.setenv("RADAR_CLICKHOUSE_DSN", chdb_settings.dsn)
    labels_path = write_lines(tmp_path / "labels.jsonl", [json.dumps(x) for x in label_lines()])

    assert main(["evaluate", "--labels", str(labels_path), "--rule-version", "v1"]) == 0

    printed = capsys.readouterr().out
    assert "engagement_silence" in printed and "MISSED: champion_left" in printed
    assert f"report: {tmp_path / 'reports' / REPORT_FILE}" in printed
    assert (tmp_path / "reports" / CHART_FILE).exists()
