"""Scheduled digests in a running ``radar notify`` (streams.notify_digest.schedule), on a clock
and a sleep of the test's own: sent when due, once per owner and period (a key recorded before
is not sent again), and only by the notifier that holds partition 0."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

from processors.notify.digest import OwnerDigest
from schemas.notify import DeliveryRecord, load_notify_config
from sinks.webhook import DeliveryResult
from streams.notify_digest import schedule
from streams.notify_kafka import Directory
from streams.settings import load_settings

CONFIG = load_notify_config("""
[[destination]]
name = "crm"
kind = "webhook"
url = "http://127.0.0.1:1/digest"
[[digest]]
name = "daily"
destination = "crm"
every = "daily"
at = "08:00"
timezone = "Europe/Paris"
""", {})


class Clock:
    def __init__(self, start: datetime, end: datetime) -> None:
        self.at = start
        self.end = end

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
        if self.at > self.end:
            raise asyncio.CancelledError


def run(holds: dict[str, str] | None, start: datetime, days: int
        ) -> tuple[list[tuple[str, str]], list[DeliveryRecord], list[tuple[datetime, datetime]]]:
    clock = Clock(start, start + timedelta(days=days))
    sent: list[tuple[str, str]] = []
    recorded: list[DeliveryRecord] = []
    periods: list[tuple[datetime, datetime]] = []

    def compose(settings: Any, digest: Any, accounts: Any, begin: datetime,
                end: datetime) -> list[OwnerDigest]:
        periods.append((begin, end))
        return [OwnerDigest("ana@example.com", begin, end, "Europe/Paris",
                            (("champion_left", 1),), (), (), 1)]

    async def deliver(name: str, url: str, body: bytes, headers: dict[str, str],
                      give_up_after: float) -> DeliveryResult:
        sent.append((name, headers["Idempotency-Key"]))
        return DeliveryResult("delivered", 1, 200)

    async def record(r: DeliveryRecord) -> None:
        recorded.append(r)
        if holds is not None:
            holds[r.key] = r.outcome

    async def main() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await schedule(load_settings({}), CONFIG, Directory(), lambda: holds, deliver,
                           record, compose, clock.now, clock.sleep)

    asyncio.run(main())
    return sent, recorded, periods


def test_a_daily_digest_goes_when_due_once_per_period() -> None:
    # 07:00 UTC = 08:00 in Paris (winter): the first is due at once, then a day later
    sent, recorded, periods = run({}, datetime(2026, 12, 3, 6, 59, tzinfo=UTC), days=2)
    assert periods == [
        (datetime(2026, 12, 2, 7, 0, tzinfo=UTC), datetime(2026, 12, 3, 7, 0, tzinfo=UTC)),
        (datetime(2026, 12, 3, 7, 0, tzinfo=UTC), datetime(2026, 12, 4, 7, 0, tzinfo=UTC)),
    ]
    assert sent == [("crm", "digest:daily:ana@example.com:2026-12-02T07:00:00+00:00"),
                    ("crm", "digest:daily:ana@example.com:2026-12-03T07:00:00+00:00")]
    assert [(r.message, r.outcome, r.owner, r.signal_id) for r in recorded] == \
        [("digest", "delivered", "ana@example.com", None)] * 2


def test_a_digest_recorded_before_is_not_sent_again() -> None:
    key = "digest:daily:ana@example.com:2026-12-02T07:00:00+00:00"
    sent, recorded, _ = run({key: "delivered"}, datetime(2026, 12, 3, 6, 59, tzinfo=UTC),
                            days=1)
    assert sent == [] and recorded == []


def test_only_the_notifier_holding_partition_0_sends_digests() -> None:
    sent, recorded, periods = run(None, datetime(2026, 12, 3, 6, 59, tzinfo=UTC), days=2)
    assert sent == [] and recorded == [] and periods == []
