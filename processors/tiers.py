"""The account's tier: ``at_risk``, ``expansion_ready`` or ``stable`` (SPEC section 4)."""

from __future__ import annotations

from processors.rules import Rules
from processors.state import DAY, AccountState
from schemas.signals import Tier

SERIOUS = frozenset({"high", "critical"})


def tier_of(state: AccountState, now: float, rules: Rules, *,
            engaged: list[str] | None = None,
            champions: set[str] | None = None) -> tuple[Tier, list[str]]:
    """``engaged`` (in the expansion window) and ``champions`` may be handed in when the
    caller has them already."""
    t = rules.tiers
    recent = sorted({kind for kind, severity, at in state.churn_history
                     if severity in SERIOUS and now - at <= t.at_risk_signal_days * DAY})
    since = state.last_engaged if state.last_engaged is not None else state.first_seen
    silent_days = (now - since) / DAY
    reasons = [f"{kind} in the last {t.at_risk_signal_days} days" for kind in recent]
    if silent_days >= t.at_risk_silence_days:
        reasons.append(f"no engagement for {silent_days:.0f} days")
    if reasons:
        return "at_risk", reasons
    if engaged is None:
        engaged = state.engaged_since(now - t.expansion_window_days * DAY)
    if len(engaged) < t.expansion_min_engaged:
        return "stable", []
    engaged_champions = sorted((state.champions() if champions is None else champions)
                               .intersection(engaged))
    if engaged_champions:
        return "expansion_ready", [
            f"{len(engaged)} stakeholders engaged in {t.expansion_window_days} days",
            f"champion engaged: {', '.join(engaged_champions)}",
        ]
    return "stable", []
