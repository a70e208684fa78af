"""A champion's ``role_change`` says ``left``: the alert revenue teams act on first."""

from __future__ import annotations

from processors.context import Context
from processors.engagement import Touch
from schemas.events import InputEvent, RoleChange
from schemas.signals import Signal


def fires_on(event: InputEvent, touch: Touch) -> bool:
    """Whether ``check`` can fire on this event at all (the engine skips it otherwise)."""
    return isinstance(event, RoleChange)


def check(ctx: Context) -> Signal | None:
    e = ctx.event
    if not isinstance(e, RoleChange) or e.change != "left" or ctx.before is None:
        return None
    if not ctx.before.was_champion:
        return None
    return ctx.signal(
        "champion_left", "critical", e.event_id,
        {"title": e.title, "function": e.function, "seniority": e.seniority,
         "figures": ctx.figures, "renewal_in_days": _renewal_in_days(ctx)},
        stakeholder_id=e.stakeholder_id,
    )


def _renewal_in_days(ctx: Context) -> int | None:
    day = ctx.state.renewal_day
    return None if day is None else day - ctx.today
