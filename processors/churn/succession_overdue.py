"""``days`` after a champion left, nobody who joined since has been reached or has engaged."""

from __future__ import annotations

import math

from processors.context import Context
from processors.engagement import Touch
from processors.rules import Rules
from processors.state import DAY, AccountState
from schemas.events import InputEvent
from schemas.signals import Signal


def due(s: AccountState, rules: Rules) -> float:
    """The earliest event time ``check`` can fire at (or mark a departure checked at)."""
    days = rules.churn.succession_overdue.days * DAY
    return min((d.left_at + days for d in s.departures if not d.succession_checked),
               default=math.inf)


def check(ctx: Context) -> Signal | None:
    """One overdue departure per call (the engine calls again until there is none)."""
    s = ctx.state
    r = ctx.rules.churn.succession_overdue
    for departure in s.departures:
        deadline = departure.left_at + r.days * DAY
        if departure.succession_checked or ctx.now < deadline:
            continue
        departure.succession_checked = True
        joiners = {sid: st for sid, st in s.stakeholders.items()
                   if st.joined_at is not None and st.joined_at > departure.left_at}
        reached = [sid for sid, st in joiners.items()
                   if st.first_reached is not None and st.first_reached <= deadline]
        if reached:
            continue
        return ctx.signal("succession_overdue", "high", departure.event_id, {
            "event_ids": [departure.event_id], "departed_champion": departure.stakeholder_id,
            "left_at": departure.left_at, "joined_since": sorted(joiners),
            "threshold_days": r.days, "figures": ctx.figures},
            stakeholder_id=departure.stakeholder_id, occurred_at=deadline)
    return None


def broken_by(signal: Signal, state: AccountState, event: InputEvent, touch: Touch, t: float,
              rules: Rules) -> bool:
    """A late event (a joiner, or a touch of one) that shows someone who joined after the
    champion left was reached by the deadline proves it premature (judged on the state with
    the event applied)."""
    if t >= signal.occurred_at.timestamp():
        return False
    left_at, deadline = signal.evidence["left_at"], signal.occurred_at.timestamp()
    return any(st.joined_at is not None and st.joined_at > left_at and
               st.first_reached is not None and st.first_reached <= deadline
               for st in state.stakeholders.values())
