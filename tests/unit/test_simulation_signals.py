"""The simulated world trips the signal rules it was built for (SPEC sections 4 and 7).

The reduced world (20 accounts, 120 days, the default seed) is what CI's demo streams through
Kafka; here it goes through the pure engine instead, the way the signal stage drives it: events
in event-time order, and every account advanced once per day boundary the stream crosses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from processors.engine import advance_time, apply_event
from processors.rules import DEFAULT_RULES
from processors.state import DAY, AccountState, day_of
from schemas.decode import Rejection, decode_event
from schemas.events import InputEvent
from schemas.signals import CHURN_TYPES, EXPANSION_TYPES, Signal
from tools.simulation import SimConfig, Simulation

DETECTED_AT = datetime(2030, 1, 1, tzinfo=UTC)  # wall clock: never used for logic


def replay(events: Iterable[InputEvent], end: datetime) -> list[Signal]:
    """Every signal the engine fires for ``events``, swept day by day up to ``end``."""
    states: dict[str, AccountState] = {}
    signals: list[Signal] = []
    swept: int | None = None

    def sweep_to(today: int) -> None:
        nonlocal swept
        if swept is None:
            swept = today
        for day in range(swept + 1, today + 1):  # one sweep per midnight crossed
            for account_id in sorted(states):
                state = states[account_id]
                if state.evaluated_day is not None and state.evaluated_day >= day:
                    continue
                signals.extend(advance_time(state, day * DAY, DEFAULT_RULES, DETECTED_AT).signals)
        swept = max(swept, today)

    for e in sorted(events, key=lambda e: (e.occurred_at, e.event_id)):
        sweep_to(day_of(e.occurred_at.timestamp()))
        state, outcome = apply_event(states.get(e.account_id), e, DEFAULT_RULES, DETECTED_AT)
        states[e.account_id] = state
        signals.extend(outcome.signals)
    sweep_to(day_of(end.timestamp()))
    return signals


class Replayed:
    def __init__(self, config: SimConfig) -> None:
        sim = Simulation(config)
        self.labels = sim.header_labels()
        lines: list[str] = []
        for day in sim.days():
            lines += day.lines
            self.labels += day.labels
        decoded = [decode_event(line.encode(), 1 << 20) for line in lines]
        self.events = [e for e in decoded if not isinstance(e, Rejection)]
        end = datetime.fromisoformat(self.labels[0]["end"])
        self.signals = replay(self.events, end)
        self.types = Counter(s.type for s in self.signals)


@pytest.fixture(scope="module")
def reduced() -> Replayed:
    return Replayed(SimConfig(accounts=20, days=120))


def test_the_reduced_world_fires_every_signal_type(reduced: Replayed) -> None:
    missing = [t for t in CHURN_TYPES + EXPANSION_TYPES if reduced.types[t] == 0]
    assert missing == [], f"never fired: {missing}; fired: {dict(reduced.types)}"


def test_every_labelled_champion_departure_is_a_champion_left_signal(reduced: Replayed) -> None:
    labelled = {(x["account_id"], x["stakeholder_id"], datetime.fromisoformat(x["at"]))
                for x in reduced.labels if x["kind"] == "champion_left"}
    fired = {(s.account_id, s.stakeholder_id, s.occurred_at)
             for s in reduced.signals if s.type == "champion_left"}
    assert labelled and fired == labelled


def test_every_churn_was_preceded_by_renewal_risk_and_silence(reduced: Replayed) -> None:
    """A churning account goes quiet well before the renewal it does not renew."""
    churns = {x["account_id"]: datetime.fromisoformat(x["at"])
              for x in reduced.labels if x["kind"] == "churn"}
    assert churns
    for account, at in churns.items():
        before = {s.type for s in reduced.signals
                  if s.account_id == account and s.occurred_at < at}
        assert {"renewal_at_risk", "engagement_silence"} <= before, (account, before)


def test_every_expansion_was_preceded_by_expansion_signals(reduced: Replayed) -> None:
    expansions = [(x["account_id"], datetime.fromisoformat(x["at"]))
                  for x in reduced.labels if x["kind"] == "expansion"]
    assert expansions
    for account, at in expansions:
        before = {s.type for s in reduced.signals if s.account_id == account
                  and at - timedelta(days=90) <= s.occurred_at < at}
        assert {"engagement_surge", "pricing_page_visit"} <= before, (account, before)
