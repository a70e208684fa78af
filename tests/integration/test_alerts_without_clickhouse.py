"""Alerts do not depend on the analytics store (SPEC section 11): with ``radar store`` stopped
for a minute mid-stream, or no database at all, a champion's departure still reaches
``radar.alerts`` within seconds; once the store is back, every table is exact."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from tests.integration.conftest import RadarEnv, encode, free_port
from tests.integration.test_signals import account_history

pytestmark = pytest.mark.integration
ON_TIME_S = 20.0  # the worker waits RADAR_IDLE_SOURCE_SECONDS (3 here) for idle sources
OUTAGE_S = 60.0


def send(radar: RadarEnv, events: list[dict[str, Any]]) -> float:
    """Publish ``events``; returns when the last one was acknowledged (time.time())."""
    p = KafkaProducer(bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"], acks="all")
    topics = radar.settings.topics
    for e in events:
        p.send(topics.for_type(e["type"]), key=e["account_id"].encode(), value=encode(e))
    p.flush()
    p.close()
    return time.time()


def alert_for(radar: RadarEnv, account: str, timeout: float) -> float:
    """Waits for ``account``'s champion_left on the alerts topic; returns when it was seen."""
    consumer = KafkaConsumer(radar.settings.topics.alerts,
                             bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"],
                             auto_offset_reset="earliest", consumer_timeout_ms=500)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for m in consumer:
                alert = json.loads(m.value)
                if alert["account_id"] == account and alert["type"] == "champion_left":
                    return time.time()
    finally:
        consumer.close()
    engine = [line for line in radar.metrics().splitlines()
              if line.startswith(("radar_events_held", "radar_consumer_lag", "radar_signals_total",
                                  "radar_events_consumed_total", "radar_watermark"))]
    raise AssertionError(f"no champion_left alert for {account} in {timeout:.0f}s\n"
                         + "\n".join(engine) + f"\n{radar.worker_log()}")


def split_at_departure(account: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    history = account_history(account)
    i = next(n for n, e in enumerate(history) if e.get("change") == "left")
    return history[:i], history[i:]


def open_signals_on_kafka(radar: RadarEnv) -> set[str]:
    consumer = KafkaConsumer(radar.settings.topics.signals,
                             bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"],
                             auto_offset_reset="earliest", consumer_timeout_ms=2000)
    latest = {}
    for m in consumer:
        s = json.loads(m.value)
        latest[s["signal_id"]] = s["status"]
    consumer.close()
    return {sid for sid, status in latest.items() if status == "open"}


def test_a_store_down_for_a_minute_delays_no_alert_and_loses_no_row(radar: RadarEnv) -> None:
    before, after = split_at_departure("acct-a")
    # another account up to the same day (further, it would make the departure late)
    other = [e for e in account_history("acct-b", start=5000, champion_leaves=False)
             if e["occurred_at"] < after[0]["occurred_at"]]
    send(radar, before + other)
    radar.start()
    radar.wait_caught_up()
    [store] = radar.stores
    assert radar.stop(store) == 0

    stopped = time.monotonic()
    departed = send(radar, after)
    seen = alert_for(radar, "acct-a", ON_TIME_S)
    assert seen - departed < ON_TIME_S
    left = OUTAGE_S - (time.monotonic() - stopped)
    if left > 0:
        time.sleep(left)  # the rest of the outage: the worker goes on meanwhile

    radar.start_store()
    radar.wait_caught_up(timeout=180)
    published = len(before) + len(other) + len(after)
    assert radar.scalar("SELECT count() FROM events") == published  # no duplicate either
    assert radar.scalar("SELECT uniqExact(event_id) FROM events") == published
    stored = {r[0] for r in radar.sql("SELECT signal_id FROM signals FINAL WHERE status = 'open'")}
    assert stored == open_signals_on_kafka(radar)
    assert radar.scalar(
        "SELECT count() FROM signals WHERE type = 'champion_left' AND account_id = 'acct-a'") == 1
    assert radar.scalar("SELECT count() FROM account_state FINAL") == 2


def test_the_worker_needs_no_database_at_all(radar: RadarEnv, tmp_path: Path) -> None:
    """A DSN that points at nothing, and no store: the worker starts and alerts on time."""
    radar.env["RADAR_CLICKHOUSE_DSN"] = f"http://radar:secret@127.0.0.1:{free_port()}/radar"
    before, after = split_at_departure("acct-c")
    send(radar, before)
    radar.start_worker()
    departed = send(radar, after)
    seen = alert_for(radar, "acct-c", ON_TIME_S)
    assert seen - departed < ON_TIME_S
    assert not radar.stores
    assert not (tmp_path / "clickhouse").exists()
    assert "radar_rows_written_total{" not in radar.metrics()
