"""Any stakeholder on the pricing page: buying intent."""

from __future__ import annotations

from processors.context import Context
from processors.engagement import Touch
from schemas.events import ContentInteraction, InputEvent
from schemas.signals import Signal


def fires_on(event: InputEvent, touch: Touch) -> bool:
    """Whether ``check`` can fire on this event at all (whatever its weight)."""
    return isinstance(event, ContentInteraction) and event.action == "pricing_page_visit"


def check(ctx: Context) -> Signal | None:
    e = ctx.event
    if not isinstance(e, ContentInteraction) or e.action != "pricing_page_visit":
        return None
    return ctx.signal(
        "pricing_page_visit", "high", e.event_id,
        {"content_id": e.content_id, "figures": ctx.figures},
        stakeholder_id=e.stakeholder_id, occurred_at=ctx.event_time,
    )
