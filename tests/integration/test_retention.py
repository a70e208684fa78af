"""RADAR_EVENTS_TTL_DAYS end to end: ``radar store`` sets the TTL when it starts, events from
Kafka older than it go at ClickHouse's next merge, and a store started without it removes it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sinks.clickhouse import open_client
from sinks.schema import ttl_expression
from tests.integration.conftest import RadarEnv, event

pytestmark = pytest.mark.integration


def show_events(radar: RadarEnv) -> str:
    return str(radar.scalar("SHOW CREATE TABLE events"))


def test_the_store_keeps_events_for_the_days_set_and_drops_the_ttl_when_unset(
    radar: RadarEnv,
) -> None:
    now = datetime.now(UTC)
    lines = [event(1, occurred_at=(now - timedelta(days=400)).isoformat()),
             event(2, occurred_at=(now - timedelta(days=3)).isoformat()),
             {"not": "an event"}]  # a dead letter, stored now: it stays
    (radar.tmp / "events.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")

    worker = radar.start()  # no TTL yet: everything is stored, however old
    assert radar.run("publish", str(radar.tmp / "events.jsonl")).returncode == 0
    radar.wait_for("SELECT count() FROM events", lambda n: n == 2)
    radar.wait_for("SELECT count() FROM dead_letters", lambda n: n == 1)
    radar.wait_caught_up()
    assert "TTL" not in show_events(radar)
    assert radar.stop(worker) == 0
    assert radar.stop(radar.stores[-1]) == 0

    radar.env["RADAR_EVENTS_TTL_DAYS"] = "30"
    store = radar.start_store()
    assert f"TTL {ttl_expression('occurred_at', 30)}" in show_events(radar)
    assert radar.stop(store) == 0
    client = open_client(radar.settings.dsn)
    try:
        for table in ("events", "dead_letters"):
            client.command(f"OPTIMIZE TABLE {table} FINAL")  # a TTL acts on merges
        assert client.query("SELECT event_id FROM events").result_rows == [("ev-2",)]
        assert client.query("SELECT count() FROM dead_letters").result_rows == [(1,)]
    finally:
        client.close()

    del radar.env["RADAR_EVENTS_TTL_DAYS"]
    store = radar.start_store()
    assert "TTL" not in show_events(radar)
    assert "TTL" not in str(radar.scalar("SHOW CREATE TABLE dead_letters"))
    assert radar.stop(store) == 0
