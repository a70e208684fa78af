"""What ``radar store`` needs of a database: one batch per table, stored once, whatever is
written again. ``sinks.clickhouse.ClickHouseWriter`` is the real one; ``MemorySink`` keeps the
same rows in dictionaries, for unit tests (tests/unit/test_store.py holds the two to the same
results)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from processors.ingest import AcceptedEvent
from schemas.dead_letter import DeadLetter
from schemas.notify import DeliveryRecord
from schemas.signals import Signal
from sinks.rows import STATUS_RANK, as_utc


@dataclass(frozen=True, slots=True)
class WriteResult:
    table: str
    offered: int  # rows handed to the writer
    written: int  # rows inserted (offered minus those already stored)
    seconds: float
    attempts: int


class Sink(Protocol):
    async def write_events(self, accepted: Sequence[AcceptedEvent]) -> WriteResult: ...

    async def write_dead_letters(self, letters: Sequence[tuple[DeadLetter, datetime]]
                                 ) -> WriteResult: ...

    async def write_signals(self, signals: Sequence[Signal]) -> WriteResult: ...

    async def write_account_state_lines(self, lines: Sequence[bytes]) -> WriteResult: ...

    async def write_deliveries(self, records: Sequence[DeliveryRecord]) -> WriteResult: ...


@dataclass
class MemorySink:
    """The tables as ClickHouse keeps them after merging: one event per id, one dead letter per
    id, the latest status per signal, the highest version per account, the latest record per
    delivery key."""

    events: dict[str, AcceptedEvent] = field(default_factory=dict)
    dead_letters: dict[str, DeadLetter] = field(default_factory=dict)
    signals: dict[str, Signal] = field(default_factory=dict)
    account_state: dict[str, dict[str, Any]] = field(default_factory=dict)
    alert_deliveries: dict[str, DeliveryRecord] = field(default_factory=dict)

    async def write_events(self, accepted: Sequence[AcceptedEvent]) -> WriteResult:
        fresh = {a.event.event_id: a for a in accepted if a.event.event_id not in self.events}
        self.events.update(fresh)
        return WriteResult("events", len(accepted), len(fresh), 0.0, 1)

    async def write_dead_letters(self, letters: Sequence[tuple[DeadLetter, datetime]]
                                 ) -> WriteResult:
        fresh = {dl.dead_letter_id: dl for dl, _ in letters
                 if dl.dead_letter_id not in self.dead_letters}
        self.dead_letters.update(fresh)
        return WriteResult("dead_letters", len(letters), len(fresh), 0.0, 1)

    async def write_signals(self, signals: Sequence[Signal]) -> WriteResult:
        written = 0
        for s in signals:
            known = self.signals.get(s.signal_id)
            if known is None or STATUS_RANK[s.status] > STATUS_RANK[known.status]:
                self.signals[s.signal_id] = s
                written += 1
        return WriteResult("signals", len(signals), written, 0.0, 1)

    async def write_account_state_lines(self, lines: Sequence[bytes]) -> WriteResult:
        for line in lines:
            row = json.loads(line)
            known = self.account_state.get(row["account_id"])
            if known is None or row["version"] >= known["version"]:
                self.account_state[row["account_id"]] = row
        return WriteResult("account_state", len(lines), len(lines), 0.0, 1)

    async def write_deliveries(self, records: Sequence[DeliveryRecord]) -> WriteResult:
        written = 0
        for r in records:
            known = self.alert_deliveries.get(r.key)
            if known is None or as_utc(r.recorded_at) > as_utc(known.recorded_at):
                self.alert_deliveries[r.key] = r
                written += 1
        return WriteResult("alert_deliveries", len(records), written, 0.0, 1)
