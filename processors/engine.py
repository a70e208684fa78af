"""The signal engine for one account: apply an event, or let event time pass.

``apply_event`` updates the account's state with one event and returns the signals it fires;
``advance_time`` moves the account to a later event time (the partition's watermark) and fires
the deadline signals that time has reached. Both recompute the tier and report a change.
Everything is in event time; ``detected_at`` (wall clock) is handed in by the caller.

Deadline signals (silence, continuity gap, succession, renewal) are judged when event time
reaches their deadline, on the events up to it, and go out once event time is
``deadline_grace_hours`` past it (``release_due``); ``occurred_at`` stays the deadline. A late
event (older than the account's event time, within the allowed lateness) that proves one
premature — a reply within a silence — cancels it while it waits, or withdraws it once out:
the same signal, ``status`` "withdrawn", with the event in its evidence. The tier is judged
again either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from processors.churn import (
    champion_left,
    continuity_gap,
    engagement_drop,
    engagement_silence,
    key_contact_changed,
    renewal_at_risk,
    single_threaded,
    succession_overdue,
)
from processors.context import Before, Context, to_datetime
from processors.engagement import Touch, touch_of
from processors.expansion import (
    champion_advocacy,
    engagement_surge,
    multi_threaded,
    new_stakeholder_engaged,
    pricing_page_visit,
    reference_candidate,
)
from processors.rule_types import ConditionRule, DeadlineRule, EventRule, Rule
from processors.rules import Rules
from processors.state import (
    DAY,
    EPOCH_ORDINAL,
    SCORE_DAYS_KEPT,
    AccountState,
    ChampionDeparture,
    StakeholderState,
    day_of,
    trim_days,
)
from processors.tiers import tier_of
from schemas.events import AccountProfile, InputEvent, RoleChange
from schemas.signals import Signal, TierChange

# fired by the event itself, judged against the state as the event found it
EVENT_RULES: tuple[EventRule, ...] = (
    champion_left, key_contact_changed, new_stakeholder_engaged, champion_advocacy,
    pricing_page_visit,
)
# fired when event time reaches a deadline; each episode once
DEADLINE_RULES: tuple[DeadlineRule, ...] = (
    engagement_silence, continuity_gap, succession_overdue, renewal_at_risk,
)
# fired when a condition over the windows starts to hold
CONDITION_RULES: tuple[ConditionRule, ...] = (
    engagement_drop, single_threaded, engagement_surge, multi_threaded, reference_candidate,
)
RECENT_EVENTS_KEPT = 10
CHURN_HISTORY_DAYS = 120


@dataclass
class Outcome:
    signals: list[Signal] = field(default_factory=list)
    tier_change: TierChange | None = None
    late: bool = False  # beyond the allowed lateness: counted, changed nothing
    duplicate: bool = False  # already applied (a redelivery): changed nothing
    withdrawn: list[Signal] = field(default_factory=list)  # out, and proved premature
    cancelled: list[Signal] = field(default_factory=list)  # proved premature before going out


def new_account(account_id: str, event_time: float) -> AccountState:
    return AccountState(account_id=account_id, first_seen=event_time, high_water=event_time)


def event_time(state: AccountState) -> float:
    """The account's event time as received: its latest event, or the latest midnight the day
    sweeps judged it at, whichever is later. Lateness is counted back from it."""
    if state.evaluated_day is None:
        return state.high_water
    return max(state.high_water, state.evaluated_day * DAY)


def apply_event(
    state: AccountState | None, event: InputEvent, rules: Rules, detected_at: datetime,
    t: float | None = None,
) -> tuple[AccountState, Outcome]:
    """``t``: the event's time as a timestamp, when the caller has it already."""
    if t is None:
        t = event.occurred_at.timestamp()
    if state is None:
        state = new_account(event.account_id, t)
    outcome = Outcome()
    lateness = rules.engagement.allowed_lateness_days * DAY
    if event.event_id in state.recent_ids:
        outcome.duplicate = True
        return state, outcome
    if t < event_time(state) - lateness:
        state.late_ignored += 1
        outcome.late = True
        return state, outcome
    if t > state.high_water and t >= state.deadline_due:
        # deadlines that passed before this event are judged first, at their own time
        _run_deadlines(Context(state, rules, t, detected_at), outcome)
    state.recent_ids[event.event_id] = t
    before = _before(state, event)
    touch = touch_of(event, rules.weights)
    _update(state, event, touch, t)
    if touch.engaged or touch.exposed:
        # a touch may begin a new silence or gap (the last one fired): due no sooner than this
        state.deadline_due = min(state.deadline_due, t + _touch_floor(rules))
    if state.parked or state.watched:  # judged by the sweeps, maybe ahead of high_water
        _recheck(state, event, touch, t, rules, detected_at, outcome)
    state.high_water = max(state.high_water, t)
    if not touch.engaged and not touch.public and not outcome.signals and \
            not outcome.withdrawn and not outcome.cancelled and \
            not (state.parked and _next_release(state) <= state.high_water) and \
            day_of(state.high_water) == state.checked_day and \
            state.high_water < state.deadline_due and \
            not isinstance(event, (RoleChange, AccountProfile)) and \
            not any(rule.fires_on(event, touch) for rule in EVENT_RULES):
        # exposure only (most events: an ad impression), on a day already judged, before any
        # deadline: no rule can fire and no condition or tier can move (see the rule modules'
        # ``fires_on`` and ``moved_by``)
        return state, outcome
    ctx = Context(state, rules, state.high_water, detected_at, event, before, touch, t)
    _run(ctx, EVENT_RULES, outcome)
    if ctx.now >= state.deadline_due:
        _run_deadlines(ctx, outcome)
    # conditions and the tier are judged on the first event of a day (and at each day
    # boundary, advance_time) and on every event that can move them; the rest — most events:
    # a view, an impression, one more reply from someone already engaged — skip them
    new_day = day_of(ctx.now) != state.checked_day
    for rule in CONDITION_RULES:
        if new_day or rule.moved_by(ctx):
            _run(ctx, (rule,), outcome)
    if state.parked:
        outcome.signals.extend(release_due(state, ctx.now, detected_at))
    if new_day or outcome.signals or outcome.withdrawn or outcome.cancelled or \
            isinstance(event, (RoleChange, AccountProfile)) or \
            ctx.newly_engaged(rules.tiers.expansion_window_days):
        _finish(ctx, outcome)
    return state, outcome


