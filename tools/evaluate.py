"""``radar evaluate``: score the stored signals against the labels ``radar simulate`` wrote.

Reads the labels file and the ``signals`` table (through the running worker when it holds the
embedded database), hands both to :func:`tools.evaluation.evaluate`, and writes
``evaluation.md`` and ``evaluation.png`` to the report directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import ValidationError

from schemas.labels import LABEL, Label
from sinks.clickhouse import sql_strings
from streams.query import run_query
from streams.settings import Settings
from tools.evaluation import (
    CHAMPION_MATCH_WINDOW,
    EvaluationReport,
    SignalRecord,
    TypeResult,
    evaluate,
)

REPORT_FILE = "evaluation.md"
CHART_FILE = "evaluation.png"
DEFAULT_HORIZON_DAYS = 180
_LISTED = 50  # missed departures / stray signals listed in the Markdown report
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SIGNALS_SQL = """
SELECT signal_id, account_id, stakeholder_id, type, severity,
       toUnixTimestamp64Milli(occurred_at) AS occurred_ms, rule_version
FROM signals FINAL
{where}
ORDER BY occurred_at, signal_id
"""


class LabelsError(ValueError):
    """The labels file cannot be read; the message names the file and line."""


def read_labels(path: Path) -> list[Label]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelsError(f"cannot read the labels file {path}: {exc}") from exc
    labels: list[Label] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            labels.append(LABEL.validate_json(line))
        except ValidationError as exc:
            problems = "; ".join(
                (f"{'.'.join(str(p) for p in e['loc'])}: " if e["loc"] else "") + e["msg"]
                for e in exc.errors()
            )
            raise LabelsError(f"{path}, line {number}: not a valid label ({problems})") from exc
    if not labels:
        raise LabelsError(f"{path} holds no labels (write it with `radar simulate --out ...`)")
    return labels


def signals_query(rule_version: str | None = None) -> str:
    # occurred_at as epoch milliseconds: the same integer whether the query runs here or
    # through the worker's JSON endpoint
    # withdrawn signals were premature: only the open ones are measured
    where = "WHERE status = 'open'" if rule_version is None else \
        f"WHERE status = 'open' AND rule_version = {sql_strings([rule_version])}"
    return SIGNALS_SQL.format(where=where).strip()


def read_signals(settings: Settings, rule_version: str | None = None) -> list[SignalRecord]:
    _, rows = run_query(settings, signals_query(rule_version))
    return [
        SignalRecord(
            signal_id=str(signal_id), account_id=str(account_id),
            stakeholder_id=None if stakeholder_id is None else str(stakeholder_id),
            type=str(signal_type), severity=str(severity),
            occurred_at=_EPOCH + timedelta(milliseconds=int(occurred_ms)),
            rule_version=str(version),
        )
        for signal_id, account_id, stakeholder_id, signal_type, severity, occurred_ms, version
        in rows
    ]


def run_evaluation(
    settings: Settings, labels_path: Path, out_dir: Path | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS, *, rule_version: str | None = None,
) -> EvaluationReport:
    """Evaluate, write ``evaluation.md`` and ``evaluation.png`` to ``out_dir`` (default
    ``.local/reports``), and return the report (render it with :func:`render_text`)."""
    labels = read_labels(labels_path)
    report = evaluate(read_signals(settings, rule_version), labels, horizon_days)
    out = out_dir if out_dir is not None else settings.local / "reports"
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_FILE).write_text(render_markdown(report, labels_path=labels_path), encoding="utf-8")
    write_chart(report, out / CHART_FILE)
    return report


# -- rendering -------------------------------------------------------------------------------

def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _days(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


_HEADER = ("type", "category", "signals", "TP", "precision", "outcomes", "caught", "recall",
           "lead median (d)", "lead p90 (d)")


def _cells(row: TypeResult) -> list[str]:
    lead = row.matched_against != "champion_left"  # detection, not prediction: no lead time
    return [
        row.name, row.category, str(row.signals), str(row.true_positives), _pct(row.precision),
        str(row.outcomes), str(row.detected), _pct(row.recall),
        _days(row.lead_median_days) if lead else "-", _days(row.lead_p90_days) if lead else "-",
    ]


def _champion_line(report: EvaluationReport) -> str:
    row = report.result("champion_left")
    if report.missed_departures:
        return (f"MISSED: champion_left caught {row.detected} of {report.departures} champion "
                f"departures; {len(report.missed_departures)} fired no signal")
    return f"champion_left caught all {report.departures} champion departures"


def render_text(report: EvaluationReport) -> str:
    """The summary table for a terminal: every signal type, then the rollups."""
    rows = [_cells(r) for r in report.types + report.rollups]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(_HEADER)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if i >= 2 else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths, strict=True))).rstrip()

    out = [line(_HEADER), line(["-" * w for w in widths])]
    out += [line(r) for r in rows[: len(report.types)]]
    out.append(line(["-" * w for w in widths]))
    out += [line(r) for r in rows[len(report.types):]]
    out.append("")
    out.append(f"horizon {report.horizon_days} days; {report.signals_evaluated} signals; "
               f"{report.churn_outcomes} churns, {report.expansion_outcomes} expansions, "
               f"{report.departures} champion departures")
    out.append(_champion_line(report))
    if len(report.rule_versions) > 1:
        out.append(f"WARNING: signals of {len(report.rule_versions)} rule versions are mixed "
                   f"({', '.join(report.rule_versions)}); pass --rule-version to pick one")
    return "\n".join(out)


def _markdown_table(rows: Sequence[TypeResult]) -> list[str]:
    out = ["| " + " | ".join(_HEADER) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * 8) + "|"]
    out += ["| " + " | ".join(f"`{c}`" if i == 0 and " " not in c else c
                              for i, c in enumerate(_cells(r))) + " |" for r in rows]
    return out


def _definitions(horizon_days: int) -> list[str]:
    window = CHAMPION_MATCH_WINDOW.days
    return [
        "## Definitions",
        "",
        f"- **True positive (churn types)**: the signal's account has a `churn` label later than "
        f"the signal and at most {horizon_days} days after it. Expansion types likewise with an "
        "`expansion` label.",
        "- **Precision** = true-positive signals / signals of that type.",
        "- **Recall** = outcomes of the type's category (churns or expansions) that at least one "
        f"signal of that type preceded within {horizon_days} days / all outcomes of that category.",
        "- **Lead time** = outcome time minus the earliest signal of that type inside the "
        "outcome's horizon, in days, over the caught outcomes: median, and the 90th percentile "
        "by nearest rank (the smallest lead time that at least 90% of caught outcomes reach).",
        "- **`champion_left`** detects a departure rather than predicting an outcome: a signal "
        "matches a `champion_left` label of the same account and stakeholder at most "
        f"{window} day apart. Recall = departures with a matching signal / all departures "
        "(100% in a correct pipeline); precision = matching signals / `champion_left` signals. "
        "It has no lead time.",
        "- **Rollups** judge every signal of a category against that category's outcomes "
        "(`champion_left` included); the high/critical churn rollup is the trigger of the "
        "`at_risk` tier.",
        "- Only accounts named by `account` labels are judged; signals of other accounts (an "
        "earlier run, the bundled sample) are ignored and counted below.",
    ]


def render_markdown(report: EvaluationReport, *, labels_path: Path | None = None) -> str:
    world = report.world
    out = ["# Signal quality", ""]
    source = f"`{labels_path}`" if labels_path is not None else "the labels"
    if world is not None:
        out.append(f"Labels: {source} (seed {world.seed}, {world.accounts} accounts, {world.days} "
                   f"days, {world.start:%Y-%m-%d} to {world.end:%Y-%m-%d}).  ")
    else:
        out.append(f"Labels: {source}.  ")
    versions = ", ".join(f"`{v}`" for v in report.rule_versions) or "none"
    out.append(f"Signals evaluated: {report.signals_evaluated} (rule version {versions}); "
               f"horizon {report.horizon_days} days.  ")
    base = ""
    if report.accounts:
        base = (f" Base rates: {report.churned_accounts / report.accounts:.1%} of "
                f"{report.accounts} accounts churned, "
                f"{report.expanded_accounts / report.accounts:.1%} expanded: a signal that "
                "fired at random would reach about that precision.")
    out.append(f"Outcomes: {report.churn_outcomes} churns, {report.expansion_outcomes} "
               f"expansions, {report.departures} champion departures.{base}")
    out.append("")
    if report.missed_departures:
        out.append(f"> **{_champion_line(report)}.** A correct pipeline catches every one; the "
                   "missed departures are listed below.")
    else:
        out.append(f"> {_champion_line(report)}.")
    if len(report.rule_versions) > 1:
        out += ["", f"> **Warning:** signals of {len(report.rule_versions)} rule versions are "
                "mixed, so one trigger can count more than once; evaluate one with "
                "`--rule-version`."]
    out += ["", "## Per signal type", "", *_markdown_table(report.types), "",
            "## Rollups", "", *_markdown_table(report.rollups), ""]
    if report.tier_rollups:
        out += ["### By account tier", "", *_markdown_table(report.tier_rollups), ""]
    out += [f"![precision, recall and lead time per signal type]({CHART_FILE})", ""]
    if report.missed_departures:
        out += ["## Missed champion departures", "", "| account | stakeholder | left at |",
                "|---|---|---|"]
        out += [f"| `{d.account_id}` | `{d.stakeholder_id}` | {d.at.isoformat()} |"
                for d in report.missed_departures[:_LISTED]]
        if len(report.missed_departures) > _LISTED:
            out.append(f"\n... and {len(report.missed_departures) - _LISTED} more")
        out.append("")
    if report.unmatched_champion_left:
        out += ["## `champion_left` signals that match no departure", "",
                "| account | stakeholder | occurred at | signal_id |", "|---|---|---|---|"]
        out += [f"| `{s.account_id}` | `{s.stakeholder_id}` | {s.occurred_at.isoformat()} | "
                f"`{s.signal_id}` |" for s in report.unmatched_champion_left[:_LISTED]]
        if len(report.unmatched_champion_left) > _LISTED:
            out.append(f"\n... and {len(report.unmatched_champion_left) - _LISTED} more")
        out.append("")
    out += [*_definitions(report.horizon_days), "", "## Caveats", ""]
    out.append(f"- Signals of accounts the labels do not name, ignored: "
               f"{report.signals_outside_labels}; of unknown types, ignored: "
               f"{report.signals_unknown_type}.")
    out.append(f"- {report.signals_after_churn} signals fired after their account had churned "
               "(the account stops engaging, so silence-type rules keep firing); they count as "
               "false positives.")
    if world is not None:
        out.append(f"- {report.signals_after_labelled_end} signals fired less than "
                   f"{report.horizon_days} days before the end of the labelled period; an "
                   "outcome after that end is unknown, so they count as false positives unless "
                   "an outcome fell inside it.")
    return "\n".join(out) + "\n"


def write_chart(report: EvaluationReport, path: Path) -> None:
    """Precision and recall per signal type, and the lead-time distribution of each."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = list(report.types + report.rollups)
    names = [r.name for r in rows]
    fig = Figure(figsize=(12, 11), layout="constrained")
    FigureCanvasAgg(fig)
    bars, leads = fig.subplots(2, 1, height_ratios=(3, 2))

    positions = list(range(len(rows)))
    height = 0.4
    precision = [r.precision or 0.0 for r in rows]
    recall = [r.recall or 0.0 for r in rows]
    bars.barh([p - height / 2 for p in positions], precision, height, label="precision",
              color="#4c72b0")
    bars.barh([p + height / 2 for p in positions], recall, height, label="recall",
              color="#55a868")
    for p, r in zip(positions, rows, strict=True):
        if r.precision is None:
            bars.text(0.005, p - height / 2, "n/a", va="center", fontsize=7)
        if r.recall is None:
            bars.text(0.005, p + height / 2, "n/a", va="center", fontsize=7)
    champion = names.index("champion_left")
    if report.missed_departures:  # the one type that must be perfect: make a miss stand out
        bars.barh(champion + height / 2, recall[champion], height, color="#c44e52")
        bars.text(recall[champion], champion + height / 2,
                  f"  {len(report.missed_departures)} departure(s) missed", va="center",
                  color="#c44e52", fontweight="bold")
    bars.axhline(len(report.types) - 0.5, color="grey", linewidth=0.8)
    bars.set_yticks(positions, names)
    bars.invert_yaxis()
    bars.set_xlim(0, 1.15)
    bars.set_xlabel("share")
    bars.set_title(f"Precision and recall per signal type (horizon {report.horizon_days} days)")
    bars.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncols=2)

    with_leads = [r for r in report.types + report.rollups
                  if r.lead_times_days and r.matched_against != "champion_left"]
    if with_leads:
        # vertical boxes and explicit ticks: the keyword names for both changed across 3.8+
        leads.boxplot([list(r.lead_times_days) for r in with_leads])
        leads.set_xticks(range(1, len(with_leads) + 1), [r.name for r in with_leads],
                         rotation=30, ha="right", fontsize=8)
    else:
        leads.text(0.5, 0.5, "no outcome was preceded by a signal", ha="center", va="center",
                   transform=leads.transAxes)
        leads.set_xticks([])
    leads.set_ylabel("lead time (days before the outcome)")
    leads.set_title("Lead time: outcome minus the first signal within the horizon")
    fig.savefig(path, format="png", dpi=100)
