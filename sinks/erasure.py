"""Erasure in ClickHouse: remove a person or an account from every table, count what went, and
keep a receipt that names the subject only by its hash (SPEC section 12).

Deletes are mutations run to completion (``mutations_sync = 2``): the parts are rewritten
without the rows, so nothing of the subject is left on disk once this returns, unlike a
lightweight ``DELETE``, which only masks rows until a merge. A signal that merely *mentions*
an erased person in its evidence (e.g. among "joined_since") is kept, with the id replaced by
``[erased]``; a signal *about* them (``stakeholder_id``) is removed. A dead letter whose raw
payload holds the id as a JSON string is removed: its bytes cannot be trusted to be parsed.
A delivery (``alert_deliveries``) names no person: those of the signals about one go with them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from processors.erasure import ERASED_MENTION, SubjectKind, subject_hash
from sinks.clickhouse import sql_strings

ERASED = ERASED_MENTION
MUTATION = {"mutations_sync": 2}


@dataclass(frozen=True, slots=True)
class Step:
    """One table's part of an erasure: rows matching ``where`` are deleted, or, with
    ``update``, rewritten."""

    table: str
    where: str
    update: str | None = None


def steps(kind: SubjectKind, subject_id: str) -> list[Step]:
    literal = sql_strings([subject_id])
    # the id as it stands in JSON text (evidence, raw payloads), quotes included
    quoted = sql_strings([json.dumps(subject_id)])
    if kind == "account":
        return [
            Step("events", f"account_id = {literal}"),
            Step("signals", f"account_id = {literal}"),
            Step("account_state", f"account_id = {literal}"),
            Step("dead_letters", f"message_key = {literal} OR position(payload, {quoted}) > 0"),
            Step("alert_deliveries", f"account_id = {literal}"),
        ]
    return [
        # a delivery names no person: those of the signals about them go, before those signals
        Step("alert_deliveries",
             f"signal_id IN (SELECT signal_id FROM signals WHERE stakeholder_id = {literal})"),
        Step("events", f"stakeholder_id = {literal}"),
        Step("signals", f"stakeholder_id = {literal}"),
        Step("signals", f"position(evidence, {quoted}) > 0",
             update=f"evidence = replaceAll(evidence, {quoted}, {sql_strings([json.dumps(ERASED)])})"),
        Step("account_state", f"has(champions, {literal})",
             update=f"champions = arrayFilter(c -> c != {literal}, champions)"),
        Step("dead_letters", f"position(payload, {quoted}) > 0"),
    ]


def erase(client: Client, kind: SubjectKind, subject_id: str,
          now: Callable[[], datetime]) -> dict[str, int]:
    """Remove the subject from every table that exists; record the receipt. Returns the rows
    removed (or, for mentions, redacted) per table, as the receipt holds them."""
    tables = {r[0] for r in client.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase()").result_rows}
    removed: dict[str, int] = {}
    for step in steps(kind, subject_id):
        if step.table not in tables:
            continue  # e.g. alert_deliveries before any notifier ran
        found = int(client.query(f"SELECT count() FROM {step.table} WHERE {step.where}")
                    .result_rows[0][0])
        name = step.table if step.update is None else f"{step.table} (redacted)"
        removed[name] = removed.get(name, 0) + found
        if not found:
            continue
        action = f"UPDATE {step.update}" if step.update else "DELETE"
        client.command(f"ALTER TABLE {step.table} {action} WHERE {step.where}", settings=MUTATION)
    receipt: list[Any] = [uuid.uuid4().hex, kind, subject_hash(kind, subject_id), removed, now()]
    client.insert("erasures", [receipt], column_names=["erasure_id", "subject_kind",
                                                      "subject_hash", "removed", "erased_at"])
    return removed


def render(kind: SubjectKind, removed: dict[str, int]) -> str:
    lines = [f"erased {kind}: rows removed per table"]
    lines += [f"  {table:<28} {n:>9,}" for table, n in sorted(removed.items())]
    return "\n".join(lines)
