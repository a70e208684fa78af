"""``alert_deliveries``: radar notify's record of each delivery (``schemas.notify.DeliveryRecord``
on the deliveries topic) becomes one row per Idempotency-Key in ClickHouse through ``radar
store``: read twice, stored once; a newer record of a key replaces the older; a record that is
not one is counted and kept out; an erasure takes an account's (or a person's) deliveries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from conftest import store_in_memory

from processors.erasure import Erased, subject_hash
from schemas.notify import DeliveryRecord
from sinks.clickhouse import ClickHouseWriter, open_client
from sinks.erasure import erase
from sinks.rows import DELIVERY_COLUMNS, delivery_id, delivery_problem, delivery_row
from sinks.schema import STATEMENTS
from streams.metrics import Metrics
from streams.settings import load_settings
from streams.store import Record, Store

SETTINGS = load_settings({})
TOPIC = SETTINGS.topics.notify_deliveries
AT = datetime(2026, 3, 1, 10, 0, 0, 123999, tzinfo=UTC)
STORED_AT = datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC)


def record(n: int = 1, **fields: Any) -> DeliveryRecord:
    values: dict[str, Any] = {
        "key": f"{n:032x}:cs-team", "signal_id": f"{n:032x}", "destination": "cs-team",
        "message": "alert", "outcome": "delivered", "attempts": 2, "http_status": 200,
        "signal_type": "champion_left", "severity": "critical", "account_id": "acct-1",
        "owner": "ana@example.com", "detected_at": AT - timedelta(seconds=1),
        "recorded_at": AT,
    }
    return DeliveryRecord(**{**values, **fields})


def on_topic(*records: DeliveryRecord | bytes | None, offset: int = 0) -> list[Record]:
    return [Record(TOPIC, 0, offset + i, None if r is None else b"k",
                   r if isinstance(r, bytes) or r is None else r.encode(), None)
            for i, r in enumerate(records)]


def table_columns(table: str) -> list[str]:
    statement = next(s for s in STATEMENTS if f"CREATE TABLE IF NOT EXISTS {table}\n" in s)
    body = statement.split("(", 1)[1].split("\n    )\n", 1)[0]
    return [line.split()[0].strip("`") for line in body.strip().splitlines()]


# -- the row ---------------------------------------------------------------------------------------
def test_delivery_columns_are_the_table_and_every_field_of_the_record() -> None:
    assert list(DELIVERY_COLUMNS) == table_columns("alert_deliveries")
    assert set(DeliveryRecord.model_fields) == set(DELIVERY_COLUMNS) - {"stored_at"}


def test_a_record_becomes_a_row_in_column_order_with_times_in_utc() -> None:
    # a naive time is read as UTC, not as the machine's zone
    naive = record(recorded_at=datetime(2026, 3, 1, 10, 0, 0, 500000, tzinfo=UTC).replace(
        tzinfo=None))
    row = dict(zip(DELIVERY_COLUMNS, delivery_row(naive, STORED_AT), strict=True))
    assert row == {
        "key": f"{1:032x}:cs-team", "signal_id": f"{1:032x}", "destination": "cs-team",
        "message": "alert", "outcome": "delivered", "attempts": 2, "http_status": 200,
        "error": None, "signal_type": "champion_left", "severity": "critical",
        "account_id": "acct-1", "owner": "ana@example.com",
        "detected_at": AT - timedelta(seconds=1),
        "recorded_at": datetime(2026, 3, 1, 10, 0, 0, 500000, tzinfo=UTC),
        "stored_at": STORED_AT,
    }
    digest = record(key="digest:daily:2026-03-01", signal_id=None, message="digest",
                    signal_type=None, severity=None, account_id=None, owner=None,
                    detected_at=None)
    row = dict(zip(DELIVERY_COLUMNS, delivery_row(digest, STORED_AT), strict=True))
    assert [row[c] for c in ("signal_id", "account_id", "owner", "detected_at")] == [None] * 4


def test_a_records_id_is_its_key_and_recorded_time_in_milliseconds() -> None:
    assert delivery_id(record()) == f"{1:032x}:cs-team@{int(AT.timestamp()) * 1000 + 123}"
    offset = AT.astimezone(ZoneInfo("Europe/Paris"))
    assert delivery_id(record(recorded_at=offset)) == delivery_id(record())


def test_numbers_beyond_their_columns_are_a_problem() -> None:
    assert delivery_problem(record()) is None
    assert delivery_problem(record(http_status=70_000)) is not None
    assert delivery_problem(record(attempts=2**32)) is not None


# -- through the store ---------------------------------------------------------------------------
QUERIES = {
    "rows": "SELECT count() FROM alert_deliveries",
    "final": "SELECT groupArraySorted(10)((key, outcome, attempts, http_status, owner, "
             "toUnixTimestamp64Milli(recorded_at))) FROM alert_deliveries FINAL",
}


def store_into_clickhouse(tmp_path: Path, batches: list[list[Record]],
                          erased: Erased | None = None) -> tuple[dict[str, Any], Metrics]:
    writer = ClickHouseWriter(f"chdb://{tmp_path / 'db'}", retry_initial=0.01, retry_max=0.01,
                              clock=lambda: STORED_AT)
    writer.open_blocking()
    metrics = Metrics()
    store = Store(SETTINGS, writer, metrics, erased or Erased())

    async def go() -> dict[str, Any]:
        for batch in batches:
            await store.store(batch)
        return {k: (await writer.query_read_only(q))[1][0][0] for k, q in QUERIES.items()}

    try:
        return asyncio.run(go()), metrics
    finally:
        writer.close_blocking()


def test_a_record_read_twice_is_one_row(tmp_path: Path) -> None:
    tables, metrics = store_into_clickhouse(
        tmp_path, [on_topic(record(), record()), on_topic(record(), offset=2)])
    assert tables["rows"] == 1  # not even a duplicate waiting for a merge
    assert tables["final"] == [(f"{1:032x}:cs-team", "delivered", 2, 200, "ana@example.com",
                                int(AT.timestamp() * 1000))]
    assert metrics.rows_written.labels("alert_deliveries")._value.get() == 1


def test_the_latest_record_of_a_key_wins_whatever_order_it_is_read_in(tmp_path: Path) -> None:
    dead = record(outcome="dead_lettered", attempts=9, http_status=503, error="503",
                  recorded_at=AT + timedelta(hours=1))
    tables, _ = store_into_clickhouse(tmp_path, [on_topic(dead), on_topic(record())])
    assert [(key, outcome) for key, outcome, *_ in tables["final"]] == \
        [(f"{1:032x}:cs-team", "dead_lettered")]


def test_what_is_not_a_delivery_record_is_counted_and_kept_out(tmp_path: Path) -> None:
    batch = on_topic(record(1), b'{"not": "a record"}', b"{broken", None,
                     record(2, http_status=99_999), record(3))
    tables, metrics = store_into_clickhouse(tmp_path, [batch])
    assert [key for key, *_ in tables["final"]] == [f"{1:032x}:cs-team", f"{3:032x}:cs-team"]
    assert metrics.store_skipped.labels(TOPIC)._value.get() == 3  # the tombstone is no error


def test_an_erased_accounts_deliveries_sent_before_the_erasure_are_kept_out(
        tmp_path: Path) -> None:
    erased = Erased()
    erased.add("account", subject_hash("account", "acct-9"))
    tables, _ = store_into_clickhouse(
        tmp_path, [on_topic(record(1), record(2, account_id="acct-9"))], erased)
    assert [key for key, *_ in tables["final"]] == [f"{1:032x}:cs-team"]


def test_the_memory_sink_keeps_what_clickhouse_keeps(tmp_path: Path) -> None:
    later = record(1, outcome="dead_lettered", recorded_at=AT + timedelta(minutes=5))
    batches = [on_topic(record(1), record(2)), on_topic(later, record(2), offset=2),
               on_topic(record(1), offset=4)]
    tables, _ = store_into_clickhouse(tmp_path, batches)
    memory = store_in_memory(batches)
    assert sorted((r.key, r.outcome) for r in memory.alert_deliveries.values()) == \
        [(key, outcome) for key, outcome, *_ in tables["final"]]
    assert [outcome for _, outcome, *_ in tables["final"]] == ["dead_lettered", "delivered"]


# -- erasure -------------------------------------------------------------------------------------
def test_an_erasure_takes_the_accounts_deliveries_and_those_of_signals_about_the_person(
        tmp_path: Path) -> None:
    writer = ClickHouseWriter(f"chdb://{tmp_path / 'db'}", retry_initial=0.01, retry_max=0.01)
    writer.open_blocking()
    records = [record(1), record(2, account_id="acct-2"), record(3, account_id="acct-2")]
    try:
        asyncio.run(writer.write_deliveries(records))
    finally:
        writer.close_blocking()
    client = open_client(f"chdb://{tmp_path / 'db'}")
    try:
        # signal 3 is about bo (the delivery itself names nobody)
        client.command("INSERT INTO signals (signal_id, account_id, stakeholder_id, type) "
                       f"VALUES ('{3:032x}', 'acct-2', 'bo', 'champion_left')")
        now = lambda: STORED_AT  # noqa: E731
        by_person = erase(client, "stakeholder", "bo", now)
        by_account = erase(client, "account", "acct-1", now)
        left = client.query("SELECT signal_id FROM alert_deliveries").result_rows
    finally:
        client.close()
    assert by_person["alert_deliveries"] == 1 and by_person["signals"] == 1
    assert by_account["alert_deliveries"] == 1
    assert left == [(f"{2:032x}",)]
