"""Signal quality against the simulator's ground truth: precision, recall and lead time per type.

Definitions (also printed in every report, so a reader never has to look them up):

- A churn-category signal is a *true positive* when its account has a ``churn`` outcome later
  than the signal and at most ``horizon`` days after it (``0 < outcome.at - signal <= horizon``);
  an expansion-category signal likewise with an ``expansion`` outcome.
- *Precision* = true-positive signals / signals of that type.
- *Recall* = outcomes of the type's category that at least one signal of that type preceded
  within the horizon / all outcomes of that category.
- *Lead time* = ``outcome.at`` minus the earliest signal of that type inside the outcome's
  horizon, in days, over the outcomes that were caught: the median, and the 90th percentile
  by nearest rank (the smallest lead time that at least 90% of the caught outcomes reach).
- ``champion_left`` detects an event rather than predicting one: a signal matches a
  ``champion_left`` label of the same account and stakeholder when the two are at most one
  day apart. Recall = departures with a matching signal / all departures; precision =
  matching signals / ``champion_left`` signals. A correct pipeline reaches 100% recall, so
  every missed departure is listed.

Rollups measure every signal of a category against that category's outcomes (``champion_left``
included); the high/critical churn rollup is what puts an account in the ``at_risk`` tier.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.labels import (
    AccountLabel,
    ChampionLeftLabel,
    ChurnLabel,
    ExpansionLabel,
    Label,
    WorldLabel,
)
from schemas.signals import CHURN_TYPES, EXPANSION_TYPES, Category

CHAMPION_MATCH_WINDOW = timedelta(days=1)
SIGNAL_TYPES: tuple[str, ...] = CHURN_TYPES + EXPANSION_TYPES
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SignalRecord:
    """The columns of a stored signal that evaluation needs."""

    signal_id: str
    account_id: str
    stakeholder_id: str | None
    type: str
    severity: str
    occurred_at: datetime
    rule_version: str = ""

    @property
    def category(self) -> Category:
        return "churn" if self.type in CHURN_TYPES else "expansion"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A churn or expansion of an account (from a label)."""

    account_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TypeResult:
    """One row of the report: a signal type, or a rollup of several."""

    name: str
    category: Category
    matched_against: str  # "churn", "expansion" or "champion_left"
    signals: int
    true_positives: int
    outcomes: int
    detected: int
    lead_times_days: tuple[float, ...]  # one per detected outcome, sorted

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.signals if self.signals else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.outcomes if self.outcomes else None

    @property
    def lead_median_days(self) -> float | None:
        return statistics.median(self.lead_times_days) if self.lead_times_days else None

    @property
    def lead_p90_days(self) -> float | None:
        return percentile(self.lead_times_days, 90)


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    horizon_days: int
    types: tuple[TypeResult, ...]  # the 14 signal types, churn first, in schemas.signals order
    rollups: tuple[TypeResult, ...]  # any churn / any high-critical churn / any expansion
    tier_rollups: tuple[TypeResult, ...]  # the same per account tier (when labels name tiers)
    churn_outcomes: int
    expansion_outcomes: int
    departures: int
    missed_departures: tuple[ChampionLeftLabel, ...]
    unmatched_champion_left: tuple[SignalRecord, ...]
    accounts: int  # accounts named by ``account`` labels (0 if the file has none)
    churned_accounts: int
    expanded_accounts: int
    signals_evaluated: int
    signals_outside_labels: int  # signals of accounts the labels do not name: ignored
    signals_unknown_type: int  # types outside the 14: ignored
    signals_after_labelled_end: int  # horizon runs past the world's end: outcome may be unseen
    signals_after_churn: int  # fired after their account had churned: false positives by design
    rule_versions: tuple[str, ...]  # of the evaluated signals; more than one double-counts
    world: WorldLabel | None

    def result(self, signal_type: str) -> TypeResult:
        for row in self.types:
            if row.name == signal_type:
                return row
        raise KeyError(signal_type)

    @property
    def champion_left_complete(self) -> bool:
        return not self.missed_departures


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest rank: the smallest value that at least ``p``% of ``values`` are at or below."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _times_by_account(pairs: Iterable[tuple[str, datetime]]) -> dict[str, list[datetime]]:
    times: dict[str, list[datetime]] = defaultdict(list)
    for account_id, at in pairs:
        times[account_id].append(at)
    for t in times.values():
        t.sort()
    return times


def _against_outcomes(
    name: str, category: Category, signals: Sequence[SignalRecord], outcomes: Sequence[Outcome],
    horizon: timedelta,
) -> TypeResult:
    outcome_times = _times_by_account((o.account_id, o.at) for o in outcomes)
    true_positives = 0
    for s in signals:
        later = outcome_times.get(s.account_id, [])
        # the first outcome strictly after the signal, if it is within the horizon
        i = bisect.bisect_right(later, s.occurred_at)
        if i < len(later) and later[i] - s.occurred_at <= horizon:
            true_positives += 1
    signal_times = _times_by_account((s.account_id, s.occurred_at) for s in signals)
    leads: list[float] = []
    for o in outcomes:
        before = signal_times.get(o.account_id, [])
        # the earliest signal at or after (at - horizon), if it is strictly before the outcome
        i = bisect.bisect_left(before, o.at - horizon)
        if i < len(before) and before[i] < o.at:
            leads.append((o.at - before[i]) / _DAY)
    return TypeResult(name, category, category, len(signals), true_positives, len(outcomes),
                      len(leads), tuple(sorted(leads)))


