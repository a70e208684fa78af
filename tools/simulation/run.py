"""The simulation as a stream of days: each day's lines (in file order) and ground-truth labels.

Only per-account state and the few late events still in flight are held in memory, so any
number of days streams in bounded memory; the caller decides where the lines go.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from tools.simulation.behaviour import AccountLife
from tools.simulation.events import DAY_S, Day, Event, Label, midnight_iso
from tools.simulation.noise import LATE_RATE, Noise
from tools.simulation.plans import plan_account, scenarios

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
DEFAULT_START = date(2025, 1, 1)


@dataclass(frozen=True, slots=True)
class SimConfig:
    accounts: int = 200
    days: int = 365
    seed: int = 7
    start: date = DEFAULT_START
    bad_rate: float = 0.0
    late_rate: float = LATE_RATE

    def __post_init__(self) -> None:
        if self.accounts < 1:
            raise ValueError(f"accounts must be at least 1, got {self.accounts}")
        if self.days < 1:
            raise ValueError(f"days must be at least 1, got {self.days}")
        for name, rate in (("bad rate", self.bad_rate), ("late rate", self.late_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate}")


@dataclass(slots=True)
class DayOutput:
    day: int
    lines: list[str]
    labels: list[Label]


@dataclass
class Tally:
    lines: int = 0
    events: int = 0  # valid events written (bad lines excluded)
    bad_lines: int = 0
    late_events: int = 0
    per_type: Counter[str] = field(default_factory=Counter)
    bad_kinds: Counter[str] = field(default_factory=Counter)
    churned: int = 0
    expanded: int = 0
    champion_departures: int = 0


class Simulation:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.tally = Tally()
        world_rng = random.Random(f"radar-simulate:{config.seed}:world")
        start_ordinal = config.start.toordinal()
        self.lives = [
            AccountLife(plan_account(i, config.seed, config.days, scenario),
                        random.Random(f"radar-simulate:{config.seed}:life:{i}"),
                        config.seed, start_ordinal)
            for i, scenario in enumerate(scenarios(config.accounts, world_rng))
        ]
        self.noise = Noise(config.seed, config.bad_rate, config.late_rate)
        self.start_epoch = (start_ordinal - EPOCH_ORDINAL) * DAY_S

    def header_labels(self) -> list[Label]:
        """The ``world`` line, then one ``account`` line per account (schemas.labels)."""
        c = self.config
        labels: list[Label] = [{
            "kind": "world", "seed": c.seed, "accounts": c.accounts, "days": c.days,
            "start": midnight_iso(c.start), "end": midnight_iso(c.start + timedelta(days=c.days)),
        }]
        for life in self.lives:
            p = life.plan
            labels.append({"kind": "account", "account_id": p.account_id, "name": p.name,
                           "tier": p.tier, "sector": p.sector, "arr": p.arr,
                           "trajectory": p.trajectory})
        return labels

    def days(self) -> Iterator[DayOutput]:
        c = self.config
        for index in range(c.days):
            day = Day(c.start, index, self.start_epoch)
            events: list[Event] = []
            labels: list[Label] = []
            for life in self.lives:
                life.live(day, events, labels)
            lines = self.noise.day(events, day.midnight + DAY_S)
            if index == c.days - 1:
                lines += self.noise.flush()
            yield DayOutput(index, self._count(lines), labels)
            self._count_labels(labels)
        self.tally.late_events = self.noise.late
        self.tally.bad_kinds = Counter(self.noise.bad)

    def _count(self, lines: list[tuple[str, str | None]]) -> list[str]:
        t = self.tally
        t.lines += len(lines)
        for _, kind in lines:
            if kind is None:
                t.bad_lines += 1
            else:
                t.per_type[kind] += 1
        t.events = t.lines - t.bad_lines
        return [line for line, _ in lines]

    def _count_labels(self, labels: list[Label]) -> None:
        for label in labels:
            kind = label["kind"]
            if kind == "churn":
                self.tally.churned += 1
            elif kind == "expansion":
                self.tally.expanded += 1
            elif kind == "champion_left":
                self.tally.champion_departures += 1
