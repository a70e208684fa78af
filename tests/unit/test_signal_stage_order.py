"""The signal stage sends behind the engine, in an order that keeps restarts safe.

A batch's states are saved (the changelog) only after its signals are on Kafka, and after the
previous batch's states, even when a later batch's sends finish first. Kafka is stood in for
here; the real one runs in tests/integration.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from conftest import build_event

from processors.ingest import AcceptedEvent, RawMessage
from processors.rules import DEFAULT_RULES
from schemas.decode import Rejection, decode_event
from streams.metrics import Metrics
from streams.settings import load_settings
from streams.signal_stage import SignalStage

SETTINGS = load_settings({})


def accepted(fields: dict[str, Any], offset: int) -> AcceptedEvent:
    event = decode_event(json.dumps(fields).encode(), 1 << 20)
    assert not isinstance(event, Rejection), event
    return AcceptedEvent(event, RawMessage(SETTINGS.topics.for_type(fields["type"]) or "", 0,
                                           offset, None, b"", None))


def departure(account: str, day: int, offset: int) -> list[tuple[AcceptedEvent, Any]]:
    """A profile naming a champion, then the champion leaving: champion_left, on ``day``."""
    at = f"2026-02-{day:02d}T09:00:00Z"
    profile = build_event("account_profile", event_id=f"{account}-p", account_id=account,
                          occurred_at=at, champion_ids=["champ"])
    left = build_event("role_change", event_id=f"{account}-l", account_id=account,
                       occurred_at=at.replace("09:00", "10:00"), stakeholder_id="champ",
                       change="left")
    return [(accepted(profile, offset), offset), (accepted(left, offset + 1), offset + 1)]


class Table:
    def __init__(self, log: list[tuple[str, Any]]) -> None:
        self.log = log
        self.data: dict[str, Any] = {}

    def get(self, account_id: str) -> Any:
        return self.data.get(account_id)

    def items(self) -> Any:
        return list(self.data.items())

    def put(self, account_id: str, partition: int, value: Any) -> None:
        self.log.append(("put", account_id))
        self.data[account_id] = value


class Kafka:
    """Signals of the accounts in ``slow`` are acknowledged only once ``release`` is set."""

    def __init__(self, log: list[tuple[str, Any]], slow: set[str]) -> None:
        self.log = log
        self.slow = slow
        self.release = asyncio.Event()
        self.versions: dict[str, int] = {}  # account -> version of its account-state record

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        account = (key or b"").decode()
        if topic == SETTINGS.topics.signals:
            if account in self.slow:
                await self.release.wait()
            self.log.append(("signal", account))
        elif topic == SETTINGS.topics.account_state:
            self.versions[account] = json.loads(value)["version"]


def test_a_later_batch_whose_signals_are_sent_first_still_saves_its_states_second() -> None:
    log: list[tuple[str, Any]] = []
    kafka = Kafka(log, slow={"acct-a"})

    async def run() -> list[list[Any]]:
        stage = SignalStage(SETTINGS, DEFAULT_RULES, Table(log), Metrics(), kafka.send,
                            sources=lambda: ((), ()),
                            clock=lambda: datetime(2030, 1, 1, tzinfo=UTC))
        first = await stage.handle(departure("acct-a", 2, 0))
        # the same day: every partition is judged at each new day, acct-a's too
        second = await stage.handle(departure("acct-b", 2, 2))
        await asyncio.sleep(0.05)
        # the first batch's signals are held up; the second's are out, but its states wait
        assert ("signal", "acct-b") in log
        assert not first.done() and not second.done()
        assert [e for e in log if e[0] == "put"] == []
        kafka.release.set()
        return [await first, await second]

    released = asyncio.run(run())
    puts = [account for kind, account in log if kind == "put"]
    assert puts[0] == "acct-a" and "acct-b" in puts  # batch order
    for i, (kind, account) in enumerate(log):  # a state saved only after its signals
        if kind == "put":
            assert ("signal", account) in log[:i], log
    assert released == [[0, 1], [2, 3]]
    # account-state records rank by the order their batches were applied, not sent
    assert kafka.versions["acct-a"] < kafka.versions["acct-b"]


def test_states_of_a_partition_taken_away_meanwhile_are_not_saved() -> None:
    """A rebalance while a batch's writes are in flight: the partition's new owner saves its
    accounts from now on; a late save here could overwrite its newer state."""
    log: list[tuple[str, Any]] = []
    kafka = Kafka(log, slow={"acct-a"})

    async def run() -> list[Any]:
        stage = SignalStage(SETTINGS, DEFAULT_RULES, Table(log), Metrics(), kafka.send,
                            sources=lambda: ((), ()),
                            clock=lambda: datetime(2030, 1, 1, tzinfo=UTC))
        applying = await stage.handle(departure("acct-a", 2, 0))
        await stage.forget({0})
        kafka.release.set()
        return await applying

    assert asyncio.run(run()) == [0, 1]  # acknowledged: the tracker drops revoked messages
    assert ("signal", "acct-a") in log
    assert [e for e in log if e[0] == "put"] == []
