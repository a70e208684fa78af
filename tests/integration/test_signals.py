"""The signal engine through the real stream: Kafka in, signals on Kafka and in ClickHouse."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from tests.integration.conftest import RadarEnv, encode, event

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def with_signals(radar: RadarEnv) -> None:
    radar.env["RADAR_SIGNALS"] = "true"

DAY = 86_400


def at(day: float) -> str:
    """An RFC 3339 time ``day`` days after 2026-01-01."""
    from datetime import UTC, datetime, timedelta

    return (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day)).isoformat()


def account_history(account: str, start: int = 0, champion_leaves: bool = True) -> list[dict[str, Any]]:
    """A small account: a champion, a CFO, an ops lead; engagement; the champion leaves."""
    n = start
    out: list[dict[str, Any]] = []

    def add(kind: str, day: float, **fields: Any) -> None:
        nonlocal n
        n += 1
        out.append(event(n, kind, account=account, occurred_at=at(day), **fields))

    add("account_profile", 0, champion_ids=[f"{account}-champ"], tier=1,
        renewal_date="2026-05-01")
    for who, function in (("champ", "commercial"), ("cfo", "financial"), ("ops", "operations")):
        add("role_change", 0.1, stakeholder_id=f"{account}-{who}", change="joined",
            function=function, seniority="vp")
    for d in range(1, 40, 2):
        add("content_interaction", d, stakeholder_id=f"{account}-champ", action="like",
            public=d % 6 == 1)
        add("ad_impression", d + 0.5, stakeholder_id=f"{account}-cfo", clicked=d % 10 == 1)
        add("outreach_reply", d + 0.7, stakeholder_id=f"{account}-ops", reply_kind="reply")
    add("content_interaction", 41, stakeholder_id=f"{account}-cfo",
        action="pricing_page_visit", public=False)
    if champion_leaves:
        add("role_change", 45, stakeholder_id=f"{account}-champ", change="left",
            function="commercial", seniority="vp", buying_role="champion")
    # time moves on through the other stakeholders' activity
    for d in range(46, 110, 3):
        add("ad_impression", d, stakeholder_id=f"{account}-ops", clicked=False)
    return out


def publish(radar: RadarEnv, events: list[dict[str, Any]]) -> None:
    p = KafkaProducer(bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"], linger_ms=5)
    topics = radar.settings.topics
    for e in events:
        p.send(topics.for_type(e["type"]), key=e["account_id"].encode(), value=encode(e))
    p.flush()
    p.close()


def read_topic(radar: RadarEnv, topic: str, expect: int, timeout: float = 60) -> list[Any]:
    consumer = KafkaConsumer(topic, bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"],
                             auto_offset_reset="earliest", consumer_timeout_ms=1000)
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < expect and time.monotonic() < deadline:
        out.extend(json.loads(m.value) for m in consumer)
    consumer.close()
    return out


def signal_set(radar: RadarEnv) -> set[tuple[str, str, str, str]]:
    rows = radar.sql("SELECT signal_id, account_id, type, toString(occurred_at) FROM signals FINAL")
    return {tuple(r) for r in rows}  # type: ignore[misc]


def test_champion_left_reaches_alerts_signals_and_clickhouse(radar: RadarEnv) -> None:
    history = account_history("proxima")
    publish(radar, history)
    radar.start()
    radar.wait_for("SELECT count() FROM signals WHERE type = 'champion_left'", lambda n: n == 1)

    alerts = read_topic(radar, radar.settings.topics.alerts, expect=1)
    left = [a for a in alerts if a["type"] == "champion_left"]
    assert len(left) == 1
    assert left[0]["stakeholder_id"] == "proxima-champ"
    assert left[0]["severity"] == "critical"
    departure = next(e for e in history if e["type"] == "role_change" and e["change"] == "left")
    assert left[0]["evidence"]["event_ids"] == [departure["event_id"]]

    # 30 days later nobody who joined since was reached: succession is overdue
    radar.wait_for("SELECT count() FROM signals WHERE type = 'succession_overdue'",
                   lambda n: n == 1)
    overdue = radar.sql("SELECT toDate(occurred_at), stakeholder_id FROM signals "
                        "WHERE type = 'succession_overdue'")
    assert str(overdue[0][0]) == "2026-03-17" and overdue[0][1] == "proxima-champ"

    types = {r[0] for r in radar.sql("SELECT DISTINCT type FROM signals")}
    assert {"pricing_page_visit", "new_stakeholder_engaged", "champion_advocacy",
            "multi_threaded"} <= types
    on_topic = read_topic(radar, radar.settings.topics.signals, expect=len(types))
    assert {s["type"] for s in on_topic} >= {"champion_left", "pricing_page_visit"}
    tiers = read_topic(radar, radar.settings.topics.account_tiers, expect=2)
    assert "at_risk" in {t["tier"] for t in tiers}

    state = radar.sql("SELECT tier, roster, champions FROM account_state FINAL "
                      "WHERE account_id = 'proxima'")
    assert state[0][0] == "at_risk"
    assert state[0][1] == 2  # the champion left the roster
    assert radar.scalar("SELECT count() FROM at_risk_accounts WHERE account_id = 'proxima'") == 1


def test_replaying_the_same_events_yields_the_same_signals(radar: RadarEnv) -> None:
    history = [e for a in range(4) for e in account_history(f"acct-{a}", start=a * 1000,
                                                           champion_leaves=a % 2 == 0)]
    history.sort(key=lambda e: e["occurred_at"])  # a recorded stream: in event-time order
    publish(radar, history)
    first = radar.start()
    radar.wait_caught_up()
    once = signal_set(radar)
    assert {s[2] for s in once} >= {"champion_left", "succession_overdue", "pricing_page_visit"}
    assert radar.stop(first) == 0
    assert radar.stop(radar.stores[-1]) == 0

    # the same events again, read by a fresh consumer group into a fresh database
    radar.env["RADAR_APP_ID"] += "-replay"
    radar.env["RADAR_CLICKHOUSE_DSN"] += "-replay"
    radar.start()
    radar.wait_caught_up()
    assert signal_set(radar) == once
