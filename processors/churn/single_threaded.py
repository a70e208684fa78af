"""Fewer than ``min_engaged`` stakeholders engaged in the window while the roster has more."""

from __future__ import annotations

from processors.conditions import entering, fire_on_entry
from processors.context import Context
from schemas.events import RoleChange
from schemas.signals import Signal


def moved_by(ctx: Context) -> bool:
    """More engagement only ends it; the roster changes with role changes."""
    return isinstance(ctx.event, RoleChange)


def check(ctx: Context) -> Signal | None:
    r = ctx.rules.churn.single_threaded
    engaged = ctx.engaged(r.window_days)
    roster = len(ctx.state.roster())
    holds = (ctx.observed(r.window_days) and len(engaged) < r.min_engaged
             and roster >= r.min_roster)
    if not entering(ctx, "single_threaded", holds):
        return None
    return fire_on_entry(ctx, "single_threaded", "medium", holds, {
        "engaged_stakeholders": engaged, "roster": roster, "window_days": r.window_days,
        "threshold_min_engaged": r.min_engaged, "threshold_min_roster": r.min_roster})
