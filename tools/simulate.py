"""``radar simulate``: write a seeded ABM world to JSONL, with its ground-truth labels.

The world itself is :mod:`tools.simulation` (pure); this module owns the files, the
progress bar and the summary. The demo calls :func:`simulate` in-process. Same arguments, same
bytes: nothing here reads the clock except to report how long it took.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

from tools.simulation import SimConfig, Simulation
from tools.simulation.run import DEFAULT_START


@dataclass(frozen=True)
class SimulationSummary:
    events_path: Path
    labels_path: Path
    accounts: int
    days: int
    seed: int
    lines: int  # everything written, bad lines included
    events: int  # valid events among them
    bad_lines: int
    late_events: int  # written after events that happened later
    churned: int
    expanded: int
    champion_departures: int
    bytes_written: int
    seconds: float
    per_type: dict[str, int] = field(default_factory=dict)
    bad_kinds: dict[str, int] = field(default_factory=dict)

    def render(self) -> str:
        """One line: what was written where."""
        return (
            f"simulated {self.accounts} accounts over {self.days} days (seed {self.seed}): "
            f"{self.events:,} events, {self.bad_lines:,} bad lines, {self.late_events:,} late; "
            f"{self.churned} churned, {self.expanded} expanded, "
            f"{self.champion_departures} champion departures; "
            f"events -> {self.events_path} ({self.bytes_written / 1e6:.1f} MB), "
            f"labels -> {self.labels_path} in {self.seconds:.1f}s"
        )


def default_labels_path(out: Path) -> Path:
    """``world.jsonl`` -> ``world.labels.jsonl``, next to it."""
    return out.with_name(f"{out.stem}.labels.jsonl")


def _write(stream: IO[str], lines: Iterable[str]) -> int:
    text = "".join(f"{line}\n" for line in lines)
    stream.write(text)
    return len(text)


def _label_line(label: dict[str, Any]) -> str:
    return json.dumps(label, separators=(",", ":"))


def simulate(
    out: str | Path,
    *,
    accounts: int = 200,
    days: int = 365,
    seed: int = 7,
    start: date = DEFAULT_START,
    bad_rate: float = 0.0,
    labels: str | Path | None = None,
    show_progress: bool = False,
) -> SimulationSummary:
    """Simulate the world day by day, streaming events and labels to disk."""
    from tqdm import tqdm

    started = time.perf_counter()
    config = SimConfig(accounts=accounts, days=days, seed=seed, start=start, bad_rate=bad_rate)
    events_path = Path(out)
    labels_path = Path(labels) if labels is not None else default_labels_path(events_path)
    if events_path.resolve() == labels_path.resolve():
        raise ValueError(f"events and labels would both go to {events_path}")
    sim = Simulation(config)
    written = 0
    events_path.parent.mkdir(parents=True, exist_ok=True)
    labels_path.parent.mkdir(parents=True, exist_ok=True)
    with events_path.open("w", encoding="utf-8", newline="\n") as events_file, \
            labels_path.open("w", encoding="utf-8", newline="\n") as labels_file, \
            tqdm(total=days, unit="day", desc="simulating", file=sys.stderr,
                 disable=not show_progress, leave=False) as bar:
        _write(labels_file, map(_label_line, sim.header_labels()))
        for day in sim.days():
            written += _write(events_file, day.lines)
            if day.labels:
                _write(labels_file, map(_label_line, day.labels))
            bar.update(1)
            bar.set_postfix(events=sim.tally.lines, refresh=False)
    t = sim.tally
    return SimulationSummary(
        events_path=events_path, labels_path=labels_path, accounts=accounts, days=days,
        seed=seed, lines=t.lines, events=t.events, bad_lines=t.bad_lines,
        late_events=t.late_events, churned=t.churned, expanded=t.expanded,
        champion_departures=t.champion_departures, bytes_written=written,
        seconds=time.perf_counter() - started, per_type=dict(sorted(t.per_type.items())),
        bad_kinds=dict(sorted(t.bad_kinds.items())),
    )


# -- argument types for the command line ------------------------------------------------------
def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None
