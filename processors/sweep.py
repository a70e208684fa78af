"""The day sweep: event time passing over every account of a partition at once.

When a partition's event time enters a new day, each of its accounts is judged at every
midnight passed (``advance_time``), so the time-based signals fire on their own day, as in a
day-by-day replay. Judging every account on every day would make a jump in event time cost
accounts x days: one event dated in year 9999 would be three million days. So each account is
judged only on the days on which time alone can change something for it — a deadline falling
due, a window dropping a day of activity or someone's last engagement, a threshold of a
condition or of the tier being crossed — and on the last day; the days in between are passed in
constant time (``pass_quiet_days``). The accounts are judged in the day-by-day order (by day,
then account id), so the signals, tier changes and states are those of the day-by-day sweep.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime

from processors.engine import DEADLINE_RULES, Outcome, advance_time, pass_quiet_days
from processors.rules import Rules
from processors.state import DAY, AccountState, day_of
from processors.tiers import SERIOUS

# a margin for rounding: a threshold this close to a judgement may still be crossed after it
MARGIN_S = 1.0
# the drop and surge conditions compare the trailing 30 days with the 30 before
# (Context.last_and_prior_30) once the account has been watched for 60 days
PRIOR_WINDOW_DAYS = 30
DROP_SURGE_OBSERVED_DAYS = 60


def sweep(states: Mapping[str, AccountState], first_day: int, last_day: int, rules: Rules,
          detected_at: datetime) -> Iterator[tuple[str, Outcome]]:
    """Judge the accounts at the midnights from ``first_day`` to ``last_day``, each on the days
    that can change something for it and on ``last_day``, skipping the days it was judged on
    already; the outcomes come in day-by-day order."""
    queue: list[tuple[int, str]] = []
    for account_id, state in states.items():
        day = first_day if state.evaluated_day is None else \
            max(first_day, state.evaluated_day + 1)
        if day <= last_day:
            queue.append((day, account_id))
    heapq.heapify(queue)
    while queue:
        day, account_id = heapq.heappop(queue)
        state = states[account_id]
        yield account_id, advance_time(state, day * DAY, rules, detected_at)
        judged = state.evaluated_day if state.evaluated_day is not None else day
        if judged >= last_day:
            continue
        change = next_change_day(state, judged, rules)
        after = last_day if change is None else min(change, last_day)
        if after - 1 > judged:
            pass_quiet_days(state, after - 1, rules)
        heapq.heappush(queue, (after, account_id))


def last_judged_day(states: Iterable[AccountState | None], today: int) -> int | None:
    """Where a partition's first sweep starts: the earliest day its accounts were last judged
    on (none after ``today``), or None when none was ever judged (a new partition)."""
    days = [s.evaluated_day for s in states if s is not None and s.evaluated_day is not None]
    return min(min(days), today) if days else None


def next_change_day(state: AccountState, day: int, rules: Rules) -> int | None:
    """The first day after ``day`` — the day the account was just judged on — whose midnight
    judgement can differ from that one (None: time alone changes nothing any more).

    It may be earlier than need be (a day judged for nothing costs one judgement), never later.
    Between events, the account's figures move only with time: a deadline rule can fire only
    from its due time; a condition or the tier can only change where one of its inputs does,
    a window of points dropping a day, a stakeholder's last engagement or public act leaving a
    window, the account's silence, a churn signal ageing out of the tier's memory, or the
    account having been watched long enough for a window to count.
    """
    at = max(day * DAY, state.high_water)  # what advance_time judged at
    moments: list[float] = []
    # deadline rules, judged as if the account's event time had reached ``at``: a rule due
    # already but not fired (e.g. a gap that must exceed its length) is judged the next day
    reached = replace(state, high_water=at)
    for rule in DEADLINE_RULES:
        due = rule.due(reached, rules)
        if due <= at:
            return day + 1
        moments.append(due)  # math.inf when it cannot fire any more
    # thresholds of the conditions and the tier: each changes one input once, at a moment
    c, e, t = rules.churn, rules.expansion, rules.tiers
    engaged_windows = {c.single_threaded.window_days, e.multi_threaded.window_days,
                       e.reference_candidate.window_days, t.expansion_window_days}
    for window in (*engaged_windows, DROP_SURGE_OBSERVED_DAYS):
        moments.append(state.first_seen + window * DAY)  # watched long enough to count
    for score_day in state.score_days:  # its points move to the prior window, then leave it
        moments.extend(((score_day + PRIOR_WINDOW_DAYS) * DAY,
                        (score_day + 2 * PRIOR_WINDOW_DAYS) * DAY))
    for st in state.stakeholders.values():
        if st.on_roster and st.last_engaged is not None:
            moments.extend(st.last_engaged + w * DAY for w in engaged_windows)
        if st.last_public is not None:
            moments.append(st.last_public + e.reference_candidate.champion_public_days * DAY)
    since = state.last_engaged if state.last_engaged is not None else state.first_seen
    moments.append(since + t.at_risk_silence_days * DAY)
    moments.extend(record["release"] for record in state.parked)  # a grace passing
    moments.extend(at_ + t.at_risk_signal_days * DAY
                   for _, severity, at_ in state.churn_history if severity in SERIOUS)
    # a moment judged already (with the margin) changes nothing after it
    nearest = min((m for m in moments if m > at - MARGIN_S), default=math.inf)
    if nearest == math.inf:
        return None
    # the first midnight that may be past it
    return max(day + 1, day_of(nearest - MARGIN_S) + 1)
