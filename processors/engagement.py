"""Points, exposure and engagement of single events, and the window figures of an account.

Exposure is not engagement: an impression without a click only counts for reach and
continuity. A reply of ``not_interested`` or ``unsubscribe`` scores 0 and is no engagement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processors.rules import Rules, Weights
from processors.state import DAY, AccountState, day_of, window_points
from schemas.events import AdImpression, ContentInteraction, InputEvent, OutreachReply


@dataclass(frozen=True, slots=True)
class Touch:
    points: float  # engagement points (0 for exposure only)
    exposure_points: float
    engaged: bool
    exposed: bool
    public: bool = False


NO_TOUCH = Touch(0.0, 0.0, False, False)


def touch_of(event: InputEvent, weights: Weights) -> Touch:
    if isinstance(event, AdImpression):
        if event.clicked:
            return Touch(weights.ad_click, weights.impression, weights.ad_click > 0, True)
        return Touch(0.0, weights.impression, False, True)
    if isinstance(event, OutreachReply):
        pts = float(getattr(weights, event.reply_kind))
        return Touch(pts, 0.0, pts > 0, False)
    if isinstance(event, ContentInteraction):
        pts = float(getattr(weights, event.action))
        public = event.public and event.action in ("like", "comment", "share")
        return Touch(pts, 0.0, pts > 0, False, public)
    return NO_TOUCH


def figures(state: AccountState, now: float, rules: Rules) -> dict[str, Any]:
    """The account's window figures at ``now`` (event time): what every signal's evidence cites."""
    today = day_of(now)
    days = state.score_days
    engaged = {w: state.engaged_since(now - w * DAY) for w in (7, 30, 90)}
    reached = {w: state.exposed_since(now - w * DAY) for w in (7, 30, 90)}
    functions = sorted({state.stakeholders[s].function or "unknown" for s in engaged[30]})
    return {
        "score_7d": window_points(days, today, 7),
        "score_30d": window_points(days, today, 30),
        "score_90d": window_points(days, today, 90),
        "score_prior_30d": window_points(days, today, 30, offset=30),
        "engaged_7d": len(engaged[7]),
        "engaged_30d": len(engaged[30]),
        "engaged_90d": len(engaged[90]),
        "reached_7d": len(reached[7]),
        "reached_30d": len(reached[30]),
        "reached_90d": len(reached[90]),
        "functions_30d": functions,
        "roster": len(state.roster()),
        "champions": sorted(state.champions()),
        "last_engaged_at": state.last_engaged,
        "last_exposed_at": state.last_exposed,
    }
