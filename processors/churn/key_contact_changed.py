"""A champion or economic buyer is promoted or changes role: the relationship must be re-won."""

from __future__ import annotations

from processors.context import Context
from processors.engagement import Touch
from schemas.events import InputEvent, RoleChange
from schemas.signals import Signal

KEY_ROLES = frozenset({"champion", "economic_buyer"})


def fires_on(event: InputEvent, touch: Touch) -> bool:
    """Whether ``check`` can fire on this event at all (the engine skips it otherwise)."""
    return isinstance(event, RoleChange)


def check(ctx: Context) -> Signal | None:
    e = ctx.event
    b = ctx.before
    if not isinstance(e, RoleChange) or e.change not in ("promoted", "role_changed") or b is None:
        return None
    role = "champion" if b.was_champion else b.buying_role
    if role not in KEY_ROLES:
        return None
    return ctx.signal(
        "key_contact_changed", "high", e.event_id,
        {"change": e.change, "role": role, "previous_title": b.title, "new_title": e.title,
         "new_buying_role": e.buying_role, "figures": ctx.figures},
        stakeholder_id=e.stakeholder_id,
    )
