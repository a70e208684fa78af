"""``radar notify`` as a user runs it (SPEC section 10), against the real broker and real HTTP
receivers on loopback: signals are produced onto the signals topic as a worker does (the
engine is tested elsewhere; here the notifier is), and what the receivers get is counted.

- once per (signal, destination) across a kill -9 and across two notifiers rebalancing (the
  only repeat allowed: a 2xx the killed notifier had not recorded, with the same key);
- a destination answering 500 for ever does not hold back another; 503 with Retry-After is
  retried after the time asked; what is given up is dead-lettered and counted;
- stale and snoozed signals are recorded and not sent; a withdrawn alert gets a follow-up;
- a bad configuration is refused at start-up, naming the key, without printing a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import signal as signals
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from schemas.notify import DeliveryRecord
from schemas.signals import Signal, TierChange
from tests.integration.conftest import RadarEnv, free_port
from tools.local_receiver import Behaviour, Receiver, ReceiverThread

pytestmark = pytest.mark.integration
SECRET = "a-secret-of-32-characters-long!!"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    thread = ReceiverThread(Receiver())
    yield thread.start()
    thread.stop()


def make_signal(n: int, account: str, *, status: str = "open", age: timedelta = timedelta(0),
                kind: str = "champion_left") -> dict[str, Any]:
    now = datetime.now(UTC)
    return Signal(
        signal_id=f"sig-{n:04d}", account_id=account, stakeholder_id=f"{account}-champ",
        type=kind, category="churn", severity="critical", occurred_at=now - age,
        detected_at=now, rule_version="test",
        evidence={"event_ids": [f"e{n}"], "title": "VP Sales", "function": "commercial",
                  "renewal_in_days": 40},
        status=status, withdrawn_at=now if status == "withdrawn" else None,
    ).model_dump(mode="json")


def owner_of(account: str) -> str:
    return "ana@example.com" if int(account.rsplit("-", 1)[1]) % 2 == 0 else "bob@example.com"


def produce(radar: RadarEnv, signals: list[dict[str, Any]]) -> float:
    p = KafkaProducer(bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"], acks="all")
    for s in signals:
        p.send(radar.settings.topics.signals, key=s["account_id"].encode(),
               value=json.dumps(s).encode())
    p.flush()
    p.close()
    return time.time()


def produce_accounts(radar: RadarEnv, accounts: list[str]) -> None:
    """The accounts' CRM profiles, where the notifier reads their names and owners."""
    p = KafkaProducer(bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"], acks="all")
    topic = radar.settings.topics.for_type("account_profile")
    for a in accounts:
        p.send(topic, key=a.encode(), value=json.dumps({
            "event_id": f"profile-{a}", "type": "account_profile", "schema_version": 1,
            "occurred_at": "2026-01-01T00:00:00+00:00", "account_id": a,
            "name": f"Company {a}", "sector": "software", "tier": 1,
            "renewal_date": "2027-06-01", "arr": 100000.0, "owner": owner_of(a)}).encode())
    p.flush()
    p.close()


def records(radar: RadarEnv) -> list[DeliveryRecord]:
    """Everything on the deliveries topic (the notifiers' record), in order per partition."""
    topic = radar.settings.topics.notify_deliveries
    consumer = KafkaConsumer(bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"],
                             enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[DeliveryRecord] = []
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, "the deliveries topic was not read in 30 s"
            for batch in consumer.poll(timeout_ms=500).values():
                out += [DeliveryRecord.model_validate_json(m.value) for m in batch]
        return out
    finally:
        consumer.close()


def configure(radar: RadarEnv, receiver: Receiver, text: str) -> None:
    path = radar.tmp / "notify.toml"
    path.write_text(text.replace("{base}", f"http://127.0.0.1:{receiver.port}"))
    radar.env.update({"RADAR_NOTIFY_CONFIG": str(path), "RADAR_NOTIFY_PORT": str(free_port())})
    if "env:RADAR_HOOK_SECRET" in text:  # a RADAR_ variable nothing names is refused
        radar.env["RADAR_HOOK_SECRET"] = SECRET


def start_notify(radar: RadarEnv) -> tuple[Any, int]:
    """A ``radar notify`` process and its /metrics port (each its own: several may run)."""
    port = free_port()
    radar.env["RADAR_NOTIFY_PORT"] = str(port)
    return radar._launch("notify", timeout=60), port


def notify_metrics(port: int) -> dict[tuple[str, str], float]:
    found: dict[tuple[str, str], float] = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
        text = page.read().decode()
    for line in text.splitlines():
        m = re.match(r'radar_notify_deliveries_total\{destination="([^"]+)",outcome="([^"]+)"\}'
                     r" ([0-9.e+]+)", line)
        if m:
            found[(m.group(1), m.group(2))] = float(m.group(3))
    return found


def check_signature(r: Any) -> None:
    expected = "sha256=" + hmac.new(SECRET.encode(), r.body, hashlib.sha256).hexdigest()
    assert r.headers.get("X-Radar-Signature") == expected, "a webhook body not signed right"


TWO_DESTINATIONS = """
max_age = "P3650D"
[[destination]]
name = "cs"
kind = "slack"
url = "{base}/slack"
[[destination]]
name = "crm"
kind = "webhook"
url = "{base}/crm"
secret = "env:RADAR_HOOK_SECRET"
[[route]]
destination = "cs"
types = ["champion_left"]
owners = ["ana@example.com"]
[[route]]
destination = "crm"
"""


def test_once_per_destination_across_kill9_and_two_notifiers_rebalancing(
        radar: RadarEnv, receiver: Receiver) -> None:
    # slow receivers, so the kill and the rebalance fall in the middle of the deliveries
    receiver.behaviours.update(slack=Behaviour(delay_s=0.15), crm=Behaviour(delay_s=0.15))
    configure(radar, receiver, TWO_DESTINATIONS)
    accounts = [f"acct-{i}" for i in range(40)]
    produce_accounts(radar, accounts)
    first = [make_signal(i, accounts[i % 40]) for i in range(60)]
    second = [make_signal(100 + i, accounts[i % 40]) for i in range(60)]

    def expected(signals: list[dict[str, Any]]) -> set[str]:
        keys = {f"{s['signal_id']}:crm" for s in signals}
        return keys | {f"{s['signal_id']}:cs" for s in signals
                       if owner_of(s["account_id"]) == "ana@example.com"}

    def delivered() -> set[str]:
        return set(receiver.counts("slack")) | set(receiver.counts("crm"))

    a, _ = start_notify(radar)
    produce(radar, first)
    receiver.wait(lambda r: len(r.delivered("crm")) >= 20, 60, "the first deliveries")
    a.send_signal(signals.SIGKILL)
    a.wait(timeout=30)
    time.sleep(1.0)  # requests sent before the kill are answered (2xx) after it: counted here
    before_kill = delivered()
    unrecorded = before_kill - {r.key for r in records(radar)}  # 2xx, no record yet
    assert len(before_kill) < len(expected(first)), "the kill came too late to test anything"

    b, b_port = start_notify(radar)
    c, _ = start_notify(radar)  # two notifiers share the partitions: a rebalance
    produce(radar, second + first[:20])  # a worker may send a signal again: still once
    receiver.wait(lambda r: len(delivered()) >= len(expected(first)) + 30, 90,
                  "deliveries after the restart")
    radar.stop(c)  # its partitions go to b mid-stream
    receiver.wait(lambda r: delivered() >= expected(first + second), 90, "every delivery")
    time.sleep(2.0)  # anything sent twice would arrive by now

    counts = receiver.counts("slack") + receiver.counts("crm")
    assert set(counts) == expected(first + second)
    repeated = {k for k, n in counts.items() if n > 1}
    assert repeated <= unrecorded, f"sent twice: {sorted(repeated - unrecorded)}"
    assert all(n <= 2 for n in counts.values())
    for r in receiver.delivered("crm"):
        check_signature(r)
        body = json.loads(r.body)
        assert r.key == f"{body['signal_id']}:crm"
        assert body["owner"] == owner_of(body["account_id"])
        assert body["account_name"] == f"Company {body['account_id']}"
    for r in receiver.delivered("slack"):
        assert "X-Radar-Signature" not in r.headers
        message = json.loads(r.body)
        assert "ana@example.com" in json.dumps(message["blocks"])
    recorded = Counter(r.key for r in records(radar) if r.outcome == "delivered")
    assert set(recorded) == expected(first + second)
    metrics = notify_metrics(b_port)
    print(f"\nkill -9 + rebalance: {len(counts)} (signal, destination) pairs, "
          f"{sum(counts.values())} deliveries, {len(repeated)} repeated "
          f"(2xx not yet recorded at the kill: {len(unrecorded)}); "
          f"notifier b counted {metrics}")
    radar.stop(b)


def test_a_failing_destination_does_not_delay_another(radar: RadarEnv,
                                                      receiver: Receiver) -> None:
    receiver.behaviours.update(down=Behaviour(status=500),
                               flaky=Behaviour(fail_first=2, retry_after="1"))
    configure(radar, receiver, """
max_age = "P3650D"
give_up_after = "PT4S"
[[destination]]
name = "ok"
kind = "webhook"
url = "{base}/ok"
secret = "env:RADAR_HOOK_SECRET"
[[destination]]
name = "down"
kind = "webhook"
url = "{base}/down"
[[destination]]
name = "flaky"
kind = "webhook"
url = "{base}/flaky"
[[route]]
destination = "down"
[[route]]
destination = "ok"
[[route]]
destination = "flaky"
""")
    produce_accounts(radar, ["acct-1"])
    _, port = start_notify(radar)
    sent = produce(radar, [make_signal(i, "acct-1") for i in range(5)])
    receiver.wait(lambda r: len(r.counts("ok")) == 5, 30, "the healthy destination")
    on_time = max(r.at for r in receiver.delivered("ok")) - sent
    assert on_time < 3.0, f"the healthy destination waited {on_time:.1f} s"
    for r in receiver.delivered("ok"):
        check_signature(r)
    receiver.wait(lambda r: len(r.counts("flaky")) == 5, 30, "the flaky destination")
    for key in receiver.counts("flaky"):
        tries = [r for r in receiver.on("flaky") if r.key == key]
        assert [r.status for r in tries] == [503, 503, 200]
        gaps = [b.at - a.at for a, b in zip(tries, tries[1:], strict=False)]
        assert min(gaps) >= 0.9, f"Retry-After: 1 not honoured: {gaps}"

    def dead(kind: str) -> list[DeliveryRecord]:
        return [r for r in records(radar) if r.destination == kind]

    deadline = time.monotonic() + 30
    while len(dead("down")) < 5 and time.monotonic() < deadline:
        time.sleep(0.3)
    down = dead("down")
    assert len(down) == 5 and {r.outcome for r in down} == {"dead_lettered"}
    assert {r.http_status for r in down} == {500} and all(r.attempts >= 2 for r in down)
    assert receiver.url("down") not in json.dumps([r.model_dump(mode="json") for r in down])
    metrics = notify_metrics(port)
    assert metrics[("ok", "delivered")] == 5 and metrics[("flaky", "delivered")] == 5
    assert metrics[("down", "dead_lettered")] == 5 and metrics[("flaky", "retried")] == 10
    assert metrics[("down", "retried")] >= 5
    print(f"\nfailures: healthy destination on time ({on_time:.2f} s), counted {metrics}")


def test_stale_and_snoozed_are_recorded_not_sent_and_a_withdrawal_follows_up(
        radar: RadarEnv, receiver: Receiver) -> None:
    configure(radar, receiver, """
[[destination]]
name = "crm"
kind = "webhook"
url = "{base}/crm"
[[route]]
destination = "crm"
""")
    produce_accounts(radar, ["acct-1", "acct-2"])
    held = radar.run("snooze", "acct-2", "--days", "2")
    assert held.returncode == 0, held.stderr
    listed = radar.run("snooze", "--list").stdout
    assert "acct-2" in listed and "acct-1" not in listed
    _, port = start_notify(radar)
    fresh, replayed, snoozed = (make_signal(1, "acct-1"),
                                make_signal(2, "acct-1", age=timedelta(days=300)),
                                make_signal(3, "acct-2"))
    produce(radar, [fresh, replayed, snoozed])
    receiver.wait(lambda r: len(r.delivered("crm")) == 1, 30, "the fresh alert")
    produce(radar, [{**fresh, "status": "withdrawn"}, {**replayed, "status": "withdrawn"}])
    receiver.wait(lambda r: len(r.delivered("crm")) == 2, 30, "the follow-up")
    first, follow_up = receiver.delivered("crm")
    assert first.key == "sig-0001:crm" and json.loads(first.body)["status"] == "open"
    assert follow_up.key == "sig-0001:crm:withdrawn"
    assert json.loads(follow_up.body)["status"] == "withdrawn"
    outcomes = {r.key: r.outcome for r in records(radar)}
    assert outcomes == {"sig-0001:crm": "delivered", "sig-0002:crm": "stale",
                        "sig-0003:crm": "snoozed", "sig-0001:crm:withdrawn": "delivered"}

    cleared = radar.run("snooze", "acct-2", "--clear")
    assert cleared.returncode == 0 and "cleared 1" in cleared.stdout, cleared.stderr
    assert "no account is snoozed" in radar.run("snooze", "--list").stdout
    produce(radar, [make_signal(4, "acct-2")])  # the notifier follows the snoozes
    receiver.wait(lambda r: len(r.delivered("crm")) == 3, 30, "an alert once unsnoozed")
    time.sleep(1.0)
    assert [r.key for r in receiver.on("crm")] == \
        ["sig-0001:crm", "sig-0001:crm:withdrawn", "sig-0004:crm"]
    metrics = notify_metrics(port)
    assert metrics[("crm", "stale")] == 1 and metrics[("crm", "snoozed")] == 1
    assert metrics[("crm", "delivered")] == 3


def test_a_bad_configuration_is_refused_naming_the_key(radar: RadarEnv, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[destination]]\nname = "x"\nkind = "webhook"\nurl = "env:RADAR_HOOK_URL"\n'
                    'secret = "env:RADAR_HOOK_SECRET"\n[[route]]\ndestinaton = "x"\n')
    radar.env.update({"RADAR_NOTIFY_CONFIG": str(path),
                      "RADAR_HOOK_URL": "https://hooks.example.com/T000/B000/very-secret-path",
                      "RADAR_HOOK_SECRET": SECRET})
    started = time.monotonic()
    run = radar.run("notify", timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "route[0].destinaton" in run.stderr and "route[0].destination" in run.stderr
    assert "very-secret-path" not in run.stdout + run.stderr
    assert SECRET not in run.stdout + run.stderr
    assert time.monotonic() - started < 30
    path.write_text(path.read_text().replace("destinaton", "destination"))
    checked = radar.run("notify", "--check")
    assert checked.returncode == 0 and "1 destination(s), 1 route(s)" in checked.stdout, \
        checked.stderr
    del radar.env["RADAR_HOOK_URL"]
    missing = radar.run("notify", "--check")
    assert missing.returncode == 2
    assert "destination[0].url: env:RADAR_HOOK_URL is not set" in missing.stderr


def test_a_digest_is_sent_on_demand_per_owner(radar: RadarEnv, receiver: Receiver) -> None:
    configure(radar, receiver, """
[[destination]]
name = "crm"
kind = "webhook"
url = "{base}/digest"
[[destination]]
name = "cs"
kind = "slack"
url = "{base}/slack-digest"
[[digest]]
name = "daily-crm"
destination = "crm"
every = "daily"
at = "08:00"
timezone = "Europe/Paris"
[[digest]]
name = "weekly-ana"
destination = "cs"
every = "weekly"
owners = ["ana@example.com"]
""")
    produce_accounts(radar, ["acct-1", "acct-2", "acct-4"])
    old = make_signal(9, "acct-4")
    old["detected_at"] = (datetime.now(UTC) - timedelta(days=9)).isoformat()
    produce(radar, [make_signal(1, "acct-2"), make_signal(2, "acct-2"), make_signal(3, "acct-1"),
                    make_signal(4, "acct-1", kind="engagement_drop"), old])
    now = datetime.now(UTC)
    p = KafkaProducer(bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"], acks="all")
    for account, tier, previous in (("acct-2", "at_risk", "stable"),
                                    ("acct-4", "expansion_ready", "stable")):
        p.send(radar.settings.topics.account_tiers, key=account.encode(), value=TierChange(
            account_id=account, tier=tier, previous_tier=previous, occurred_at=now,
            detected_at=now, rule_version="test", reasons=[f"{account} went {tier}"],
        ).model_dump_json().encode())
    p.flush()
    p.close()

    sent = radar.run("notify", "--digest-now", "daily-crm")
    assert sent.returncode == 0, sent.stderr
    # acct-2 and acct-4 are ana's, acct-1 bob's (owner_of)
    assert "ana@example.com: 2 new signal(s), 1 entered at risk, 1 entered expansion ready" \
        in sent.stdout, sent.stdout
    assert "bob@example.com: 2 new signal(s), 0 entered at risk" in sent.stdout, sent.stdout
    bodies = {json.loads(r.body)["owner"]: json.loads(r.body)
              for r in receiver.delivered("digest")}
    assert set(bodies) == {"ana@example.com", "bob@example.com"}
    ana, bob = bodies["ana@example.com"], bodies["bob@example.com"]
    # acct-4's signal of nine days ago is not in a daily digest
    assert ana["counts"] == {"champion_left": 2} and ana["total"] == 2
    assert bob["counts"] == {"champion_left": 1, "engagement_drop": 1}
    assert [e["account_id"] for e in ana["entered_at_risk"]] == ["acct-2"]
    assert ana["entered_at_risk"][0]["reasons"] == ["acct-2 went at_risk"]
    assert [e["account_id"] for e in ana["entered_expansion_ready"]] == ["acct-4"]
    assert bob["entered_at_risk"] == [] and bob["entered_expansion_ready"] == []
    keys = {r.key for r in receiver.delivered("digest")}
    assert all(k.startswith("digest:daily-crm:") for k in keys)
    assert {r.key for r in records(radar) if r.message == "digest"} == keys

    weekly = radar.run("notify", "--digest-now", "weekly-ana")
    assert weekly.returncode == 0, weekly.stderr
    (slack,) = receiver.delivered("slack-digest")  # ana's only: the digest names her
    message = json.loads(slack.body)
    assert "ana@example.com" in message["blocks"][0]["text"]["text"]
    unknown = radar.run("notify", "--digest-now", "monthly")
    assert unknown.returncode == 2 and "daily-crm, weekly-ana" in unknown.stderr
