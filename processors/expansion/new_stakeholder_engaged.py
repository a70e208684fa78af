"""Someone with no engagement in ``quiet_days`` engages: a new thread into the account.
High when they hold budget or operations, or sit at c-level / VP."""

from __future__ import annotations

from processors.context import Context
from processors.engagement import Touch
from processors.state import DAY
from schemas.events import InputEvent
from schemas.signals import Signal


def fires_on(event: InputEvent, touch: Touch) -> bool:
    """Whether ``check`` can fire on this event at all (the engine skips it otherwise)."""
    return touch.engaged


def check(ctx: Context) -> Signal | None:
    b = ctx.before
    e = ctx.event
    if e is None or b is None or not ctx.touch.engaged:
        return None
    r = ctx.rules.expansion.new_stakeholder_engaged
    event_time = ctx.event_time
    if b.last_engaged is not None and event_time - b.last_engaged < r.quiet_days * DAY:
        return None
    found = ctx.stakeholder()
    if found is None:
        return None
    sid, st = found
    high = st.function in r.high_functions or st.seniority in r.high_seniorities
    return ctx.signal(
        "new_stakeholder_engaged", "high" if high else "medium", e.event_id,
        {"function": st.function, "seniority": st.seniority, "title": st.title,
         "previous_engagement_at": b.last_engaged, "threshold_quiet_days": r.quiet_days,
         "points": ctx.touch.points, "figures": ctx.figures},
        stakeholder_id=sid, occurred_at=event_time,
    )
