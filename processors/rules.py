"""Every weight, window and threshold of the signal engine, from one rules file.

Defaults are SPEC sections 3-4. The file is TOML (``rules.toml`` at the repository root lists
every key with its default); its ``version`` is stamped on each signal. A file with an unknown
key, a wrong type or an impossible value is refused with a message naming the key.
"""

from __future__ import annotations

import tomllib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Days = Annotated[int, Field(ge=1, le=3650)]
Pct = Annotated[float, Field(gt=0, le=100)]
Points = Annotated[float, Field(ge=0)]
Count = Annotated[int, Field(ge=1, le=1000)]


class _Section(BaseModel):
    # defaults validated too: a float setting is a float (30.0, not 30) whether it comes from
    # the file or the default, in the evidence it is cited in and whether compiled or not
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, validate_default=True)


class Weights(_Section):
    """Points per interaction. An unclicked impression is exposure, never engagement."""

    impression: Points = 1
    ad_click: Points = 5
    view: Points = 2
    like: Points = 3
    comment: Points = 5
    save: Points = 4
    share: Points = 8
    website_visit: Points = 3
    pricing_page_visit: Points = 10
    reply: Points = 8
    positive_reply: Points = 12
    meeting_booked: Points = 20
    not_interested: Points = 0
    unsubscribe: Points = 0


class Engagement(_Section):
    allowed_lateness_days: Annotated[int, Field(ge=0, le=365)] = 7
    # deadline signals (silence, continuity gap, succession, renewal) wait this long in event
    # time past their deadline before they go out: a source lagging within it cannot make
    # one premature (SPEC section 9)
    deadline_grace_hours: Annotated[int, Field(ge=0, le=24 * 30)] = 24


class EngagementSilence(_Section):
    days: Days = 60


class EngagementDrop(_Section):
    drop_pct: Pct = 40
    min_prior_points: Points = 20
    quiet_after_days: Days = 21


class SingleThreaded(_Section):
    min_engaged: Count = 2
    window_days: Days = 90
    min_roster: Count = 2


class RenewalAtRisk(_Section):
    within_days: Days = 90
    silence_days: Days = 45
    min_engaged: Count = 3
    engaged_window_days: Days = 90
    champion_left_days: Days = 90


def _tier_one() -> list[Literal[1, 2, 3]]:
    return [1]


class ContinuityGap(_Section):
    days: Days = 30
    tiers: list[Literal[1, 2, 3]] = Field(default_factory=_tier_one)


class SuccessionOverdue(_Section):
    days: Days = 30


class EngagementSurge(_Section):
    rise_pct: Pct = 30
    min_prior_points: Points = 20
    quiet_after_days: Days = 21


class NewStakeholderEngaged(_Section):
    quiet_days: Days = 180
    high_functions: list[str] = Field(default_factory=lambda: ["financial", "operations"])
    high_seniorities: list[str] = Field(default_factory=lambda: ["c_level", "vp"])


class MultiThreaded(_Section):
    min_stakeholders: Count = 3
    min_functions: Count = 2
    window_days: Days = 30


class ReferenceCandidate(_Section):
    min_engaged: Count = 3
    window_days: Days = 30
    champion_public_days: Days = 30


class Tiers(_Section):
    at_risk_signal_days: Days = 30
    at_risk_silence_days: Days = 60
    expansion_min_engaged: Count = 3
    expansion_window_days: Days = 30


class Churn(_Section):
    engagement_silence: EngagementSilence = EngagementSilence()
    engagement_drop: EngagementDrop = EngagementDrop()
    single_threaded: SingleThreaded = SingleThreaded()
    renewal_at_risk: RenewalAtRisk = RenewalAtRisk()
    continuity_gap: ContinuityGap = ContinuityGap()
    succession_overdue: SuccessionOverdue = SuccessionOverdue()


class Expansion(_Section):
    engagement_surge: EngagementSurge = EngagementSurge()
    new_stakeholder_engaged: NewStakeholderEngaged = NewStakeholderEngaged()
    multi_threaded: MultiThreaded = MultiThreaded()
    reference_candidate: ReferenceCandidate = ReferenceCandidate()


class Rules(_Section):
    version: Annotated[str, Field(min_length=1, max_length=64)] = "default-1"
    weights: Weights = Weights()
    engagement: Engagement = Engagement()
    churn: Churn = Churn()
    expansion: Expansion = Expansion()
    tiers: Tiers = Tiers()


DEFAULT_RULES = Rules()


class RulesError(ValueError):
    """The rules file cannot be used; the message names the key and the problem."""


def parse_rules(text: str, source: str = "rules file") -> Rules:
    """Rules from TOML text. Keys left out keep their defaults."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source} is not valid TOML: {exc}") from exc
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors(include_url=False):
            key = ".".join(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden":
                problems.append(f"{key}: unknown key")
            else:
                problems.append(f"{key}: {e['msg']} (got {e.get('input')!r})")
        raise RulesError(f"{source} refused: " + "; ".join(problems)) from exc