def advance_time(
    state: AccountState, now: float, rules: Rules, detected_at: datetime
) -> Outcome:
    """Let event time reach ``now``: deadline and window conditions are judged at that time."""
    outcome = Outcome()
    at = max(now, state.high_water)
    ctx = Context(state, rules, at, detected_at)
    if at >= state.deadline_due:
        _run_deadlines(ctx, outcome)
    _run(ctx, CONDITION_RULES, outcome)
    if state.parked:
        outcome.signals.extend(release_due(state, at, detected_at))
    state.evaluated_day = day_of(at)
    _finish(ctx, outcome)
    return outcome


def pass_quiet_days(state: AccountState, through_day: int, rules: Rules) -> None:
    """Let event time pass the midnights after the account was last judged, up to
    ``through_day``, on none of which ``advance_time`` can fire a signal or change the tier or a
    condition (``processors.sweep.next_change_day`` finds them). What judging them would leave
    is left in constant time: the last of them marked judged, its day's trimming, and the
    stakeholders' days trimmed as on the last seventh day passed. A trim with a later cutoff
    drops all that the earlier ones would have, so the state is the day-by-day one."""
    now = max(through_day * DAY, state.high_water)
    today = day_of(now)
    state.evaluated_day = today
    last = state.checked_day
    if today == last:
        return
    week_day = today - today % 7  # the last day the stakeholders' days were trimmed on
    if last is not None and last < week_day < today:
        for st in state.stakeholders.values():
            trim_days(st.score_days, week_day, SCORE_DAYS_KEPT)
    _tidy(state, today, now, rules)


def _run(ctx: Context, rules: Sequence[Rule], outcome: Outcome) -> None:
    for rule in rules:
        # a deadline rule may have several episodes due (e.g. two departures): drain it
        while (signal := rule.check(ctx)) is not None:
            if signal.category == "churn":
                ctx.state.churn_history.append(
                    (signal.type, signal.severity, signal.occurred_at.timestamp()))
            if rule not in DEADLINE_RULES:
                outcome.signals.append(signal)
                break
            _park(ctx.state, signal, ctx.rules)


