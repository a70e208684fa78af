"""Input events (SPEC section 2) as the simulator writes them: ids, timestamps, field order.

An event is ``(epoch seconds, event_id, fields)``; the fields are exactly what goes on the wire.
Timestamps always carry an offset: the ad platforms and the website write ``Z``, the CRM and
the outreach tool ``+00:00``, as different source systems would.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

Event = tuple[int, str, dict[str, Any]]
Label = dict[str, Any]
DAY_S = 86_400


class Day:
    """One simulated day: its epoch second at midnight and the ISO date prefix of its stamps."""

    __slots__ = ("date", "index", "midnight", "prefix")

    def __init__(self, start: date, index: int, start_epoch: int) -> None:
        self.index = index
        self.date = start + timedelta(days=index)
        self.midnight = start_epoch + index * DAY_S
        self.prefix = self.date.isoformat() + "T"

    def stamp(self, second: int, suffix: str = "Z") -> tuple[int, str]:
        """Epoch seconds and RFC 3339 text of ``second`` seconds after this day's midnight."""
        h, rest = divmod(second, 3600)
        m, s = divmod(rest, 60)
        return self.midnight + second, f"{self.prefix}{h:02d}:{m:02d}:{s:02d}{suffix}"


def midnight_iso(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


class Ids:
    """Unique, deterministic event ids: the seed, the account and a per-account counter."""

    __slots__ = ("count", "prefix")

    def __init__(self, seed: int, account_id: str) -> None:
        self.prefix = f"sim{seed}-{account_id}-"
        self.count = 0

    def next(self) -> str:
        self.count += 1
        return f"{self.prefix}{self.count:06d}"
