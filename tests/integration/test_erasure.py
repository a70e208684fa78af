"""``radar erase`` while the pipeline runs (through ``radar store``), and without it: the subject
leaves every table and the engine's state, a receipt keeps only its hash, and nothing brings it
back — a later event of theirs, a redelivery, a restart (SPEC section 12)."""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

import pytest
from kafka import KafkaProducer

from tests.integration.conftest import RadarEnv, encode, event

pytestmark = pytest.mark.integration


def world(start: int) -> list[dict[str, Any]]:
    """acct-1: Ana (a champion who engages, then leaves) and Bo; acct-2: Cy."""
    day = "2026-03-{:02d}T10:00:00+00:00"
    return [
        event(start, "account_profile", account="acct-1", champion_ids=["ana", "bo"],
              occurred_at=day.format(1)),
        event(start + 1, "role_change", account="acct-1", stakeholder_id="ana",
              buying_role="champion", occurred_at=day.format(2)),
        event(start + 2, "role_change", account="acct-1", stakeholder_id="bo",
              occurred_at=day.format(2)),
        event(start + 3, "outreach_reply", account="acct-1", stakeholder_id="ana",
              occurred_at=day.format(3)),
        event(start + 4, "content_interaction", account="acct-1", stakeholder_id="ana",
              action="pricing_page_visit", occurred_at=day.format(4)),
        event(start + 5, "outreach_reply", account="acct-1", stakeholder_id="bo",
              occurred_at=day.format(5)),
        event(start + 6, "role_change", account="acct-1", stakeholder_id="ana", change="left",
              occurred_at=day.format(6)),
        event(start + 7, "outreach_reply", account="acct-2", stakeholder_id="cy",
              occurred_at=day.format(6)),
    ]


