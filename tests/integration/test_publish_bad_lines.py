"""``radar publish`` on the real broker: a file of valid lines mixed with every kind of bad line.

Every valid line reaches its topic, every bad line is a dead letter naming its line number and
error class, no bad line takes another line down with it, and the summary and exit code say
what happened.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.consumer.fetcher import ConsumerRecord

from schemas.topics import TopicNames
from streams.publish import publish_file
from streams.routing import TopicRules
from tests.integration.conftest import RadarEnv, encode, event

pytestmark = pytest.mark.integration

KINDS = ("ad_impression", "outreach_reply", "content_interaction", "role_change",
         "account_profile")
DEEP = b'{"a":' * 100_000 + b"1" + b"}" * 100_000  # 600,001 bytes
SOURCE = "events.jsonl"


def read_all(bootstrap: str, topics: list[str]) -> dict[str, list[ConsumerRecord]]:
    """Every message now on ``topics``, read up to the end offsets of their partitions."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             max_partition_fetch_bytes=4 * 1024 * 1024,
                             fetch_max_bytes=16 * 1024 * 1024)
    try:
        partitions = [TopicPartition(t, p) for t in topics
                      for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        found: dict[str, list[ConsumerRecord]] = {t: [] for t in topics}
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, "the topics could not be read to their end"
            for tp, records in consumer.poll(timeout_ms=500).items():
                found[tp.topic] += records
        return found
    finally:
        consumer.close()


def letters_by_line(records: list[ConsumerRecord]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for r in records:
        h = {k: v.decode() for k, v in r.headers}
        lineno = int(h["radar.source_offset"])
        assert lineno not in out, f"line {lineno} was dead-lettered twice"
        out[lineno] = {"class": h["radar.error_class"], "reason": h["radar.reason"],
                       "source": h["radar.source_topic"],
                       "partition": int(h["radar.source_partition"]), "key": r.key,
                       "value": r.value}
    return out


def event_ids(records: list[ConsumerRecord]) -> Counter[str]:
    return Counter(json.loads(r.value)["event_id"] for r in records)


def expected_ids(valid: list[dict[str, Any]], topics: TopicNames) -> dict[str, Counter[str]]:
    want: dict[str, Counter[str]] = {t: Counter() for t in topics.inputs}
    for e in valid:
        want[topics.for_type(e["type"]) or ""][e["event_id"]] += 1
    return want


def test_publish_survives_every_kind_of_bad_line(radar: RadarEnv) -> None:
    topics = radar.settings.topics
    valid = [event(i, KINDS[i % 5]) for i in range(250)]
    lines: list[bytes] = [encode(e) for e in valid]
    two_mb = encode(event(9000, "ad_impression", note="x" * 2_000_000))
    keyless_profile = event(9001, "account_profile")
    del keyless_profile["account_id"]
    bad = {  # at these line numbers (1-based), in this order: each bad line among valid ones
        12: (b"garbage, not JSON", "malformed_json", "not valid JSON: expected value at line 1"),
        40: (DEEP, "malformed_json", "nested deeper than 200 levels"),
        77: (two_mb, "oversize", f"line is {len(two_mb):,} bytes; at most 998,848 fit"),
        120: (encode(keyless_profile), "unroutable", "account_id: a non-empty string is required"),
        160: (b'{"type": "ad_impression", "account_id": "acct-\xff\xfe"}', "malformed_json",
              "not valid JSON: not UTF-8 (byte 0xff at offset 46)"),
    }
    blank = {60: b"", 200: b"  \t "}
    for lineno, raw in sorted({**{n: b[0] for n, b in bad.items()}, **blank}.items()):
        lines.insert(lineno - 1, raw)
    (radar.tmp / SOURCE).write_bytes(b"\n".join(lines) + b"\n")

    result = radar.run("publish", str(radar.tmp / SOURCE))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    summary = result.stdout.splitlines()
    assert summary[0].startswith(f"published {len(valid) + len(bad)} messages in ")
    assert summary[1:] == [
        *[f"  {t:<32} {n:>9}" for t, n in sorted(
            Counter([topics.for_type(e["type"]) for e in valid] + [topics.dead_letters] * 5).items())],
        "  5 line(s) could not be routed or sent and went to the dead-letter topic, by error class:",
        "    malformed_json                 3  (lines 12, 40, 160)",
        "    oversize                       1  (line 77)",
        "    unroutable                     1  (line 120)",
        "  2 blank line(s) skipped",
    ]

    found = read_all(radar.env["RADAR_KAFKA_BOOTSTRAP"], [*topics.inputs, topics.dead_letters])
    # every valid line on its own topic, once, keyed by its account
    want = expected_ids(valid, topics)
    for topic in topics.inputs:
        assert event_ids(found[topic]) == want[topic], topic
        for r in found[topic]:
            assert r.key == json.loads(r.value)["account_id"].encode()
    # every bad line, and nothing else, on the dead-letter topic with its line number and class
    letters = letters_by_line(found[topics.dead_letters])
    assert set(letters) == set(bad)
    for lineno, (raw, error_class, reason) in bad.items():
        letter = letters[lineno]
        assert (letter["class"], letter["source"], letter["partition"]) == (
            error_class, f"publish:{SOURCE}", -1), lineno
        assert letter["reason"].startswith(reason), (lineno, letter["reason"])
        if lineno != 77:
            assert letter["value"] == raw, lineno  # the original bytes
    # the 2 MB line cannot be carried whole: a prefix, and the reason says so
    assert two_mb.startswith(letters[77]["value"])
    assert len(letters[77]["value"]) == 4096
    assert letters[77]["reason"].endswith(f"the dead letter carries its first 4,096 of "
                                          f"{len(two_mb):,} bytes")
    assert letters[120]["key"] is None


def own_topics(radar: RadarEnv, tag: str, configs: dict[str, dict[str, str]]) -> TopicNames:
    """Topics of a single partition each (lines sent close together share a batch) under a
    prefix of this test's own, with ``configs`` by topic suffix; listed by the broker before
    the test goes on."""
    topics = TopicNames(f"{radar.env['RADAR_TOPIC_PREFIX']}-{tag}")
    configs = {"accounts": {"cleanup.policy": "compact"}, **configs}
    admin = KafkaAdminClient(bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"])
    try:
        admin.create_topics([NewTopic(topics.name(suffix), 1, 1,
                                      topic_configs=configs.get(suffix, {}))
                             for suffix in [t.removeprefix(f"{topics.prefix}.") for t in topics.all()]])
        deadline = time.monotonic() + 30
        while not set(topics.all()) <= set(admin.list_topics()):
            assert time.monotonic() < deadline, "the topics were not created"
            time.sleep(0.2)
    finally:
        admin.close()
    return topics


def test_a_line_the_broker_refuses_after_all_is_dead_lettered_and_its_batch_is_published(
    radar: RadarEnv, tmp_path: Path,
) -> None:
    # publish is told the broker takes 4 MB messages on uncompacted topics (as when the broker
    # will not describe its topics and Kafka's defaults are wrong), but ad-impressions takes
    # 200,000 bytes and accounts is compacted: the broker refuses two lines
    topics = own_topics(radar, "refused", {"ad-impressions": {"max.message.bytes": "200000"}})
    bootstrap = radar.env["RADAR_KAFKA_BOOTSTRAP"]
    rules = TopicRules(topics, dict.fromkeys([*topics.inputs, topics.dead_letters], 4_000_000),
                       frozenset())
    valid = [event(i, "account_profile", account=f"acct-{i}") for i in range(600)]
    valid += [event(i, "ad_impression") for i in range(600, 900)]
    keyless = event(5000, "account_profile")
    del keyless["account_id"]
    too_large = encode(event(5001, "ad_impression", note="x" * 500_000))
    lines = [encode(e) for e in valid]
    lines.insert(299, encode(keyless))  # line 300, among the profiles
    lines.insert(749, too_large)  # line 750, among the impressions
    path = tmp_path / SOURCE
    path.write_bytes(b"\n".join(lines) + b"\n")

    summary = publish_file(str(path), bootstrap=bootstrap, topics=topics, show_progress=False,
                           rules=rules)

    assert summary.failed == []
    assert summary.dead_letters == Counter({"refused_by_broker": 1, "oversize": 1})
    assert summary.resent_alone > 0  # the keyless line's batch was refused whole
    assert summary.sent == len(valid) + 2
    found = read_all(bootstrap, [*topics.inputs, topics.dead_letters])
    want = expected_ids(valid, topics)
    for topic in topics.inputs:
        assert event_ids(found[topic]) == want[topic], topic
    letters = letters_by_line(found[topics.dead_letters])
    assert set(letters) == {300, 750}
    assert letters[300]["class"] == "refused_by_broker"
    assert letters[300]["reason"].startswith(
        f"the broker refused it on {topics.name('accounts')}: InvalidRecordError")
    assert letters[300]["value"] == encode(keyless)
    assert letters[750]["class"] == "oversize"
    assert letters[750]["reason"].startswith(
        f"the broker refused it on {topics.name('ad-impressions')}: MessageSizeTooLargeError")
    assert too_large.startswith(letters[750]["value"])
    assert len(letters[750]["value"]) == 4096


def test_a_line_whose_dead_letter_is_refused_too_fails_the_run(radar: RadarEnv, tmp_path: Path) -> None:
    # a compacted dead-letter topic refuses a dead letter without a key (a line not even JSON)
    topics = own_topics(radar, "lost", {"dead-letters": {"cleanup.policy": "compact"}})
    bootstrap = radar.env["RADAR_KAFKA_BOOTSTRAP"]
    valid = [event(i, KINDS[i % 5]) for i in range(100)]
    lines = [encode(e) for e in valid]
    lines.insert(29, b"not json, so no key")  # line 30
    lines.insert(59, encode({"type": "webinar", "account_id": "acct-1"}))  # line 60: has a key
    env = RadarEnv({**radar.env, "RADAR_TOPIC_PREFIX": topics.prefix}, tmp_path)
    (tmp_path / SOURCE).write_bytes(b"\n".join(lines) + b"\n")

    result = env.run("publish", str(tmp_path / SOURCE))

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    last = result.stdout.splitlines()[-1]
    assert last.startswith("  FAILED: 1 line(s) could be neither published nor dead-lettered: "
                           "line 30: its dead letter was refused: InvalidRecordError"), last
    assert "    unknown_type                   1  (line 60)" in result.stdout
    assert "malformed_json" not in result.stdout  # not counted as dead-lettered
    found = read_all(bootstrap, [*topics.inputs, topics.dead_letters])
    want = expected_ids(valid, topics)
    for topic in topics.inputs:
        assert event_ids(found[topic]) == want[topic], topic
    assert set(letters_by_line(found[topics.dead_letters])) == {60}


def test_publish_refuses_to_start_when_its_topics_do_not_exist(radar: RadarEnv) -> None:
    missing = RadarEnv({**radar.env, "RADAR_TOPIC_PREFIX": "nowhere"}, radar.tmp)
    (radar.tmp / SOURCE).write_bytes(encode(event(1)) + b"\n")

    result = missing.run("publish", str(radar.tmp / SOURCE))

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("radar publish: topic(s) nowhere.accounts, nowhere.ad-impressions")
    assert "do not exist on the broker" in result.stderr
    admin = KafkaAdminClient(bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"])
    try:
        assert not [t for t in admin.list_topics() if t.startswith("nowhere.")]
    finally:
        admin.close()
