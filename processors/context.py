"""What a rule sees: the account's state, the rules, event time ``now``, and the trigger.

A rule is a small pure function ``check(ctx) -> Signal | None``. Event rules look at
``ctx.event`` and ``ctx.before`` (the stakeholder as it was before the event); condition and
deadline rules look at the state at ``ctx.now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from processors.engagement import NO_TOUCH, Touch, figures
from processors.rules import Rules
from processors.state import DAY, AccountState, StakeholderState, day_of, window_points
from schemas.events import InputEvent
from schemas.signals import EXPANSION_TYPES, Severity, Signal, signal_id


def to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class Before:
    """The stakeholder as the event found them."""

    known: bool
    was_champion: bool
    buying_role: str | None
    title: str | None
    last_engaged: float | None


@dataclass(slots=True)
class Context:
    state: AccountState
    rules: Rules
    now: float
    detected_at: datetime
    event: InputEvent | None = None
    before: Before | None = None
    touch: Touch = NO_TOUCH
    event_time: float = 0.0  # the event's own time (``now`` is the account's high-water mark)
    # figures worked out once per evaluation (a context lives for one event or one sweep)
    _figures: dict[str, Any] | None = field(default=None, repr=False)
    _champions: set[str] | None = field(default=None, repr=False)
    _engaged: dict[int, list[str]] = field(default_factory=dict, repr=False)

    @property
    def today(self) -> int:
        return day_of(self.now)

    @property
    def figures(self) -> dict[str, Any]:
        if self._figures is None:
            self._figures = figures(self.state, self.now, self.rules)
        return self._figures

    @property
    def champions(self) -> set[str]:
        if self._champions is None:
            self._champions = self.state.champions()
        return self._champions

    def newly_engaged(self, days: int) -> bool:
        """The event engages someone who had not engaged in the last ``days``: the set of
        engaged stakeholders of that window grows."""
        if not self.touch.engaged or self.before is None:
            return False
        last = self.before.last_engaged
        return last is None or last <= self.now - days * DAY

    def last_and_prior_30(self) -> tuple[float, float]:
        """Account points over the trailing 30 days (today included) and the 30 before.

        Everything but today's points is fixed for the day, so it is summed once per account
        and day (``state.window_base``); surge is judged on every engagement.
        """
        s, today = self.state, self.today
        base = s.window_base
        if not base or base[0] != today:
            days = s.score_days
            if base and base[0] == today - 1:
                # a day on: one day enters each window and one leaves. Exact while every
                # figure is a whole number (the default weights); else summed afresh
                get = days.get
                enter, move, leave = get(today - 1, 0.0), get(today - 30, 0.0), \
                    get(today - 60, 0.0)
                last, prior = base[1], base[2]
                if last % 1 == prior % 1 == enter % 1 == move % 1 == leave % 1 == 0:
                    base[:] = [today, last + enter - move, prior + move - leave]
                    return base[1] + get(today, 0.0), base[2]
            base[:] = [today, window_points(days, today - 1, 29),
                       window_points(days, today, 30, offset=30)]
        return base[1] + s.score_days.get(today, 0.0), base[2]

    def engaged(self, days: int) -> list[str]:
        """Stakeholders on the roster who engaged in the last ``days`` (sorted)."""
        value = self._engaged.get(days)
        if value is None:
            value = self._engaged[days] = self.state.engaged_since(self.now - days * DAY)
        return value

    def observed(self, days: float) -> bool:
        """Whether the account has been watched for ``days``: a window judged before that
        would count days we never saw (every new account would look silent or surging)."""
        return self.now - self.state.first_seen >= days * DAY

    def days_since(self, ts: float | None) -> float:
        """Days from ``ts`` (or the account's first sighting) to now."""
        return (self.now - (self.state.first_seen if ts is None else ts)) / DAY

    def signal(
        self,
        signal_type: str,
        severity: Severity,
        episode: str,
        evidence: dict[str, Any],
        *,
        stakeholder_id: str | None = None,
        occurred_at: float | None = None,
    ) -> Signal:
        at = self.now if occurred_at is None else occurred_at
        event_ids = evidence.pop("event_ids", None)
        if event_ids is None:
            event_ids = [self.event.event_id] if self.event is not None else \
                list(self.state.recent_engagement_events[-5:])
        return Signal(
            signal_id=signal_id(self.state.account_id, signal_type, episode, self.rules.version),
            account_id=self.state.account_id,
            stakeholder_id=stakeholder_id,
            type=signal_type,
            category="expansion" if signal_type in EXPANSION_TYPES else "churn",
            severity=severity,
            occurred_at=to_datetime(at),
            detected_at=self.detected_at,
            rule_version=self.rules.version,
            evidence={"event_ids": event_ids, **evidence},
        )

    def stakeholder(self) -> tuple[str, StakeholderState] | None:
        event = self.event
        sid = getattr(event, "stakeholder_id", None)
        if sid is None or sid not in self.state.stakeholders:
            return None
        return sid, self.state.stakeholders[sid]