def publish(radar: RadarEnv, events: list[dict[str, Any]], extra: list[bytes] = ()) -> None:
    producer = KafkaProducer(bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"], acks="all")
    topics = radar.settings.topics
    for e in events:
        producer.send(topics.for_type(e["type"]), key=e["account_id"].encode(), value=encode(e))
    for raw in extra:  # malformed lines that mention Ana: dead letters
        producer.send(topics.for_type("outreach_reply"), key=b"acct-1", value=raw)
    producer.close()


def traces_of(radar: RadarEnv, sid: str) -> dict[str, int]:
    quoted = f'"{sid}"'
    return {
        "events": radar.scalar(f"SELECT count() FROM events WHERE stakeholder_id = '{sid}'"),
        "signals": radar.scalar(f"SELECT count() FROM signals WHERE stakeholder_id = '{sid}'"),
        "evidence": radar.scalar(
            f"SELECT count() FROM signals WHERE position(evidence, '{quoted}') > 0"),
        "account_state": radar.scalar(
            f"SELECT count() FROM account_state WHERE has(champions, '{sid}')"),
        "dead_letters": radar.scalar(
            f"SELECT count() FROM dead_letters WHERE position(payload, '{sid}') > 0"),
    }


def erasures_applied(radar: RadarEnv) -> float:
    line = re.search(r"^radar_erasures_total (\S+)$", radar.metrics(), re.M)
    return float(line.group(1)) if line else 0.0


def test_erasing_a_person_while_the_pipeline_runs_leaves_no_trace(radar: RadarEnv) -> None:
    publish(radar, world(0), extra=[b'{"stakeholder_id": "ana", "oops": ', b'"ana"'])
    radar.start()
    radar.wait_caught_up()
    radar.wait_for("SELECT count() FROM dead_letters", lambda n: n == 2)
    before = traces_of(radar, "ana")
    assert before["events"] == 4 and before["signals"] >= 1 and before["dead_letters"] == 2
    assert traces_of(radar, "bo")["events"] == 2
    assert traces_of(radar, "bo")["account_state"] >= 1

    erased = radar.run("erase", "--stakeholder", "ana")
    assert erased.returncode == 0, erased.stderr
    assert "events" in erased.stdout and " 4" in erased.stdout

    assert traces_of(radar, "ana") == dict.fromkeys(before, 0)
    assert traces_of(radar, "bo")["events"] == 2  # nobody else is touched
    assert radar.scalar("SELECT count() FROM events WHERE account_id = 'acct-2'") == 1
    receipt = radar.sql("SELECT subject_kind, subject_hash, removed['events'], "
                        "toString(tuple(*)) FROM erasures")
    assert len(receipt) == 1
    kind, digest, events_removed, whole = receipt[0]
    assert (kind, events_removed) == ("stakeholder", 4)
    assert digest == hashlib.sha256(b"stakeholder\x00ana").hexdigest()
    assert "ana" not in whole.replace(digest, "")
    # the worker learns of it from the erasures topic (the store published the record)
    deadline = time.monotonic() + 30
    while erasures_applied(radar) < 1:
        assert time.monotonic() < deadline, "the worker did not apply the erasure"
        time.sleep(0.2)

    # Ana's events again (a producer replaying its file), and Bo 40 days on, past the 30 days
    # in which a successor of a departed champion is due: Bo's are stored, hers are dropped,
    # and her departure, forgotten by the engine, brings no succession signal
    again = [{**e, "event_id": f"again-{e['event_id']}"} for e in world(0)]
    later = event(100, "outreach_reply", account="acct-1", stakeholder_id="bo",
                  occurred_at="2026-04-20T10:00:00+00:00")
    publish(radar, [*again, later])
    radar.wait_caught_up()
    assert traces_of(radar, "ana") == dict.fromkeys(before, 0)
    assert traces_of(radar, "bo")["events"] == 5
    assert "radar_events_erased_total 4.0" in radar.metrics()

    # a restart reads the erasure before any event
    radar.stop(radar.workers[-1])
    radar.stop(radar.stores[-1])
    radar.start()
    publish(radar, [{**e, "event_id": f"third-{e['event_id']}"} for e in world(0)])
    radar.wait_caught_up()
    assert traces_of(radar, "ana") == dict.fromkeys(before, 0)
    assert traces_of(radar, "bo")["events"] == 7


def test_erasing_an_account_without_the_pipeline_reaches_it_at_its_next_start(
        radar: RadarEnv) -> None:
    publish(radar, world(0))
    worker = radar.start()
    radar.wait_caught_up()
    assert radar.scalar("SELECT count() FROM account_state FINAL WHERE account_id = 'acct-2'") == 1
    assert radar.stop(worker) == 0
    assert radar.stop(radar.stores[-1]) == 0

    erased = radar.run("erase", "--account", "acct-2")
    assert erased.returncode == 0, erased.stderr
    assert radar.scalar("SELECT count() FROM events WHERE account_id = 'acct-2'") == 0
    assert radar.scalar("SELECT count() FROM account_state WHERE account_id = 'acct-2'") == 0
    assert radar.scalar("SELECT count() FROM events WHERE account_id = 'acct-1'") == 7

    radar.start()
    publish(radar, [{**e, "event_id": f"late-{e['event_id']}"} for e in world(0)])
    radar.wait_caught_up()
    assert radar.scalar("SELECT count() FROM events WHERE account_id = 'acct-2'") == 0
    assert radar.scalar("SELECT count() FROM signals WHERE account_id = 'acct-2'") == 0
    assert radar.scalar("SELECT count() FROM account_state WHERE account_id = 'acct-2'") == 0
    assert radar.scalar("SELECT count() FROM events WHERE account_id = 'acct-1'") == 14


def test_erase_needs_a_subject_and_says_so(radar: RadarEnv) -> None:
    refused = radar.run("erase")
    assert refused.returncode == 2
    assert "--stakeholder" in refused.stderr and "--account" in refused.stderr


def test_a_worker_creates_a_missing_erasures_topic_compacted(radar: RadarEnv) -> None:
    """A broker that creates topics on first use would make one that deletes its records after
    its retention: the worker creates it first, compacted, so an erasure is kept for ever."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    topic = radar.settings.topics.erasures
    admin = KafkaAdminClient(bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"])
    try:
        admin.delete_topics([topic])
        deadline = time.monotonic() + 30
        while topic in admin.list_topics():
            assert time.monotonic() < deadline, "the topic was not deleted"
            time.sleep(0.2)
        radar.start_worker()
        assert topic in admin.list_topics()
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"cleanup.policy": None})],
            config_filter="all")
        policy = described["topic"][topic]["cleanup.policy"]["value"]
    finally:
        admin.close()
    assert policy == "compact"
