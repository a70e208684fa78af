"""Which destinations a signal goes to (SPEC section 10), and whether it goes now at all.
Pure: the signal, its account's owner, the routes, the snoozes and the time are handed in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from schemas.notify import SEVERITY_RANK, Route
from schemas.signals import ALERT_TYPES

# what becomes of a (signal, destination): pushed now, or recorded and not pushed
Verdict = Literal["deliver", "stale", "snoozed"]


def is_alert(signal: Mapping[str, Any]) -> bool:
    """What a route without ``types`` takes: critical signals and the alert types."""
    return signal.get("severity") == "critical" or signal.get("type") in ALERT_TYPES


def matches(route: Route, signal: Mapping[str, Any], owner: str | None) -> bool:
    if route.types is None:
        if not is_alert(signal):
            return False
    elif signal.get("type") not in route.types:
        return False
    if route.min_severity is not None and \
            SEVERITY_RANK.get(str(signal.get("severity")), -1) < SEVERITY_RANK[route.min_severity]:
        return False
    return route.owners is None or owner in route.owners


def destinations_for(signal: Mapping[str, Any], owner: str | None,
                     routes: Sequence[Route]) -> list[str]:
    """Every destination of a route the signal matches, once each, in the routes' order."""
    found: list[str] = []
    for route in routes:
        if route.destination not in found and matches(route, signal, owner):
            found.append(route.destination)
    return found


@dataclass(frozen=True)
class Snooze:
    """``radar snooze ACCOUNT_ID --days N [--type T]``: that account's deliveries held."""

    account_id: str
    until: datetime
    type: str | None = None  # every type when None


def snoozed(signal: Mapping[str, Any], snoozes: Iterable[Snooze], now: datetime) -> bool:
    return any(s.account_id == signal.get("account_id") and now < s.until and
               (s.type is None or s.type == signal.get("type")) for s in snoozes)


def verdict(signal: Mapping[str, Any], detected_at: datetime, now: datetime,
            max_age: timedelta, snoozes: Iterable[Snooze]) -> Verdict:
    """A signal detected longer than ``max_age`` ago (a replay, a notifier that was down for
    a day) is stale: recorded, never pushed; a snoozed account's is held. A withdrawal of a
    delivered signal is judged as the signal was (the caller knows what was delivered)."""
    if now - detected_at > max_age:
        return "stale"
    if snoozed(signal, snoozes, now):
        return "snoozed"
    return "deliver"
