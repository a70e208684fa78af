"""Output contracts of the signal engine: signals and tier changes (SPEC section 4)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Category = Literal["churn", "expansion"]
Severity = Literal["critical", "high", "medium", "low"]
Tier = Literal["at_risk", "stable", "expansion_ready"]
# a signal that an event arriving later proves premature is emitted again, same id, withdrawn
Status = Literal["open", "withdrawn"]

CHURN_TYPES: tuple[str, ...] = (
    "champion_left", "key_contact_changed", "engagement_silence", "engagement_drop",
    "single_threaded", "renewal_at_risk", "continuity_gap", "succession_overdue",
)
EXPANSION_TYPES: tuple[str, ...] = (
    "engagement_surge", "new_stakeholder_engaged", "champion_advocacy", "pricing_page_visit",
    "multi_threaded", "reference_candidate",
)
ALERT_TYPES: frozenset[str] = frozenset({"champion_left", "renewal_at_risk", "succession_overdue"})


def signal_id(account_id: str, signal_type: str, episode: str, rule_version: str) -> str:
    """Deterministic: the same trigger under the same rules always has the same id."""
    raw = "\x1f".join((rule_version, account_id, signal_type, episode)).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


class Signal(BaseModel):
    model_config = ConfigDict(frozen=True)

    signal_id: str
    account_id: str
    stakeholder_id: str | None = None
    type: str
    category: Category
    severity: Severity
    occurred_at: datetime
    detected_at: datetime
    rule_version: str
    evidence: dict[str, Any]
    status: Status = "open"
    withdrawn_at: datetime | None = None  # wall clock, as detected_at

    @property
    def is_alert(self) -> bool:
        return self.severity == "critical" or self.type in ALERT_TYPES


class TierChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    account_id: str
    tier: Tier
    previous_tier: Tier | None
    occurred_at: datetime
    detected_at: datetime
    rule_version: str
    reasons: list[str]
