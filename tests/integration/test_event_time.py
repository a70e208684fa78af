"""A source that lags beyond the idle time, end to end (SPEC section 9): real broker, real worker.

The replies go quiet (idle after 3 s) while ad impressions carry event time on; then late
replies arrive. Three accounts, three outcomes of the same silence (60 days, grace 24 h):
- acct-cancel: the reply lands while the silence waits for its grace: it never goes out;
- acct-withdraw: it lands after the grace, within the allowed lateness (7 days): the silence
  went out and is withdrawn (same id on radar.signals, ``withdrawn`` in ClickHouse);
- acct-late: it lands more than 7 days behind the account: stored, counted, changes nothing.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from tests.integration.conftest import RadarEnv, encode, event

pytestmark = pytest.mark.integration
START = datetime(2026, 1, 1, tzinfo=UTC)


def at(day: float) -> str:
    return (START + timedelta(days=day)).isoformat()


def publish(radar: RadarEnv, events: list[dict[str, Any]]) -> None:
    p = KafkaProducer(bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"], linger_ms=5)
    for e in events:
        p.send(radar.settings.topics.for_type(e["type"]), key=e["account_id"].encode(),
               value=encode(e))
    p.flush()
    p.close()


def signals_on_kafka(radar: RadarEnv) -> list[dict[str, Any]]:
    consumer = KafkaConsumer(radar.settings.topics.signals,
                             bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"],
                             auto_offset_reset="earliest", consumer_timeout_ms=2000)
    out = [json.loads(m.value) for m in consumer]
    consumer.close()
    return out


def metric(radar: RadarEnv, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in radar.metrics().splitlines()
               if line.startswith(name) and not line.startswith("#"))


def test_a_source_lagging_beyond_the_idle_time_cancels_withdraws_or_is_late(
        radar: RadarEnv) -> None:
    radar.env["RADAR_SIGNALS"] = "true"
    accounts = ("acct-cancel", "acct-withdraw", "acct-late")
    n = 0

    def ev(kind: str, account: str, day: float, **fields: Any) -> dict[str, Any]:
        nonlocal n
        n += 1
        return event(n, kind, account=account, occurred_at=at(day), stakeholder_id="p-1",
                     **fields)

    first = [event(1000 + i, "account_profile", account=a, occurred_at=at(0), tier=2,
                   renewal_date="2027-06-01", champion_ids=[]) for i, a in enumerate(accounts)]
    # the silences start on day 1 (due on day 61, out on day 62), acct-cancel's on day 2.5
    # (due on day 62.5, out on day 63.5: after the event time this test reaches, day 63)
    first += [ev("outreach_reply", a, 2.5 if a == "acct-cancel" else 1) for a in accounts]
    radar.start()
    publish(radar, first)
    time.sleep(8)  # the replies (and every source that never delivered) turn idle
    # ad impressions (exposure, not engagement) carry event time on to day 63
    publish(radar, [ev("ad_impression", a, d, clicked=False) for d in range(3, 64)
                    for a in accounts])
    radar.wait_for("SELECT count() FROM signals WHERE type = 'engagement_silence'",
                   lambda c: c == 2, timeout=90)
    # the replies come back: one within each silence, one beyond the lateness
    publish(radar, [ev("outreach_reply", "acct-cancel", 62, event_id="late-cancel"),
                    ev("outreach_reply", "acct-withdraw", 58, event_id="late-withdraw"),
                    ev("outreach_reply", "acct-late", 55, event_id="late-late")])
    radar.wait_for("SELECT count() FROM events FINAL WHERE event_id LIKE 'late-%'",
                   lambda c: c == 3, timeout=60)
    radar.wait_for("SELECT count() FROM signals FINAL WHERE status = 'withdrawn'",
                   lambda c: c == 1, timeout=60)
    radar.wait_caught_up()

    stored = {a: (s, w) for a, s, w in radar.sql(
        "SELECT account_id, status, JSONExtractString(evidence, 'withdrawn_by', 'event_id') "
        "FROM signals FINAL WHERE type = 'engagement_silence'")}
    assert stored == {"acct-withdraw": ("withdrawn", "late-withdraw"),
                      "acct-late": ("open", "")}
    on_kafka = [(s["account_id"], s["status"]) for s in signals_on_kafka(radar)
                if s["type"] == "engagement_silence"]
    assert sorted(on_kafka) == [("acct-late", "open"), ("acct-withdraw", "open"),
                                ("acct-withdraw", "withdrawn")]
    assert metric(radar, "radar_signals_withdrawn_total") == 1
    assert metric(radar, "radar_signals_cancelled_total") == 1
    assert metric(radar, "radar_late_events_total") == 1
    # the withdrawn account is judged again: not at risk for a silence that did not happen
    tiers = dict(radar.sql("SELECT account_id, tier FROM account_state FINAL"))
    assert tiers["acct-withdraw"] != "at_risk" and tiers["acct-late"] == "at_risk"


def test_each_commit_carries_its_sources_place_in_event_time(radar: RadarEnv) -> None:
    """Open 6 of issue 12: a worker commits each input partition's offset with the source's
    latest event time over the offsets below it (commit metadata), which the next reader of
    that partition starts from: events late in their source are then placed as by a reader
    that read from the start. Here one account's impressions, two of them late in their
    partition; the commit after all five says day 8, the source's latest."""
    from kafka.admin import KafkaAdminClient

    from processors.watermark import decode_high
    from streams.launch import wait_until_committed

    radar.env.update({"RADAR_SIGNALS": "true", "RADAR_IDLE_SOURCE_SECONDS": "1"})
    days = [1, 5, 3, 8, 2]  # 3 and 2 arrive after later ones: late in their source
    publish(radar, [event(900 + i, "ad_impression", account="acct-place", occurred_at=at(d))
                    for i, d in enumerate(days)])
    worker = radar.start_worker()
    topic = radar.settings.topics.for_type("ad_impression")
    wait_until_committed(radar.settings, radar.settings.app_id, [topic], timeout=90)
    radar.stop(worker)
    admin = KafkaAdminClient(bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"])
    try:
        group = radar.settings.app_id
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    ours = {tp: meta for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0}
    assert len(ours) == 1, offsets  # one account: one partition
    (meta,) = ours.values()
    assert meta.offset == len(days)
    assert decode_high(meta.metadata) == (START + timedelta(days=8)).timestamp()
    # every other input partition committed carries no time it never saw
    others = [m.metadata for tp, m in offsets.items() if tp.topic != topic or m.offset == 0]
    assert all(decode_high(m) is None for m in others), others
