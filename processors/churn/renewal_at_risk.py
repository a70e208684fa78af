"""Renewal within ``within_days`` and the account looks thin: silent, few engaged, or no champion.

Fires once per renewal date.
"""

from __future__ import annotations

import math

from processors.conditions import already_fired, fired, mark_fired
from processors.context import Context
from processors.engagement import Touch
from processors.rules import Rules
from processors.state import DAY, AccountState, day_of
from schemas.events import InputEvent
from schemas.signals import Signal


def due(s: AccountState, rules: Rules) -> float:
    """The earliest event time ``check`` can fire at, until the state changes: within the
    renewal window, once one of its reasons can hold. Time alone brings a silence, or fewer
    engaged as engagements age out of the window; a departure only comes with an event (a
    role change, which makes the engine ask again). A second's margin absorbs rounding."""
    r = rules.churn.renewal_at_risk
    if s.renewal_day is None or fired(s, "renewal_at_risk", str(s.renewal_day)) or \
            day_of(s.high_water) > s.renewal_day:
        return math.inf
    window_start = (s.renewal_day - r.within_days) * DAY
    if any(d.left_at + r.champion_left_days * DAY >= s.high_water for d in s.departures):
        return window_start - 1.0
    since = s.last_engaged if s.last_engaged is not None else s.first_seen
    silence = since + r.silence_days * DAY
    # fewer than min_engaged engaged once the min_engaged-th latest engagement ages out
    latest = sorted((st.last_engaged for st in s.stakeholders.values()
                     if st.on_roster and st.last_engaged is not None), reverse=True)
    thin = latest[r.min_engaged - 1] + r.engaged_window_days * DAY \
        if len(latest) >= r.min_engaged else -math.inf
    thin = max(thin, s.first_seen + r.engaged_window_days * DAY)  # once the window is observed
    return max(window_start, min(silence, thin)) - 1.0


def check(ctx: Context) -> Signal | None:
    s = ctx.state
    r = ctx.rules.churn.renewal_at_risk
    if s.renewal_day is None:
        return None
    days_left = s.renewal_day - ctx.today
    if not 0 <= days_left <= r.within_days:
        return None
    episode = str(s.renewal_day)
    if already_fired(ctx, "renewal_at_risk", episode):
        return None
    silent_days = ctx.days_since(s.last_engaged)
    engaged = ctx.engaged(r.engaged_window_days)
    departed = [d for d in s.departures if ctx.now - d.left_at <= r.champion_left_days * DAY]
    window_start = (s.renewal_day - r.within_days) * DAY
    reasons: list[str] = []
    since: list[float] = []  # when each reason began to hold
    if silent_days >= r.silence_days:
        reasons.append(f"no engagement for {silent_days:.0f} days")
        since.append((s.last_engaged or s.first_seen) + r.silence_days * DAY)
    if len(engaged) < r.min_engaged and ctx.observed(r.engaged_window_days):
        reasons.append(f"{len(engaged)} engaged stakeholder(s) in {r.engaged_window_days} days")
        since.append(max(s.first_seen + r.engaged_window_days * DAY, window_start))
    if departed:
        reasons.append(f"champion left {', '.join(d.stakeholder_id for d in departed)}")
        since.append(min(d.left_at for d in departed))
    if not reasons:
        return None
    occurred = min(max(window_start, min(since)), ctx.now)
    mark_fired(ctx, "renewal_at_risk", episode)
    event_ids = [d.event_id for d in departed] + list(s.recent_engagement_events[-3:])
    return ctx.signal("renewal_at_risk", "critical", episode, {
        "event_ids": event_ids, "reasons": reasons,
        "renewal_in_days": s.renewal_day - int(occurred // DAY),
        "silent_days": round(silent_days, 1), "engaged_stakeholders": engaged,
        "silent_since": s.last_engaged or s.first_seen,
        "departed": [d.stakeholder_id for d in departed],
        "threshold_within_days": r.within_days, "threshold_silence_days": r.silence_days,
        "threshold_min_engaged": r.min_engaged, "figures": ctx.figures},
        occurred_at=occurred)


def broken_by(signal: Signal, state: AccountState, event: InputEvent, touch: Touch, t: float,
              rules: Rules) -> bool:
    """A late engagement before the signal disproves each reason it touches: the silence (it
    fell within it) and too few engaged (one more engaged in the window reaches the minimum).
    The signal is premature when no reason is left; a departed champion always remains. (Each
    late event is judged against the reasons the signal gave: two late events that each
    disprove one of two reasons leave it open.)"""
    occurred = signal.occurred_at.timestamp()
    if not touch.engaged or t >= occurred or signal.evidence.get("departed"):
        return False
    r = rules.churn.renewal_at_risk
    sid = getattr(event, "stakeholder_id", None)
    engaged = list(signal.evidence["engaged_stakeholders"])
    if sid is not None and sid not in engaged and t > occurred - r.engaged_window_days * DAY:
        engaged.append(sid)
    silent = signal.evidence["silent_days"] >= r.silence_days and not (
        t > signal.evidence["silent_since"] and occurred - t < r.silence_days * DAY)
    thin = len(signal.evidence["engaged_stakeholders"]) < r.min_engaged and \
        len(engaged) < r.min_engaged
    return not silent and not thin
