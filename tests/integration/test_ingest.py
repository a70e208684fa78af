"""The worker and the store on real Kafka and embedded ClickHouse: nothing lost, nothing
duplicated."""

from __future__ import annotations

import re
import signal
import threading
import time
from typing import Any

import pytest
from kafka import KafkaProducer

from tests.integration.conftest import RadarEnv, encode, event

pytestmark = pytest.mark.integration


KINDS = ("ad_impression", "outreach_reply", "content_interaction", "role_change",
         "account_profile")


def producer(radar: RadarEnv) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"], acks="all",
                         linger_ms=5, max_request_size=4 * 1024 * 1024)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == wanted:
            return float(m.group(3))
    return 0.0


def test_valid_events_land_once_and_every_bad_message_is_a_dead_letter(radar: RadarEnv) -> None:
    topics = radar.settings.topics
    valid = [event(i, KINDS[i % 5]) for i in range(500)]
    big_topic = "x" * (600 * 1024)  # over the 512 KiB default limit, under the broker's 1 MiB
    invalid: list[tuple[str, bytes, str]] = [
        (topics.name("ad-impressions"), b"{not json", "malformed_json"),
        (topics.name("ad-impressions"), b"[1, 2, 3]", "not_an_object"),
        (topics.name("role-changes"),
         encode(event(9001, "role_change", occurred_at="2026-03-01T10:00:00")), "naive_timestamp"),
        (topics.name("outreach-replies"), encode(event(9002, "outreach_reply", type="webinar")),
         "unknown_type"),
        (topics.name("accounts"), encode(event(9003, "account_profile", schema_version=2)),
         "unknown_schema_version"),
        (topics.name("content-interactions"),
         encode(event(9004, "content_interaction", action="dance")), "schema_violation"),
        (topics.name("ad-impressions"), encode(event(9005, "role_change")), "wrong_topic"),
        (topics.name("content-interactions"),
         encode(event(9006, "content_interaction", topic=big_topic)), "oversize"),
        # too large for its dead letter to travel whole: it carries its head
        (topics.name("content-interactions"),
         encode(event(9007, "content_interaction", topic="y" * 1_010_000)), "oversize"),
        (topics.name("outreach-replies"),
         encode(event(9008, "outreach_reply", occurred_at="9999-12-31T00:00:00+00:00")),
         "implausible_time"),
    ]
    p = producer(radar)
    # the bad messages are interleaved with good ones: a poison message must not stall the rest
    expected_offsets: set[tuple[str, int, int, str]] = set()
    for i, e in enumerate(valid):
        p.send(topics.for_type(e["type"]), key=e["account_id"].encode(), value=encode(e))
        if i % 45 == 0 and invalid:
            topic, payload, error_class = invalid.pop()
            md = p.send(topic, key=b"acct-bad", value=payload).get(timeout=30)
            expected_offsets.add((md.topic, md.partition, md.offset, error_class))
    p.flush()
    assert not invalid

    radar.start()
    radar.wait_for("SELECT count() FROM events", lambda n: n >= len(valid))
    radar.wait_for("SELECT count() FROM dead_letters", lambda n: n >= len(expected_offsets))
    time.sleep(1.5)  # anything extra would show up now

    assert radar.scalar("SELECT count() FROM events") == len(valid)
    assert radar.scalar("SELECT uniqExact(event_id) FROM events") == len(valid)
    stored_types = dict(radar.sql("SELECT type, count() FROM events GROUP BY type"))
    assert stored_types == dict.fromkeys(KINDS, 100)

    letters = radar.sql("SELECT source_topic, source_partition, source_offset, error_class, "
                        "payload_bytes, reason FROM dead_letters")
    assert {tuple(r[:4]) for r in letters} == expected_offsets
    by_class = {r[3]: r for r in letters}
    oversize = sorted((r for r in letters if r[3] == "oversize"), key=lambda r: r[4])
    assert oversize[1][4] > 600 * 1024  # the original bytes are kept whole
    assert oversize[0][4] == 4096  # the 1 MB one: its head, and its size in the reason
    assert "carries its first 4,096 of 1,010," in oversize[0][5]
    assert "9999-12-31" in by_class["implausible_time"][5]
    assert "occurred_at" in by_class["naive_timestamp"][5]
    assert "action" in by_class["schema_violation"][5]

    # the original bytes are on the dead-letter topic too, with headers naming the source
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topics.dead_letters, bootstrap_servers=radar.env[
        "RADAR_KAFKA_BOOTSTRAP"], auto_offset_reset="earliest", consumer_timeout_ms=5000,
        max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=8 * 1024 * 1024)
    on_topic = {}
    for msg in consumer:
        headers = {k: v.decode() for k, v in msg.headers}
        on_topic[(headers["radar.source_topic"], int(headers["radar.source_partition"]),
                  int(headers["radar.source_offset"]), headers["radar.error_class"])] = msg.value
    consumer.close()
    assert set(on_topic) == expected_offsets
    assert on_topic[next(k for k in expected_offsets if k[3] == "malformed_json")] == b"{not json"

    text = radar.metrics()  # the worker's: what it read and refused
    consumed = sum(metric(text, "radar_events_consumed_total", topic=t) for t in topics.inputs)
    assert consumed == len(valid) + len(expected_offsets)
    assert metric(text, "radar_events_rejected_total", reason="oversize") == 2
    assert metric(text, "radar_events_rejected_total", reason="implausible_time") == 1
    assert metric(text, "radar_events_rejected_total", reason="wrong_topic") == 1
    assert not re.search(r"^radar_rows_written_total", text, re.M)  # it writes no database
    text = radar.metrics("store")  # the store's: what it wrote
    assert metric(text, "radar_rows_written_total", table="events") == len(valid)
    assert metric(text, "radar_rows_written_total", table="dead_letters") == len(expected_offsets)
    assert metric(text, "radar_insert_batch_rows_count", table="events") >= 1
    assert metric(text, "radar_event_to_stored_seconds_count") == len(valid)
    assert "radar_insert_duration_seconds_bucket" in text

    # lag per input partition, measured every few seconds: everything stored means lag 0
    lag_line = re.compile(r'^radar_consumer_lag\{partition="\d",topic="' + re.escape(
        topics.name("ad-impressions")) + r'"\} (\S+)$', re.M)
    deadline = time.monotonic() + 15
    while not lag_line.search(text) and time.monotonic() < deadline:
        time.sleep(0.5)
        text = radar.metrics("store")
    lags = [float(v) for v in lag_line.findall(text)]
    assert len(lags) == 6 and all(v == 0 for v in lags), lags