# -- grace and withdrawals ------------------------------------------------------------------

DEADLINE_RULE_OF: dict[str, DeadlineRule] = {
    "engagement_silence": engagement_silence, "continuity_gap": continuity_gap,
    "succession_overdue": succession_overdue, "renewal_at_risk": renewal_at_risk}


def _park(state: AccountState, signal: Signal, rules: Rules) -> None:
    at = signal.occurred_at.timestamp()
    state.parked.append({"at": at, "release": at + rules.engagement.deadline_grace_hours * 3600,
                         "signal": signal.model_dump(mode="json")})


def release_due(state: AccountState, now: float, detected_at: datetime) -> list[Signal]:
    """The parked deadline signals whose grace has passed at event time ``now``: they go out
    (detected now) and are watched until nothing older than them can be accepted."""
    if not state.parked or _next_release(state) > now:
        return []
    out: list[Signal] = []
    kept: list[dict[str, Any]] = []
    for record in state.parked:
        if record["release"] > now:
            kept.append(record)
            continue
        signal = Signal.model_validate(record["signal"]).model_copy(
            update={"detected_at": detected_at})
        out.append(signal)
        state.watched.append({**record, "signal": signal.model_dump(mode="json")})
    state.parked = kept
    return out


def _next_release(state: AccountState) -> float:
    return min(float(r["release"]) for r in state.parked)


def _recheck(state: AccountState, event: InputEvent, touch: Touch, t: float, rules: Rules,
             detected_at: datetime, outcome: Outcome) -> None:
    """An event older than deadline signals judged already (late for the account, or behind
    the day sweeps): those it proves premature are cancelled (parked) or withdrawn (out)."""
    for records, broken in ((state.parked, outcome.cancelled),
                            (state.watched, outcome.withdrawn)):
        for record in [r for r in records if t < r["at"]]:
            signal = Signal.model_validate(record["signal"])
            if not DEADLINE_RULE_OF[signal.type].broken_by(signal, state, event, touch, t, rules):
                continue
            records.remove(record)
            at = signal.occurred_at.timestamp()
            if (signal.type, signal.severity, at) in state.churn_history:
                state.churn_history.remove((signal.type, signal.severity, at))
            broken.append(signal.model_copy(update={
                "status": "withdrawn", "withdrawn_at": detected_at,
                "evidence": {**signal.evidence, "withdrawn_by": {
                    "event_id": event.event_id, "type": event.type,
                    "occurred_at": to_datetime(t).isoformat()}}}))


def deadline_due(state: AccountState, rules: Rules) -> float:
    """The earliest event time any deadline rule can fire at, as the state is now."""
    due: float = min(rule.due(state, rules) for rule in DEADLINE_RULES)
    return due


def _touch_floor(rules: Rules) -> float:
    return min(rules.churn.engagement_silence.days, rules.churn.continuity_gap.days) * DAY


def _run_deadlines(ctx: Context, outcome: Outcome) -> None:
    """Deadline rules are judged only from their earliest due time on: most events and day
    sweeps come before it. Time passing cannot bring a due time forward; a change of the
    state that can — a profile, a role change, a touch after a fired silence or gap — brings
    it back (``apply_event``, ``_update``)."""
    _run(ctx, DEADLINE_RULES, outcome)
    ctx.state.deadline_due = deadline_due(ctx.state, ctx.rules)


def _finish(ctx: Context, outcome: Outcome) -> None:
    state, rules, now, detected_at = ctx.state, ctx.rules, ctx.now, ctx.detected_at
    tier, reasons = tier_of(state, now, rules,
                            engaged=ctx.engaged(rules.tiers.expansion_window_days),
                            champions=ctx.champions)
    if tier != state.tier:
        outcome.tier_change = TierChange(
            account_id=state.account_id, tier=tier, previous_tier=state.tier,  # type: ignore[arg-type]
            occurred_at=to_datetime(now), detected_at=detected_at, rule_version=rules.version,
            reasons=reasons,
        )
        state.tier = tier
    today = day_of(now)
    if today != state.checked_day:
        _tidy(state, today, now, rules)