def _champion_left(
    signals: Sequence[SignalRecord], departures: Sequence[ChampionLeftLabel],
) -> tuple[TypeResult, tuple[ChampionLeftLabel, ...], tuple[SignalRecord, ...]]:
    def matches(s: SignalRecord, d: ChampionLeftLabel) -> bool:
        return (s.account_id == d.account_id and s.stakeholder_id == d.stakeholder_id
                and abs(s.occurred_at - d.at) <= CHAMPION_MATCH_WINDOW)

    # a signal without a stakeholder names nobody, so it matches no departure
    departures_of: dict[tuple[str, str | None], list[ChampionLeftLabel]] = defaultdict(list)
    for d in departures:
        departures_of[(d.account_id, d.stakeholder_id)].append(d)
    signals_of: dict[tuple[str, str | None], list[SignalRecord]] = defaultdict(list)
    for s in signals:
        signals_of[(s.account_id, s.stakeholder_id)].append(s)

    unmatched = tuple(
        s for s in signals
        if s.stakeholder_id is None
        or not any(matches(s, d) for d in departures_of[(s.account_id, s.stakeholder_id)])
    )
    missed = tuple(
        d for d in departures
        if not any(matches(s, d) for s in signals_of[(d.account_id, d.stakeholder_id)])
    )
    detected = len(departures) - len(missed)
    result = TypeResult("champion_left", "churn", "champion_left", len(signals),
                        len(signals) - len(unmatched), len(departures), detected, ())
    return result, missed, unmatched


def evaluate(
    signals: Iterable[SignalRecord], labels: Iterable[Label], horizon_days: int = 180,
) -> EvaluationReport:
    """Score ``signals`` against ``labels`` (see the module docstring for the definitions)."""
    if horizon_days <= 0:
        raise ValueError("horizon_days must be positive")
    horizon = timedelta(days=horizon_days)
    labels = list(labels)
    world = next((x for x in labels if isinstance(x, WorldLabel)), None)
    account_tiers = {x.account_id: x.tier for x in labels if isinstance(x, AccountLabel)}
    churns = [Outcome(x.account_id, x.at) for x in labels if isinstance(x, ChurnLabel)]
    expansions = [Outcome(x.account_id, x.at) for x in labels if isinstance(x, ExpansionLabel)]
    departures = [x for x in labels if isinstance(x, ChampionLeftLabel)]

    all_signals = list(signals)
    known = [s for s in all_signals if s.type in SIGNAL_TYPES]
    # a database can hold signals of other worlds (earlier runs, the bundled sample); when the
    # labels name their accounts, only those accounts are judged
    kept = [s for s in known if s.account_id in account_tiers] if account_tiers else known
    of_type: dict[str, list[SignalRecord]] = defaultdict(list)
    for s in kept:
        of_type[s.type].append(s)

    champion, missed, unmatched = _champion_left(of_type["champion_left"], departures)
    types = tuple(
        champion if t == "champion_left"
        else _against_outcomes(t, "churn", of_type[t], churns, horizon) if t in CHURN_TYPES
        else _against_outcomes(t, "expansion", of_type[t], expansions, horizon)
        for t in SIGNAL_TYPES
    )

    def rollups(keep: Callable[[str], bool], suffix: str) -> tuple[TypeResult, ...]:
        churn = [s for s in kept if s.category == "churn" and keep(s.account_id)]
        expansion = [s for s in kept if s.category == "expansion" and keep(s.account_id)]
        severe = [s for s in churn if s.severity in ("high", "critical")]
        churn_outcomes = [o for o in churns if keep(o.account_id)]
        expansion_outcomes = [o for o in expansions if keep(o.account_id)]
        return (
            _against_outcomes(f"any churn signal{suffix}", "churn", churn, churn_outcomes, horizon),
            _against_outcomes(f"any high/critical churn signal{suffix}", "churn", severe,
                              churn_outcomes, horizon),
            _against_outcomes(f"any expansion signal{suffix}", "expansion", expansion,
                              expansion_outcomes, horizon),
        )

    def in_tier(tier: int) -> Callable[[str], bool]:
        return lambda account_id: account_tiers.get(account_id) == tier

    tier_rollups: tuple[TypeResult, ...] = ()
    for tier in sorted(set(account_tiers.values())):
        tier_rollups += rollups(in_tier(tier), f", tier {tier}")

    end = world.end if world is not None else None
    churned_at: dict[str, datetime] = {}
    for o in churns:
        churned_at[o.account_id] = min(o.at, churned_at.get(o.account_id, o.at))
    return EvaluationReport(
        horizon_days=horizon_days,
        types=types,
        rollups=rollups(lambda _: True, ""),
        tier_rollups=tier_rollups,
        churn_outcomes=len(churns),
        expansion_outcomes=len(expansions),
        departures=len(departures),
        missed_departures=missed,
        unmatched_champion_left=unmatched,
        accounts=len(account_tiers),
        churned_accounts=len({o.account_id for o in churns}),
        expanded_accounts=len({o.account_id for o in expansions}),
        signals_evaluated=len(kept),
        signals_outside_labels=len(known) - len(kept),
        signals_unknown_type=len(all_signals) - len(known),
        signals_after_labelled_end=0 if end is None else sum(
            1 for s in kept if s.type != "champion_left" and s.occurred_at + horizon > end
        ),
        signals_after_churn=sum(
            1 for s in kept
            if s.type != "champion_left" and s.account_id in churned_at
            and s.occurred_at > churned_at[s.account_id]
        ),
        rule_versions=tuple(sorted({s.rule_version for s in kept})),
        world=world,
    )