def test_sigkill_of_worker_and_store_mid_stream_then_restart_loses_and_duplicates_nothing(
    radar: RadarEnv,
) -> None:
    total = 20_000
    # the restarted worker gets the partitions once the group drops the killed one (60 s by
    # default)
    radar.env["RADAR_SESSION_TIMEOUT_SECONDS"] = "10"
    topics = radar.settings.topics
    p = producer(radar)
    published = threading.Event()

    def publish_slowly() -> None:
        for i in range(total):
            e = event(i, KINDS[i % 5])
            p.send(topics.for_type(e["type"]), key=e["account_id"].encode(), value=encode(e))
            if i % 1000 == 999:
                p.flush()
                time.sleep(0.15)
        p.flush()
        published.set()

    worker = radar.start()
    [store] = radar.stores
    feeder = threading.Thread(target=publish_slowly, daemon=True)
    feeder.start()
    stored = radar.wait_for("SELECT count() FROM events", lambda n: n >= 2_000)
    assert stored < total, "the processes must be killed mid-stream"
    assert radar.stop(worker, signal.SIGKILL) == -signal.SIGKILL
    assert radar.stop(store, signal.SIGKILL) == -signal.SIGKILL

    radar.start()
    feeder.join(timeout=120)
    assert published.is_set()
    radar.wait_caught_up(timeout=180)

    assert radar.scalar("SELECT uniqExact(event_id) FROM events") == total
    assert radar.scalar("SELECT count() FROM events FINAL") == total
    # redelivered rows are skipped before insert, so even without FINAL there are no duplicates
    assert radar.scalar("SELECT count() FROM events") == total
    assert radar.scalar(
        "SELECT count() FROM (SELECT event_id FROM events GROUP BY event_id HAVING count() > 1)"
    ) == 0
    # signals too: a signal the killed worker sent again has the same id, stored once
    signals = radar.scalar("SELECT count() FROM signals FINAL")
    assert signals > 0
    assert radar.scalar("SELECT count() FROM signals") == signals
    # every account that had an event has its state
    assert radar.scalar("SELECT count() FROM account_state FINAL") == \
        radar.scalar("SELECT uniqExact(account_id) FROM events")