def _tidy(state: AccountState, today: int, now: float, rules: Rules) -> None:
    """Once a day: what has fallen out of every window is dropped (every stakeholder's days
    once a week: they only take room, windows are summed by date)."""
    state.checked_day = today
    trim_days(state.score_days, today, SCORE_DAYS_KEPT)
    if today % 7 == 0:
        for st in state.stakeholders.values():
            trim_days(st.score_days, today, SCORE_DAYS_KEPT)
    horizon = now - CHURN_HISTORY_DAYS * DAY
    state.churn_history = [h for h in state.churn_history if h[2] >= horizon]
    if state.watched:  # final once no event older than them can be accepted any more
        accepted_from = event_time(state) - rules.engagement.allowed_lateness_days * DAY
        state.watched = [r for r in state.watched if r["at"] > accepted_from]
    oldest = state.high_water - (rules.engagement.allowed_lateness_days + 1) * DAY
    if any(t < oldest for t in state.recent_ids.values()):
        state.recent_ids = {i: t for i, t in state.recent_ids.items() if t >= oldest}


def _before(state: AccountState, event: InputEvent) -> Before | None:
    sid = getattr(event, "stakeholder_id", None)
    if sid is None:
        return None
    st = state.stakeholders.get(sid)
    # the event is the person's latest role_change: if it names them champion, they are one
    named = isinstance(event, RoleChange) and event.buying_role == "champion"
    return Before(
        known=st is not None,
        was_champion=named or state.is_champion(sid),
        buying_role=None if st is None else st.buying_role,
        title=None if st is None else st.title,
        last_engaged=None if st is None else st.last_engaged,
    )


def _later(current: float | None, t: float) -> bool:
    return current is None or t >= current


def _update(state: AccountState, event: InputEvent, touch: Touch, t: float) -> None:
    if isinstance(event, (AccountProfile, RoleChange)):
        state.deadline_due = 0.0  # a new renewal date or tier, or a departure: judge again
    if isinstance(event, AccountProfile):
        if _later(state.profile_at, t):  # the latest snapshot wins
            state.profile_at = t
            state.name, state.sector, state.tier_level = event.name, event.sector, event.tier
            state.owner = event.owner  # a snapshot without one: the CRM cleared it
            state.renewal_day = event.renewal_date.toordinal() - EPOCH_ORDINAL
            state.arr = event.arr
            state.profile_champions = list(event.champion_ids)
        return
    sid = event.stakeholder_id
    st = state.stakeholders.get(sid)
    if st is None:
        st = state.stakeholders[sid] = StakeholderState(first_seen=t)
    if isinstance(event, RoleChange):
        _role_change(state, sid, st, event, t)
    if touch.exposed:
        if _later(st.last_exposed, t):
            st.last_exposed = t
        if _later(state.last_exposed, t):
            state.last_exposed, state.last_exposed_event = t, event.event_id
    if touch.exposed or touch.engaged:
        st.first_reached = t if st.first_reached is None else min(st.first_reached, t)
    if touch.engaged:
        day = day_of(t)
        st.score_days[day] = st.score_days.get(day, 0.0) + touch.points
        state.score_days[day] = state.score_days.get(day, 0.0) + touch.points
        if state.window_base and day < state.window_base[0]:
            state.window_base.clear()  # a late event changed a day the memo had summed
        if _later(st.last_engaged, t):
            st.last_engaged, st.last_engaged_event = t, event.event_id
        if _later(state.last_engaged, t):
            state.last_engaged, state.last_engaged_event = t, event.event_id
        state.recent_engagement_events.append(event.event_id)
        del state.recent_engagement_events[:-RECENT_EVENTS_KEPT]
    if touch.public and _later(st.last_public, t):
        st.last_public = t


def _role_change(state: AccountState, sid: str, st: StakeholderState, e: RoleChange,
                 t: float) -> None:
    was_champion = state.is_champion(sid) or e.buying_role == "champion"
    st.title, st.function, st.seniority, st.buying_role = (
        e.title, e.function, e.seniority, e.buying_role)
    if e.change == "left":
        st.on_roster, st.left_at = False, t
        if was_champion:
            state.departures.append(ChampionDeparture(sid, t, e.event_id))
    else:
        st.on_roster = True
        if e.change == "joined":
            st.joined_at = t
