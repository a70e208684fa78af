"""Trailing-30-day points fell by ``drop_pct`` or more against the 30 days before."""

from __future__ import annotations

from processors.conditions import entering, fire_on_entry
from processors.context import Context
from schemas.signals import Signal


def moved_by(ctx: Context) -> bool:
    """Points added today only raise the trailing window: an event never starts a drop.
    Judged at each day boundary."""
    return False


def check(ctx: Context) -> Signal | None:
    r = ctx.rules.churn.engagement_drop
    last, prior = ctx.last_and_prior_30()
    change = (last - prior) / prior * 100 if prior else 0.0
    holds = ctx.observed(60) and prior >= r.min_prior_points and change <= -r.drop_pct
    if not entering(ctx, "engagement_drop", holds):
        return None
    return fire_on_entry(ctx, "engagement_drop", "medium", holds, {
        "score_30d": last, "score_prior_30d": prior, "change_pct": round(change, 2),
        "threshold_drop_pct": r.drop_pct, "min_prior_points": r.min_prior_points},
        quiet_after_days=r.quiet_after_days)
