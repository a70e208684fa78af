"""A champion likes, comments on or shares our content publicly: advocacy others can see."""

from __future__ import annotations

from processors.context import Context
from processors.engagement import Touch
from schemas.events import ContentInteraction, InputEvent
from schemas.signals import Signal


def fires_on(event: InputEvent, touch: Touch) -> bool:
    """Whether ``check`` can fire on this event at all (the engine skips it otherwise)."""
    return touch.public


def check(ctx: Context) -> Signal | None:
    e = ctx.event
    if not isinstance(e, ContentInteraction) or not ctx.touch.public:
        return None
    if not ctx.state.is_champion(e.stakeholder_id):
        return None
    return ctx.signal(
        "champion_advocacy", "medium", e.event_id,
        {"action": e.action, "content_id": e.content_id, "topic": e.topic,
         "figures": ctx.figures},
        stakeholder_id=e.stakeholder_id, occurred_at=ctx.event_time,
    )
