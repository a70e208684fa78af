"""A tiny world builder for the signal engine tests: one account, its people, what they do.

Days are counted from ``START`` (2026-01-01T00:00:00Z, an epoch-day boundary) and may be
fractional. Events are applied in the order they are written, each through
``processors.engine.apply_event``; ``advance_to(day)`` lets event time pass the way the stream
does, calling ``advance_time`` once per day at midnight. Unless ``sweep`` is off, the world
also sweeps every midnight an event moves past before applying it, as the stream does when its
watermark crosses day boundaries. Every signal and tier change is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from processors.engine import Outcome, advance_time, apply_event
from processors.rules import DEFAULT_RULES, Rules
from processors.state import AccountState
from schemas.events import INPUT_EVENT
from schemas.signals import Signal, TierChange

START = datetime(2026, 1, 1, tzinfo=UTC)
DETECTED_AT = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)  # wall clock: never used for logic
DAY_S = 86_400.0
# the judgements themselves, at their deadlines: the grace before a deadline signal goes out
# is tested on its own (test_grace_and_withdrawal.py)
NO_GRACE = DEFAULT_RULES.model_copy(update={
    "engagement": DEFAULT_RULES.engagement.model_copy(update={"deadline_grace_hours": 0})})


def at(day: float) -> datetime:
    """The instant ``day`` days after START."""
    return START + timedelta(days=day)


def ts(day: float) -> float:
    return at(day).timestamp()


def on(day: float) -> date:
    return at(day).date()


def iso(day: float) -> str:
    return at(day).isoformat()


@dataclass
class World:
    account_id: str = "acct-1"
    rules: Rules = NO_GRACE
    state: AccountState | None = None
    signals: list[Signal] = field(default_factory=list)
    tier_changes: list[TierChange] = field(default_factory=list)
    withdrawn: list[Signal] = field(default_factory=list)  # out, then proved premature
    cancelled: list[Signal] = field(default_factory=list)  # proved premature within the grace
    late: list[str] = field(default_factory=list)  # event ids refused as too late
    clock_day: int | None = None  # last whole day advance_time was called for
    sweep: bool = True  # sweep the midnights an event moves past before applying it
    _seq: int = 0

    # -- raw plumbing --------------------------------------------------------------------
    def _next_id(self, kind: str) -> str:
        self._seq += 1
        return f"{self.account_id}-{kind}-{self._seq:04d}"

    def _record(self, outcome: Outcome) -> Outcome:
        self.signals.extend(outcome.signals)
        self.withdrawn.extend(outcome.withdrawn)
        self.cancelled.extend(outcome.cancelled)
        if outcome.tier_change is not None:
            self.tier_changes.append(outcome.tier_change)
        return outcome

    def apply(self, fields: dict[str, Any]) -> Outcome:
        """Validate ``fields`` as an input event (as the decoder would) and apply it."""
        event = INPUT_EVENT.validate_python(fields, strict=False)
        if self.sweep and self.state is not None:
            self.advance_to(int(event.occurred_at.timestamp() // DAY_S - START.timestamp() // DAY_S))
        self.state, outcome = apply_event(self.state, event, self.rules, DETECTED_AT)
        if outcome.late:
            self.late.append(event.event_id)
        return self._record(outcome)

    def _event(self, kind: str, day: float, event_id: str | None, **fields: Any) -> Outcome:
        return self.apply({
            "event_id": event_id or self._next_id(kind),
            "type": kind,
            "schema_version": 1,
            "occurred_at": iso(day),
            "account_id": self.account_id,
            **fields,
        })

    # -- the account -----------------------------------------------------------------------
    def profile(self, day: float, *, tier: int = 2, renewal_day: float = 365,
                champion_ids: tuple[str, ...] = (), arr: float = 100_000.0,
                name: str = "Acme", event_id: str | None = None) -> Outcome:
        return self._event("account_profile", day, event_id, name=name, sector="industrial",
                           tier=tier, renewal_date=on(renewal_day).isoformat(), arr=arr,
                           champion_ids=list(champion_ids))

    # -- people ----------------------------------------------------------------------------
    def role(self, day: float, sid: str, change: str, *, function: str = "commercial",
             seniority: str = "manager", buying_role: str = "unknown", title: str | None = None,
             event_id: str | None = None) -> Outcome:
        return self._event("role_change", day, event_id, stakeholder_id=sid, change=change,
                           title=title or f"{seniority} {function}", function=function,
                           seniority=seniority, buying_role=buying_role)

    def join(self, day: float, sid: str, **kw: Any) -> Outcome:
        return self.role(day, sid, "joined", **kw)

    def leave(self, day: float, sid: str, **kw: Any) -> Outcome:
        return self.role(day, sid, "left", **kw)

    # -- touches ---------------------------------------------------------------------------
    def impression(self, day: float, sid: str, *, clicked: bool = False,
                   event_id: str | None = None) -> Outcome:
        return self._event("ad_impression", day, event_id, stakeholder_id=sid,
                           campaign_id="camp-1", creative_id="creative-1", channel="linkedin",
                           clicked=clicked)

    def reply(self, day: float, sid: str, kind: str = "meeting_booked", *,
              event_id: str | None = None) -> Outcome:
        return self._event("outreach_reply", day, event_id, stakeholder_id=sid,
                           sequence_id="seq-1", channel="email", reply_kind=kind)

    def content(self, day: float, sid: str, action: str = "view", *, public: bool = False,
                event_id: str | None = None) -> Outcome:
        return self._event("content_interaction", day, event_id, stakeholder_id=sid,
                           content_id="post-1", action=action, public=public)

    def points(self, day: float, sid: str, total: int) -> None:
        """Engage ``sid`` on ``day`` for exactly ``total`` points with default weights
        (meetings booked, then comments, likes, saves and views; never a pricing visit)."""
        assert total == 0 or total >= 2, "1 point cannot be scored with the default weights"
        meetings, rest = divmod(total, 20)
        if rest == 1:
            meetings, rest = meetings - 1, 21
        for _ in range(meetings):
            self.reply(day, sid, "meeting_booked")
        while rest >= 7:
            self.content(day, sid, "comment")
            rest -= 5
        singles = {2: ["view"], 3: ["like"], 4: ["save"], 5: ["comment"], 6: ["like", "like"]}
        for action in singles.get(rest, []):
            self.content(day, sid, action)

    # -- time ------------------------------------------------------------------------------
    def advance_to(self, day: int) -> list[Signal]:
        """Call ``advance_time`` at midnight of every whole day up to ``day``; new signals."""
        assert self.state is not None, "apply an event first"
        first = int(self.state.high_water // DAY_S - START.timestamp() // DAY_S) + 1
        if self.clock_day is not None:
            first = max(first, self.clock_day + 1)
        fresh: list[Signal] = []
        for d in range(first, day + 1):
            outcome = self._record(advance_time(self.state, ts(d), self.rules, DETECTED_AT))
            fresh.extend(outcome.signals)
            self.clock_day = d
        return fresh

    # -- reading the results -----------------------------------------------------------------
    def of(self, signal_type: str) -> list[Signal]:
        return [s for s in self.signals if s.type == signal_type]

    def one(self, signal_type: str) -> Signal:
        found = self.of(signal_type)
        assert len(found) == 1, f"expected one {signal_type}, got {len(found)}: {found}"
        return found[0]

    def types(self) -> list[str]:
        return [s.type for s in self.signals]

    @property
    def tier(self) -> str | None:
        assert self.state is not None
        return self.state.tier
