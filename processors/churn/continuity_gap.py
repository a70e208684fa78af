"""A tier-1 account with no ad exposure to anyone for more than ``days``: the retention drip
stopped. Fires once per gap, when the gap passes the threshold."""

from __future__ import annotations

import math

from processors.conditions import already_fired, fired, mark_fired, time_episode
from processors.context import Context
from processors.engagement import Touch
from processors.rules import Rules
from processors.state import DAY, AccountState
from schemas.events import InputEvent
from schemas.signals import Signal


def due(s: AccountState, rules: Rules) -> float:
    """The earliest event time ``check`` can fire at, until the state changes."""
    r = rules.churn.continuity_gap
    if s.tier_level not in r.tiers:
        return math.inf
    since = s.last_exposed if s.last_exposed is not None else s.first_seen
    if fired(s, "continuity_gap", time_episode(since)):
        return math.inf
    return since + r.days * DAY


def check(ctx: Context) -> Signal | None:
    s = ctx.state
    r = ctx.rules.churn.continuity_gap
    if s.tier_level not in r.tiers:
        return None
    since = s.last_exposed if s.last_exposed is not None else s.first_seen
    if ctx.now - since <= r.days * DAY:
        return None
    episode = time_episode(since)
    if already_fired(ctx, "continuity_gap", episode):
        return None
    mark_fired(ctx, "continuity_gap", episode)
    return ctx.signal("continuity_gap", "medium", episode, {
        "event_ids": [s.last_exposed_event] if s.last_exposed_event else [],
        "last_exposed_at": s.last_exposed, "exposed_since": since,
        "gap_days": round((ctx.now - since) / DAY, 1),
        "threshold_days": r.days, "tier": s.tier_level, "figures": ctx.figures},
        occurred_at=since + r.days * DAY)


def broken_by(signal: Signal, state: AccountState, event: InputEvent, touch: Touch, t: float,
              rules: Rules) -> bool:
    """A late exposure within the gap proves it premature."""
    return touch.exposed and signal.evidence["exposed_since"] < t < \
        signal.occurred_at.timestamp()
