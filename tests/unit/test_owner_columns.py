"""The account's owner reaches ClickHouse: ``account_state`` rows (as the worker puts them on
the account-state topic) carry it, ``events`` keep it for profiles, and ``radar db init`` adds
both columns to a database made before owners existed, where a new one has them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from processors.state import AccountState
from sinks.clickhouse import init_schema, json_insert, open_client
from sinks.rows import ACCOUNT_STATE_COLUMNS, AccountView, account_state_json, account_state_row
from sinks.schema import STATEMENTS, upgrade_statements

AT = datetime(2026, 3, 1, 10, tzinfo=UTC)
FIGURES: dict[str, Any] = {
    "champions": ["ana"], "score_7d": 1.0, "score_30d": 2.0, "score_90d": 3.0,
    "score_prior_30d": 0.5, "engaged_7d": 1, "engaged_30d": 1, "engaged_90d": 1,
    "reached_7d": 1, "reached_30d": 1, "reached_90d": 1, "functions_30d": ["technical"],
    "roster": 2,
}
OWNER_LINE = "        owner            String,\n"


def view(owner: str | None) -> AccountView:
    state = AccountState(account_id="acct-1", first_seen=AT.timestamp(),
                         high_water=AT.timestamp(), name="Acme", sector="energy", owner=owner)
    return AccountView(state, FIGURES, ["a reason"], "v1")


def table_columns(table: str) -> list[str]:
    statement = next(s for s in STATEMENTS if f"CREATE TABLE IF NOT EXISTS {table}\n" in s)
    body = statement.split("(", 1)[1].split("\n    )\n", 1)[0]
    return [line.split()[0].strip("`") for line in body.strip().splitlines()]


def test_account_state_columns_match_the_table() -> None:
    assert list(ACCOUNT_STATE_COLUMNS) == table_columns("account_state")
    assert "owner" in table_columns("events")


def test_the_state_row_carries_the_owner_and_an_empty_one_when_none() -> None:
    owned = dict(zip(ACCOUNT_STATE_COLUMNS, account_state_row(view("ana@example.com"), 7),
                     strict=True))
    assert (owned["name"], owned["owner"]) == ("Acme", "ana@example.com")
    assert json.loads(account_state_json(view("ana@example.com"), 7))["owner"] == \
        "ana@example.com"
    assert json.loads(account_state_json(view(None), 7))["owner"] == ""


def columns(client: Any, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in client.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
        f"AND table = '{table}' ORDER BY position").result_rows]


def test_db_init_adds_the_owner_to_a_database_made_before_owners(tmp_path: Path) -> None:
    old = open_client(f"chdb://{tmp_path / 'old'}")
    try:
        # the tables as schema 3 made them: without the owner
        for statement in STATEMENTS:
            if "CREATE TABLE IF NOT EXISTS events\n" in statement or \
                    "CREATE TABLE IF NOT EXISTS account_state\n" in statement:
                assert OWNER_LINE in statement
                old.command(statement.replace(OWNER_LINE, ""))
        line = json.loads(account_state_json(view("ana@example.com"), 3))
        del line["owner"]  # a worker of the previous version
        json_insert("account_state")(old, [json.dumps(line).encode()], {})
        assert "owner" not in dict(columns(old, "account_state"))
        assert len(upgrade_statements({(t, c) for t in ("events", "account_state")
                                       for c, _ in columns(old, t)})) >= 2

        init_schema(old)
        init_schema(old)  # and again: nothing left to add
        present = {(t, c) for t in ("events", "account_state") for c, _ in columns(old, t)}
        assert not [s for s in upgrade_statements(present) if "owner" in s]
        upgraded = {t: columns(old, t) for t in ("events", "account_state")}
        stored = old.query("SELECT name, owner FROM account_state FINAL").result_rows
        at_risk = [c for c, _ in columns(old, "at_risk_accounts")]
    finally:
        old.close()
    new = open_client(f"chdb://{tmp_path / 'new'}")
    try:
        init_schema(new)
        made = {t: columns(new, t) for t in ("events", "account_state")}
        # the worker's line, as radar store inserts it
        json_insert("account_state")(new, [account_state_json(view("ana@example.com"), 4)], {})
        owned = new.query("SELECT owner FROM account_state FINAL").result_rows
    finally:
        new.close()

    assert upgraded == made  # the same columns, types and places as a new database
    assert ("owner", "String") in made["account_state"]
    assert stored == [("Acme", "")]  # a row of before: no owner, not NULL
    assert owned == [("ana@example.com",)]
    assert at_risk[:3] == ["account_id", "name", "owner"]
