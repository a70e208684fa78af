"""Nobody at the account has engaged for ``days``: fires once per silence, at its deadline."""

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
    since = s.last_engaged if s.last_engaged is not None else s.first_seen
    if fired(s, "engagement_silence", time_episode(since)):
        return math.inf
    return since + rules.churn.engagement_silence.days * DAY


def check(ctx: Context) -> Signal | None:
    s = ctx.state
    limit = ctx.rules.churn.engagement_silence.days
    since = s.last_engaged if s.last_engaged is not None else s.first_seen
    deadline = since + limit * DAY
    if ctx.now < deadline:
        return None
    episode = time_episode(since)
    if already_fired(ctx, "engagement_silence", episode):
        return None
    mark_fired(ctx, "engagement_silence", episode)
    evidence = {"event_ids": [s.last_engaged_event] if s.last_engaged_event else [],
                "silent_since": since, "threshold_days": limit,
                "never_engaged": s.last_engaged is None, "figures": ctx.figures}
    return ctx.signal("engagement_silence", "high", episode, evidence, occurred_at=deadline)


def broken_by(signal: Signal, state: AccountState, event: InputEvent, touch: Touch, t: float,
              rules: Rules) -> bool:
    """A late engagement within the silence proves it premature."""
    return touch.engaged and signal.evidence["silent_since"] < t < \
        signal.occurred_at.timestamp()
