"""radar notify's records reach ClickHouse ``alert_deliveries`` through ``radar store`` (SPEC
sections 10-11): one row per Idempotency-Key, however often the record is on the topic, and a
newer record of a key replaces the older."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaProducer

from schemas.notify import DeliveryRecord
from streams.launch import wait_until_committed
from tests.integration.conftest import RadarEnv

pytestmark = pytest.mark.integration


def send(radar: RadarEnv, *records: DeliveryRecord) -> None:
    """As radar notify writes them: keyed by the Idempotency-Key."""
    producer = KafkaProducer(bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"], acks="all")
    for r in records:
        producer.send(radar.settings.topics.notify_deliveries, key=r.key.encode(),
                      value=r.encode())
    producer.flush()
    producer.close()


def stored(radar: RadarEnv) -> None:
    """Until the store has committed every record now on the deliveries topic."""
    settings = radar.settings
    wait_until_committed(settings, settings.store_group, [settings.topics.notify_deliveries],
                         timeout=60)


def test_a_delivery_record_is_one_row_even_when_sent_twice(radar: RadarEnv) -> None:
    now = datetime.now(UTC)
    delivered = DeliveryRecord(
        key="a1b2c3:cs-team", signal_id="a1b2c3", destination="cs-team", message="alert",
        outcome="delivered", attempts=1, http_status=200, signal_type="champion_left",
        severity="critical", account_id="acct-1", owner="ana@example.com",
        detected_at=now - timedelta(milliseconds=300), recorded_at=now)
    send(radar, delivered, delivered)  # a producer retry: twice in one batch
    radar.start_store()
    radar.wait_for("SELECT count() FROM alert_deliveries FINAL", lambda n: n == 1)

    send(radar, delivered)  # and again later: a notifier that re-recorded after a restart
    stored(radar)
    assert [tuple(r) for r in radar.sql(
        "SELECT count(), any(outcome), any(owner), any(http_status) FROM alert_deliveries")] == \
        [(1, "delivered", "ana@example.com", 200)]

    follow_up = delivered.model_copy(update={
        "key": "a1b2c3:cs-team:follow-up", "message": "follow_up", "attempts": 1,
        "recorded_at": now + timedelta(seconds=5)})
    dead = delivered.model_copy(update={
        "outcome": "dead_lettered", "attempts": 7, "http_status": 503, "error": "HTTP 503",
        "recorded_at": now + timedelta(hours=1)})
    send(radar, follow_up, dead)
    stored(radar)
    rows = radar.sql("SELECT key, message, outcome, attempts FROM alert_deliveries FINAL "
                     "ORDER BY key")
    assert [tuple(r) for r in rows] == [("a1b2c3:cs-team", "alert", "dead_lettered", 7),
                                        ("a1b2c3:cs-team:follow-up", "follow_up", "delivered", 1)]
