"""Retention (RADAR_EVENTS_TTL_DAYS): a ClickHouse TTL on ``events`` (by ``occurred_at``) and
``dead_letters`` (by ``stored_at``), set by the schema init, on a real embedded database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from processors.ingest import AcceptedEvent, RawMessage
from schemas.dead_letter import DeadLetter
from schemas.events import AdImpression
from sinks.clickhouse import ClickHouseWriter, apply_retention, init_schema, open_client
from sinks.schema import retention_statements, table_ttl, ttl_expression

NOW = datetime.now(UTC)  # ClickHouse measures the TTL against its own clock: the real one
OLD = NOW - timedelta(days=400)
RECENT = NOW - timedelta(days=2)

# -- what the schema init runs (pure) --------------------------------------------------------------

EVENTS_30 = "toDateTime(occurred_at) + toIntervalDay(30)"
LETTERS_30 = "toDateTime(stored_at) + toIntervalDay(30)"


def test_a_ttl_is_set_where_there_is_none_and_changed_where_it_differs() -> None:
    assert retention_statements({"events": None, "dead_letters": None}, 30) == [
        f"ALTER TABLE events MODIFY TTL {EVENTS_30}",
        f"ALTER TABLE dead_letters MODIFY TTL {LETTERS_30}",
    ]
    assert retention_statements({"events": EVENTS_30, "dead_letters": LETTERS_30}, 7) == [
        "ALTER TABLE events MODIFY TTL toDateTime(occurred_at) + toIntervalDay(7)",
        "ALTER TABLE dead_letters MODIFY TTL toDateTime(stored_at) + toIntervalDay(7)",
    ]


def test_the_same_setting_again_changes_nothing() -> None:
    assert retention_statements({"events": EVENTS_30, "dead_letters": LETTERS_30}, 30) == []
    assert retention_statements({"events": None, "dead_letters": None}, None) == []


def test_unsetting_removes_the_ttl_radar_set_and_leaves_a_hand_written_one() -> None:
    by_hand = "toDateTime(occurred_at) + toIntervalMonth(6) TO VOLUME 'cold'"
    assert retention_statements({"events": EVENTS_30, "dead_letters": LETTERS_30}, None) == [
        "ALTER TABLE events REMOVE TTL", "ALTER TABLE dead_letters REMOVE TTL"]
    assert retention_statements({"events": by_hand, "dead_letters": None}, None) == []
    # a set value is explicit: it replaces a hand-written TTL
    assert retention_statements({"events": by_hand, "dead_letters": LETTERS_30}, 30) == [
        f"ALTER TABLE events MODIFY TTL {EVENTS_30}"]


def test_the_table_ttl_is_read_from_engine_full() -> None:
    engine = "ReplacingMergeTree PARTITION BY toYYYYMM(occurred_at) ORDER BY (account_id, event_id)"
    settings = " SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 8192"
    assert table_ttl(engine + settings) is None
    assert table_ttl(f"{engine} TTL {EVENTS_30}{settings}") == EVENTS_30
    assert table_ttl(f"ReplacingMergeTree ORDER BY dead_letter_id TTL {LETTERS_30}") == LETTERS_30


# -- on embedded ClickHouse ------------------------------------------------------------------------

def event(event_id: str, occurred_at: datetime, offset: int) -> AcceptedEvent:
    return AcceptedEvent(
        AdImpression(event_id=event_id, type="ad_impression", schema_version=1,
                     occurred_at=occurred_at, account_id="acct-1", stakeholder_id="p-1",
                     campaign_id="camp", creative_id="cr", channel="linkedin"),
        RawMessage("radar.ad-impressions", 0, offset, None, b""))


def letter(letter_id: str) -> DeadLetter:
    return DeadLetter(letter_id, "radar.ad-impressions", 0, 1, None, b"{", "malformed_json", "x")


@contextmanager
def database(tmp_path: Path) -> Iterator[Client]:
    client = open_client(f"chdb://{tmp_path / 'db'}")
    try:
        yield client
    finally:
        client.close()


def store(tmp_path: Path, tag: str, stored_at: datetime) -> None:
    """An old and a recent event, and a dead letter stored at ``stored_at`` (the writer's
    clock; its ``failed_at``, the Kafka timestamp, is recent on purpose)."""
    writer = ClickHouseWriter(f"chdb://{tmp_path / 'db'}", clock=lambda: stored_at)
    try:
        asyncio.run(writer.write_events([event(f"old-{tag}", OLD, 1),
                                         event(f"recent-{tag}", RECENT, 2)]))
        asyncio.run(writer.write_dead_letters([(letter(f"dl-{tag}"), RECENT)]))
    finally:
        writer.close_blocking()


def stored_ids(client: Client) -> set[str]:
    """What is left once ClickHouse has merged everything (a TTL acts on merges)."""
    for table in ("events", "dead_letters"):
        client.command(f"OPTIMIZE TABLE {table} FINAL")
    events = {r[0] for r in client.query("SELECT event_id FROM events").result_rows}
    letters = {r[0] for r in client.query("SELECT dead_letter_id FROM dead_letters").result_rows}
    return events | letters


def create_table(client: Client, table: str) -> str:
    return str(client.query(f"SHOW CREATE TABLE {table}").result_rows[0][0])


def mutations(client: Client) -> int:
    return int(client.query("SELECT count() FROM system.mutations "
                            "WHERE database = currentDatabase()").result_rows[0][0])


def test_old_rows_go_away_and_recent_ones_stay(tmp_path: Path) -> None:
    with database(tmp_path) as client:
        init_schema(client)  # no TTL: nothing is deleted, however old
    store(tmp_path, "a", stored_at=OLD)
    with database(tmp_path) as client:
        assert stored_ids(client) == {"old-a", "recent-a", "dl-a"}
        init_schema(client, events_ttl_days=30)
        assert f"TTL {EVENTS_30}" in create_table(client, "events")
        assert f"TTL {LETTERS_30}" in create_table(client, "dead_letters")
        assert "TTL" not in create_table(client, "signals")
    store(tmp_path, "b", stored_at=NOW)
    with database(tmp_path) as client:
        # the rows stored before the TTL existed go as well; a dead letter goes by when it was
        # stored, not by its (recent) Kafka timestamp
        assert stored_ids(client) == {"recent-a", "recent-b", "dl-b"}


def test_init_twice_changes_nothing_and_a_new_value_or_none_changes_the_ttl(tmp_path: Path) -> None:
    with database(tmp_path) as client:
        init_schema(client, events_ttl_days=30)
        before = mutations(client)
        assert apply_retention(client, 30) == []
        init_schema(client, events_ttl_days=30)
        assert mutations(client) == before  # no ALTER ran, no part was rewritten
        init_schema(client, events_ttl_days=7)
        assert f"TTL {ttl_expression('occurred_at', 7)}" in create_table(client, "events")
        assert f"TTL {ttl_expression('stored_at', 7)}" in create_table(client, "dead_letters")
        init_schema(client)
        assert "TTL" not in create_table(client, "events")
        assert "TTL" not in create_table(client, "dead_letters")
        assert apply_retention(client, None) == []  # removing twice is not an error either
    store(tmp_path, "c", stored_at=OLD)
    with database(tmp_path) as client:
        assert stored_ids(client) == {"old-c", "recent-c", "dl-c"}


def test_a_hand_written_ttl_stays_when_the_setting_is_unset(tmp_path: Path) -> None:
    with database(tmp_path) as client:
        init_schema(client)
        client.command("ALTER TABLE events MODIFY TTL toDateTime(occurred_at) + toIntervalYear(3)")
        init_schema(client)
        assert "TTL toDateTime(occurred_at) + toIntervalYear(3)" in create_table(client, "events")


def test_the_worker_sets_the_ttl_when_it_opens_the_database(tmp_path: Path) -> None:
    writer = ClickHouseWriter(f"chdb://{tmp_path / 'db'}", events_ttl_days=90)
    try:
        writer.open_blocking()
    finally:
        writer.close_blocking()
    with database(tmp_path) as client:
        assert f"TTL {ttl_expression('occurred_at', 90)}" in create_table(client, "events")


@pytest.mark.parametrize("days", [None, 14])
def test_radar_db_init_applies_the_setting_and_says_so(
    days: int | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import os

    from streams.cli import main

    for name in [n for n in os.environ if n.startswith("RADAR_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RADAR_LOCAL_DIR", str(tmp_path))
    monkeypatch.setenv("RADAR_CLICKHOUSE_DSN", f"chdb://{tmp_path / 'db'}")
    if days is not None:
        monkeypatch.setenv("RADAR_EVENTS_TTL_DAYS", str(days))
    assert main(["db", "init"]) == 0
    printed = capsys.readouterr().out
    with database(tmp_path) as client:
        events = create_table(client, "events")
    if days is None:
        assert "retention: none (RADAR_EVENTS_TTL_DAYS is not set)" in printed
        assert "TTL" not in events
    else:
        assert "retention: events by occurred_at and dead_letters by stored_at, 14 days" in printed
        assert f"TTL {ttl_expression('occurred_at', 14)}" in events
