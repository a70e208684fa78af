"""What a rule module provides, by kind: the engine calls rules through these, typed.

Each rule is a module (``processors/churn``, ``processors/expansion``) whose functions match
one of these protocols; mypy checks every module against the protocol of the registry it is
listed in (``processors.engine``), so a rule with a wrong signature fails the type check
instead of failing at run time.
"""

from __future__ import annotations

from typing import Protocol

from processors.context import Context
from processors.engagement import Touch
from processors.rules import Rules
from processors.state import AccountState
from schemas.events import InputEvent
from schemas.signals import Signal


class Rule(Protocol):
    def check(self, ctx: Context) -> Signal | None:
        """The signal the rule fires in this context, if any."""


class EventRule(Rule, Protocol):
    """Fired by the event itself, judged against the state as the event found it."""

    def fires_on(self, event: InputEvent, touch: Touch) -> bool:
        """Whether ``check`` can fire on this event at all (the engine skips it otherwise)."""


class DeadlineRule(Rule, Protocol):
    """Fired when event time reaches a deadline; each episode once."""

    def due(self, s: AccountState, rules: Rules) -> float:
        """The earliest event time ``check`` can fire at, until the state changes."""

    def broken_by(self, signal: Signal, state: AccountState, event: InputEvent, touch: Touch,
                  t: float, rules: Rules) -> bool:
        """Whether a late event (time ``t``, applied to ``state``) proves ``signal``
        premature."""


class ConditionRule(Rule, Protocol):
    """Fired when a condition over the windows starts to hold."""

    def moved_by(self, ctx: Context) -> bool:
        """Whether this event can change the condition (else it is judged at day boundaries)."""
