"""At least ``min_stakeholders`` engaged across ``min_functions`` functions in the window."""

from __future__ import annotations

from processors.conditions import entering, fire_on_entry
from processors.context import Context
from schemas.events import RoleChange
from schemas.signals import Signal


def moved_by(ctx: Context) -> bool:
    """Only someone newly engaged in the window, or a new function, can start it."""
    return isinstance(ctx.event, RoleChange) or \
        ctx.newly_engaged(ctx.rules.expansion.multi_threaded.window_days)


def check(ctx: Context) -> Signal | None:
    r = ctx.rules.expansion.multi_threaded
    engaged = ctx.engaged(r.window_days)
    functions = sorted({f for s in engaged
                        if (f := ctx.state.stakeholders[s].function) is not None})
    holds = len(engaged) >= r.min_stakeholders and len(functions) >= r.min_functions
    if not entering(ctx, "multi_threaded", holds):
        return None
    return fire_on_entry(ctx, "multi_threaded", "low", holds, {
        "engaged_stakeholders": engaged, "functions": functions, "window_days": r.window_days,
        "threshold_min_stakeholders": r.min_stakeholders,
        "threshold_min_functions": r.min_functions})
