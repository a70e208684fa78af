"""What the real feeds do to clean events: some arrive late, some arrive broken.

About 0.5% of touches (impressions, replies, content interactions) are written hours to days
after their event time, a very few beyond the pipeline's 7-day allowed lateness. With a bad
rate, lines are replaced by malformed ones (broken JSON, naive timestamps, unknown types or
schema versions, missing fields) so the dead-letter path is exercised. Role changes and CRM
profiles are never delayed or broken: they carry the ground truth the labels refer to.
"""

from __future__ import annotations

import heapq
import json
import random
from collections import Counter
from typing import Any

from tools.simulation.events import DAY_S, Event

TOUCH_TYPES = frozenset({"ad_impression", "outreach_reply", "content_interaction"})
LATE_RATE = 0.005
BAD_KINDS = ("broken_json", "naive_timestamp", "unknown_type", "schema_version", "missing_field")
UNKNOWN_TYPES = ("webinar_attendance", "email_open", "intent_surge")
REQUIRED: dict[str, tuple[str, ...]] = {
    "ad_impression": ("campaign_id", "creative_id", "channel"),
    "outreach_reply": ("sequence_id", "channel", "reply_kind"),
    "content_interaction": ("content_id", "action"),
}
ENVELOPE = ("event_id", "occurred_at", "account_id", "stakeholder_id", "type")


def to_line(fields: dict[str, Any]) -> str:
    return json.dumps(fields, separators=(",", ":"))


def late_delay(rng: random.Random) -> int:
    """Seconds between an event's time and its place in the file."""
    r = rng.random()
    if r < 0.9:
        return rng.randint(2 * 3600, 4 * DAY_S)
    if r < 0.98:
        return rng.randint(4 * DAY_S, 7 * DAY_S)
    return rng.randint(8 * DAY_S, 14 * DAY_S)  # beyond the allowed lateness


def corrupt(fields: dict[str, Any], rng: random.Random) -> tuple[str, str]:
    """A malformed line made from a good event, and what is wrong with it."""
    kind = rng.choice(BAD_KINDS)
    broken = dict(fields)
    if kind == "broken_json":
        text = to_line(fields)
        return text[: rng.randint(1, len(text) - 2)], kind  # a proper prefix of an object
    if kind == "naive_timestamp":
        broken["occurred_at"] = fields["occurred_at"][:19]
    elif kind == "unknown_type":
        broken["type"] = rng.choice(UNKNOWN_TYPES)
    elif kind == "schema_version":
        broken["schema_version"] = rng.choice((0, 2, 3))
    else:
        del broken[rng.choice(ENVELOPE + REQUIRED[fields["type"]])]
    return to_line(broken), kind


class Noise:
    """Per run: holds the late events until their turn, and breaks lines at ``bad_rate``."""

    def __init__(self, seed: int, bad_rate: float, late_rate: float = LATE_RATE) -> None:
        self.rng = random.Random(f"radar-simulate:{seed}:noise")
        self.bad_rate = bad_rate
        self.late_rate = late_rate
        self.held: list[Event] = []  # (written at, event_id, fields): a heap
        self.late = 0
        self.bad: Counter[str] = Counter()
        self.owed = 0  # bad lines drawn on a line that must stay intact, placed on the next touch

    def day(self, events: list[Event], day_end: int) -> list[tuple[str, str | None]]:
        """The day's lines in file order, each with the type of the event it carries (None for
        a malformed line). ``events`` are the day's events; ``day_end`` its last second + 1."""
        rng = self.rng
        events.sort(key=_order)
        ready: list[Event] = []
        for event in events:
            if event[2]["type"] in TOUCH_TYPES and rng.random() < self.late_rate:
                heapq.heappush(self.held, (event[0] + late_delay(rng), event[1], event[2]))
                self.late += 1
            else:
                ready.append(event)
        if self.held and self.held[0][0] < day_end:
            while self.held and self.held[0][0] < day_end:
                ready.append(heapq.heappop(self.held))
            ready.sort(key=_order)
        return [self._line(e[2]) for e in ready]

    def flush(self) -> list[tuple[str, str | None]]:
        """Late events whose turn would come after the last day."""
        rest = sorted(self.held, key=_order)
        self.held = []
        return [self._line(e[2]) for e in rest]

    def _line(self, fields: dict[str, Any]) -> tuple[str, str | None]:
        if self.bad_rate > 0:
            if self.rng.random() < self.bad_rate:
                self.owed += 1
            if self.owed and fields["type"] in TOUCH_TYPES:
                self.owed -= 1
                line, kind = corrupt(fields, self.rng)
                self.bad[kind] += 1
                return line, None
        return to_line(fields), fields["type"]


def _order(event: Event) -> tuple[int, str]:
    return event[0], event[1]
