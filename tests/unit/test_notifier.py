"""What ``radar notify`` does with the signals of its partitions (streams.notify), with the
delivery and the record handed in (the process, against the real broker and receivers, is
tests/integration/test_notify.py): a signal read twice while its delivery is under way goes
once; a withdrawal waits for its alert's outcome; a partition taken away abandons what waits
and leaves its offsets uncommitted; an offset is committed once everything before it is done.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from schemas.notify import load_notify_config
from sinks.webhook import DeliveryResult
from streams.metrics import Metrics
from streams.notify import Notifier
from streams.notify_kafka import Directory

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
CONFIG = load_notify_config("""
[[destination]]
name = "a"
kind = "webhook"
url = "http://127.0.0.1:1/a"
[[destination]]
name = "b"
kind = "slack"
url = "http://127.0.0.1:1/b"
[[route]]
destination = "a"
[[route]]
destination = "b"
""", {})


def signal(n: int, status: str = "open") -> bytes:
    return json.dumps({
        "signal_id": f"s{n}", "account_id": "acct-1", "type": "champion_left",
        "category": "churn", "severity": "critical", "status": status,
        "occurred_at": NOW.isoformat(), "detected_at": NOW.isoformat(), "evidence": {},
    }).encode()


class Fakes:
    """A delivery that waits for ``release`` (per destination), and a record that keeps."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []  # (destination, key), in order
        self.records: list[tuple[int, str, str]] = []
        self.release: dict[str, asyncio.Event] = {"a": asyncio.Event(), "b": asyncio.Event()}

    async def deliver(self, name: str, url: str, body: bytes, headers: dict[str, str],
                      give_up_after: float, *, abandon: asyncio.Event,
                      gate: asyncio.Semaphore) -> DeliveryResult:
        waiting = asyncio.ensure_future(self.release[name].wait())
        stopped = asyncio.ensure_future(abandon.wait())
        await asyncio.wait([waiting, stopped], return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        stopped.cancel()
        if not self.release[name].is_set():
            return DeliveryResult("abandoned", 0, None)
        self.sent.append((name, headers["Idempotency-Key"]))
        return DeliveryResult("delivered", 1, 200)

    async def produce(self, topic: str, partition: int, key: bytes, value: bytes) -> None:
        self.records.append((partition, key.decode(), json.loads(value)["outcome"]))


def notifier(fakes: Fakes, now: datetime = NOW) -> Notifier:
    n = Notifier(CONFIG, "t.notify-deliveries", Directory(), Metrics(), fakes.deliver,
                 fakes.produce, now=lambda: now)
    n.assigned([0, 1])
    n.restored({0: {}, 1: {}})
    return n


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_a_signal_read_twice_while_under_way_is_delivered_once() -> None:
    async def run() -> None:
        fakes = Fakes()
        n = notifier(fakes)
        n.take(0, 10, signal(1))
        n.take(0, 11, signal(1))  # read again (a worker sent it twice) before the first is done
        await settle()
        assert n.committable() == {0: 10}  # nothing done yet
        fakes.release["a"].set()
        fakes.release["b"].set()
        await asyncio.gather(*n.partitions[0].tasks)
        assert sorted(fakes.sent) == [("a", "s1:a"), ("b", "s1:b")]
        assert sorted(fakes.records) == [(0, "s1:a", "delivered"), (0, "s1:b", "delivered")]
        assert n.committable() == {0: 12}

    asyncio.run(run())


def test_one_destination_waiting_holds_back_neither_the_other_nor_later_signals() -> None:
    async def run() -> None:
        fakes = Fakes()
        n = notifier(fakes)
        fakes.release["b"].set()  # a hangs (retrying), b answers
        n.take(1, 5, signal(1))
        n.take(1, 6, signal(2))
        await settle()
        assert sorted(fakes.sent) == [("b", "s1:b"), ("b", "s2:b")]
        assert n.committable() == {1: 5}  # s1 and s2 wait for a: not committed past them
        fakes.release["a"].set()
        await asyncio.gather(*n.partitions[1].tasks)
        assert n.committable() == {1: 7}

    asyncio.run(run())


def test_a_withdrawal_waits_for_its_alert_and_follows_up_where_it_went() -> None:
    async def run() -> None:
        fakes = Fakes()
        n = notifier(fakes)
        fakes.release["a"].set()
        n.take(0, 1, signal(1))
        n.take(0, 2, signal(1, status="withdrawn"))  # b's alert still under way
        await settle()
        assert ("a", "s1:a:withdrawn") in fakes.sent
        fakes.release["b"].set()
        await asyncio.gather(*n.partitions[0].tasks)
        assert fakes.sent.index(("b", "s1:b")) < fakes.sent.index(("b", "s1:b:withdrawn"))
        assert len(fakes.sent) == 4

    asyncio.run(run())


def test_a_partition_taken_away_abandons_what_waits_and_commits_only_what_is_done() -> None:
    async def run() -> None:
        fakes = Fakes()
        n = notifier(fakes)
        fakes.release["b"].set()
        n.take(0, 3, signal(1))  # a waits
        n.take(1, 8, signal(2))
        await settle()
        await asyncio.wait_for(n.release([0]), 5)
        assert n.committable()[0] == 3  # s1 not recorded for a: its new owner judges it again
        assert (0, "s1:a", "delivered") not in fakes.records
        assert (0, "s1:b", "delivered") in fakes.records
        n.forget([0])
        n.take(0, 4, signal(3))  # no longer ours
        assert 0 not in n.partitions and not any(k == "s3:b" for _, k in fakes.sent)

    asyncio.run(run())


def test_stale_and_snoozed_are_recorded_without_a_delivery() -> None:
    async def run() -> None:
        fakes = Fakes()
        n = notifier(fakes, now=NOW + timedelta(days=2))
        n.take(0, 1, signal(1))
        await settle()
        await asyncio.gather(*n.partitions[0].tasks)
        assert fakes.sent == []
        assert sorted(fakes.records) == [(0, "s1:a", "stale"), (0, "s1:b", "stale")]
        assert n.committable() == {0: 2}

    asyncio.run(run())


def test_what_is_not_a_signal_is_skipped_and_committed_past() -> None:
    async def run() -> None:
        fakes = Fakes()
        n = notifier(fakes)
        n.take(0, 1, b"not json")
        n.take(0, 2, json.dumps({"signal_id": "x"}).encode())
        assert n.committable() == {0: 3} and fakes.sent == []

    asyncio.run(run())


def profile(account: str, day: int, owner: str | None, **extra: object) -> bytes:
    body: dict[str, object] = {
        "event_id": f"p-{account}-{day}", "type": "account_profile", "schema_version": 1,
        "occurred_at": f"2026-01-{day:02d}T00:00:00+00:00", "account_id": account,
        "name": f"Company {day}", "sector": "software", "tier": 1,
        "renewal_date": "2027-01-01", "arr": 1.0, **extra}
    if owner is not None:
        body["owner"] = owner
    return json.dumps(body).encode()


def test_the_directory_keeps_each_accounts_latest_profile_by_event_time() -> None:
    d = Directory()
    d.apply_profile(profile("acct-1", 5, "ana@example.com"))
    d.apply_profile(profile("acct-1", 3, "bob@example.com"))  # older, arriving late
    assert d.account("acct-1").owner == "ana@example.com"
    assert d.account("acct-1").name == "Company 5"
    d.apply_profile(profile("acct-1", 9, None))  # the CRM no longer names one
    assert d.account("acct-1").owner is None and d.account("acct-1").name == "Company 9"
    d.apply_profile(profile("acct-1", 12, "eve@example.com", tier="1"))  # refused by the contract
    d.apply_profile(b"not json")
    d.apply_profile(None)
    assert d.account("acct-1").owner is None
    assert d.account("acct-2").owner is None and d.account("acct-2").name is None