def test_radar_sql_answers_while_the_store_runs_and_refuses_writes(radar: RadarEnv) -> None:
    p = producer(radar)
    for i in range(50):
        e = event(i)
        p.send(radar.settings.topics.for_type(e["type"]), value=encode(e))
    p.flush()
    radar.start()
    [store] = radar.stores
    radar.wait_for("SELECT count() FROM events", lambda n: n == 50)

    answer = radar.run("sql", "SELECT count() AS n FROM events", "--format", "tsv")
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.split() == ["n", "50"]

    for statement in ("INSERT INTO events (event_id) VALUES ('x')", "DROP TABLE events",
                      "SELECT 1; DROP TABLE events", "ALTER TABLE events DELETE WHERE 1"):
        refused = radar.run("sql", statement)
        assert refused.returncode == 2, (statement, refused.stdout)
        assert "not allowed" in refused.stderr or "one statement" in refused.stderr
    # a write disguised as a read writes no file (tests/integration/test_sql_security.py has
    # every form, on both paths)
    target = radar.tmp / "radar-x.tsv"
    sneaky = radar.run("sql", f"SELECT * FROM events INTO OUTFILE '{target}'")
    assert sneaky.returncode == 2
    assert "INTO OUTFILE is not allowed" in sneaky.stderr
    assert not target.exists()
    assert radar.scalar("SELECT count() FROM events") == 50  # the store is unharmed

    assert radar.stop(store) == 0
    # with no store running, radar sql opens the database itself
    direct = radar.run("sql", "SELECT count() FROM events", "--format", "tsv")
    assert direct.returncode == 0, direct.stderr
    assert direct.stdout.split()[-1] == "50"


def test_publish_routes_by_type_and_dead_letters_lines_it_cannot_route(radar: RadarEnv) -> None:
    lines = [encode(event(i, KINDS[i % 5])) for i in range(40)]
    lines.insert(10, b"garbage line")
    lines.insert(20, encode({"type": "webinar", "account_id": "a"}))
    lines.insert(30, b"")
    data = b"\n".join(lines) + b"\n"
    (radar.tmp / "events.jsonl").write_bytes(data)

    result = radar.run("publish", str(radar.tmp / "events.jsonl"))
    assert result.returncode == 0, result.stderr
    assert "published 42 messages" in result.stdout
    assert "2 line(s) could not be routed" in result.stdout
    assert "1 blank line(s) skipped" in result.stdout

    piped = radar.run("publish", "-", input=encode(event(999)) + b"\n")
    assert piped.returncode == 0, piped.stderr
    assert "published 1 messages" in piped.stdout

    radar.start()
    radar.wait_for("SELECT count() FROM events", lambda n: n == 41)
    rows = radar.wait_for("SELECT count() FROM dead_letters", lambda n: n == 2)
    assert rows == 2
    letters: list[Any] = radar.sql(
        "SELECT source_topic, source_partition, source_offset, error_class FROM dead_letters "
        "ORDER BY source_offset")
    assert [tuple(r) for r in letters] == [
        ("publish:events.jsonl", -1, 11, "malformed_json"),
        ("publish:events.jsonl", -1, 21, "unknown_type"),
    ]
