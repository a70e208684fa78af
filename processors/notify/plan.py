"""What ``radar notify`` does with one signal (SPEC section 10), given what it recorded before:
deliver it to each destination its routes select, once per (signal, destination); record it
as stale or snoozed instead of pushing it; send a follow-up where a signal delivered before
comes back withdrawn. Pure: the record of deliveries, the snoozes and the time are handed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from processors.notify.messages import idempotency_key
from processors.notify.routing import Snooze, Verdict, destinations_for, verdict
from schemas.notify import NotifyConfig

# the record of a (signal, destination): what became of it, by its key
Recorded = Callable[[str], str | None]


@dataclass(frozen=True)
class Planned:
    signal_id: str
    destination: str
    message: Literal["alert", "follow_up"]  # a follow-up says a delivered alert was withdrawn
    verdict: Verdict  # deliver, or record as stale / snoozed without pushing
    key: str  # the Idempotency-Key, and the key of its record


def follow_up_key(signal_id: str, destination: str) -> str:
    """The follow-up of a withdrawn alert is a message of its own: its key differs from the
    alert's (a receiver deduplicating by key would drop it otherwise)."""
    return f"{idempotency_key(signal_id, destination)}:withdrawn"


def age_from(signal: Mapping[str, Any]) -> datetime:
    """A signal is as old as the older of its event (``occurred_at``: a replay of last year's
    events is detected today, about last year) and its detection (``detected_at``, wall clock:
    a notifier that was down for a day)."""
    times = [datetime.fromisoformat(str(signal[k])) for k in ("occurred_at", "detected_at")
             if signal.get(k)]
    return min(times)


def plan(signal: Mapping[str, Any], owner: str | None, config: NotifyConfig,
         recorded: Recorded, snoozes: Iterable[Snooze], now: datetime) -> list[Planned]:
    """The deliveries and records one signal (as on ``radar.signals``) calls for now."""
    signal_id = str(signal["signal_id"])
    destinations = destinations_for(signal, owner, config.route)
    if signal.get("status") == "withdrawn":
        # only where the alert itself went out: a withdrawal nobody saw the alert of is news
        # to nobody; a follow-up goes once, whatever its age (it corrects what people read)
        return [Planned(signal_id, d, "follow_up", "deliver", follow_up_key(signal_id, d))
                for d in destinations
                if recorded(idempotency_key(signal_id, d)) == "delivered"
                and recorded(follow_up_key(signal_id, d)) is None]
    judged = verdict(signal, age_from(signal), now, config.max_age, snoozes)
    return [Planned(signal_id, d, "alert", judged, idempotency_key(signal_id, d))
            for d in destinations if recorded(idempotency_key(signal_id, d)) is None]
