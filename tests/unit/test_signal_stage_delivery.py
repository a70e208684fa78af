"""The signal stage gives the same signals however the events were delivered (SPEC section 9).

- An account's events are applied by its own partition (Kafka's default partitioner of the
  account_id) whatever partition they came on: no keys, another client's partitioner.
- Lateness is judged on arrival, per source: an event behind its own source's latest event of
  the account by more than the allowed lateness fires nothing, whatever is still held.
- A message read again (after a restart) is counted as redelivered, not as late.
- Every partition is advanced to the watermark, with held events or without, so where the last
  batch ended does not decide which deadlines fired.
No Kafka here: the stage is fed as the agent feeds it (tests/integration run the real stack).
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import build_event

from processors.ingest import AcceptedEvent, RawMessage
from processors.partitioning import partition_of
from processors.rules import DEFAULT_RULES
from processors.watermark import Source
from schemas.decode import Rejection, decode_event
from schemas.events import InputEvent
from streams.metrics import Metrics
from streams.settings import load_settings
from streams.signal_stage import SignalStage
from tools.simulation import SimConfig, Simulation

SETTINGS = load_settings({"RADAR_TOPIC_PARTITIONS": "4"})
DETECTED_AT = datetime(2031, 1, 1, tzinfo=UTC)
TOPIC = SETTINGS.topics.for_type


class Table:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, account_id: str) -> Any:
        return self.data.get(account_id)

    def items(self) -> Any:
        return list(self.data.items())

    def put(self, account_id: str, partition: int, value: Any) -> None:
        self.data[account_id] = value


class Feed:
    """A stage and the sources it reads: ``holding`` are those that may still deliver."""

    def __init__(self) -> None:
        self.holding: set[Source] = set()
        self.assigned: set[Source] = {(t, p) for t in SETTINGS.topics.inputs
                                      for p in range(SETTINGS.topic_partitions)}
        self.metrics = Metrics()
        self.stage = SignalStage(SETTINGS, DEFAULT_RULES, Table(),
                                 self.metrics, None,  # type: ignore[arg-type]
                                 sources=self.sources, clock=lambda: DETECTED_AT)
        self.signals: list[dict[str, Any]] = []
        self.released: list[Any] = []
        self.offsets: dict[Source, int] = {}

    def sources(self) -> tuple[Collection[Source], Collection[Source]]:
        return self.assigned, self.holding

    def message(self, event: InputEvent, partition: int, offset: int | None = None
                ) -> tuple[AcceptedEvent, Any]:
        source = (TOPIC(event.type) or "", partition)
        if offset is None:
            offset = self.offsets[source] = self.offsets.get(source, -1) + 1
        raw = RawMessage(source[0], partition, offset, None, b"", None)
        return AcceptedEvent(event, raw), (source, offset)

    def deliver(self, messages: Sequence[tuple[AcceptedEvent, Any]]) -> None:
        self.stage.admit(messages)
        result, _ = self.stage.step()
        self.signals += [json.loads(s.model_dump_json()) for s in result.signals]
        self.released += result.released

    def ids(self) -> set[str]:
        return {s["signal_id"] for s in self.signals}

    def count(self, name: str) -> float:
        """A counter's total, over all its labels."""
        return sum(sample.value for metric in self.metrics.registry.collect()
                   for sample in metric.samples if sample.name == f"{name}_total")


def event(kind: str, at: datetime, event_id: str, account: str = "acct-1",
          **fields: Any) -> InputEvent:
    raw = build_event(kind, event_id=event_id, account_id=account,
                      occurred_at=at.isoformat().replace("+00:00", "Z"), **fields)
    decoded = decode_event(json.dumps(raw).encode(), 1 << 20)
    assert not isinstance(decoded, Rejection), decoded
    return decoded


def world(seed: int) -> list[InputEvent]:
    lines = [line for day in Simulation(SimConfig(accounts=12, days=120, seed=seed)).days()
             for line in day.lines]
    decoded = [decode_event(line.encode(), 1 << 20) for line in lines]
    return [e for e in decoded if not isinstance(e, Rejection)]


def replay(events: list[InputEvent], partition_of_event: Any, batch: int = 700) -> Feed:
    feed = Feed()
    for i in range(0, len(events), batch):
        feed.deliver([feed.message(e, partition_of_event(e)) for e in events[i:i + batch]])
    feed.holding.clear()
    feed.deliver([])
    return feed


# -- one owner per account ------------------------------------------------------------------


def test_events_on_other_partitions_are_applied_by_the_accounts_own_partition() -> None:
    events = world(seed=3)
    keyed = replay(events, lambda e: partition_of(e.account_id, SETTINGS.topic_partitions))
    rng = random.Random(5)
    no_keys = replay(events, lambda e: rng.randrange(SETTINGS.topic_partitions))
    crc32 = replay(events, lambda e: zlib.crc32(e.account_id.encode()) %
                   SETTINGS.topic_partitions)
    # a topic with twice the partitions (keyed, by Kafka's partitioner over 8)
    wider = replay(events, lambda e: partition_of(e.account_id, 2 * SETTINGS.topic_partitions))

    assert len(keyed.signals) > 50
    assert keyed.count("radar_rerouted_events") == 0
    for other in (no_keys, crc32, wider):
        assert other.ids() == keyed.ids()
        assert other.stage.table.data == keyed.stage.table.data
        assert other.count("radar_rerouted_events") > len(events) / 4
        assert len(other.released) == len(events)
    # each account's state lives with its own partition
    assert {a: v["p"] for a, v in no_keys.stage.table.data.items()} == {
        a: partition_of(a, SETTINGS.topic_partitions) for a in keyed.stage.table.data}


def test_an_account_spread_over_partitions_waits_for_the_slowest_of_them() -> None:
    """A champion's departure on partition 3 is held until partition 1's profiles, which may
    still bring an older event of the same account (the profile naming them), have passed it."""
    feed = Feed()
    feed.holding = {("radar.outreach-replies", 2), ("radar.accounts", 1)}
    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    profile = event("account_profile", t0, "p1", champion_ids=["champ"])
    left = event("role_change", t0 + timedelta(hours=5), "left", stakeholder_id="champ",
                 change="left")
    feed.deliver([feed.message(event("outreach_reply", t0 + timedelta(hours=6), "r2"), 2),
                  feed.message(left, 3)])
    assert feed.signals == [] and feed.stage.held() == 2  # the profiles have sent nothing
    feed.deliver([feed.message(profile, 1)])
    assert feed.signals == []  # the profile alone is passed: a reply may still come
    feed.holding.clear()
    feed.deliver([])
    # applied in event-time order: the profile names the champion before they leave
    assert [s["type"] for s in feed.signals].count("champion_left") == 1
    assert feed.count("radar_rerouted_events") == 3 - sum(
        partition_of("acct-1", 4) == p for p in (1, 2, 3))


# -- lateness on arrival, per source --------------------------------------------------------


def late_pricing_visit(pricing_partition: int) -> Feed:
    """Content of acct-1 59 days after a pricing visit is received (held: the replies hold
    event time back), then the pricing visit itself, on ``pricing_partition``."""
    feed = Feed()
    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    feed.holding = {("radar.outreach-replies", 0)}
    feed.deliver([feed.message(event("outreach_reply", t0 - timedelta(days=80), "r0"), 0)])
    later = event("content_interaction", t0 + timedelta(days=59), "c-later")
    visit = event("content_interaction", t0, "visit", action="pricing_page_visit")
    feed.deliver([feed.message(later, 0), feed.message(visit, pricing_partition)])
    feed.holding.clear()
    feed.deliver([])
    return feed


def test_an_event_far_behind_its_own_source_fires_nothing_whatever_is_still_held() -> None:
    feed = late_pricing_visit(pricing_partition=0)
    assert "pricing_page_visit" not in [s["type"] for s in feed.signals]
    assert feed.count("radar_late_events") == 1
    assert feed.count("radar_redelivered_events") == 0
    assert len(feed.released) == 3  # acknowledged all the same: nothing is lost


def test_the_same_event_from_a_source_of_its_own_is_applied_in_event_time_order() -> None:
    """Another partition is another log: how logs interleave is delivery, not data."""
    feed = late_pricing_visit(pricing_partition=1)
    assert [s["type"] for s in feed.signals].count("pricing_page_visit") == 1
    assert feed.count("radar_late_events") == 0


def test_lateness_on_arrival_is_judged_at_the_boundary() -> None:
    lateness = timedelta(days=DEFAULT_RULES.engagement.allowed_lateness_days)
    for behind, late in ((lateness, 0), (lateness + timedelta(seconds=1), 1)):
        feed = Feed()
        t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
        feed.holding = {("radar.outreach-replies", 0)}
        feed.deliver([feed.message(event("outreach_reply", t0 - timedelta(days=80), "r0"), 0)])
        feed.deliver([feed.message(event("content_interaction", t0 + behind, "later"), 0),
                      feed.message(event("content_interaction", t0, "visit",
                                         action="pricing_page_visit"), 0)])
        feed.holding.clear()
        feed.deliver([])
        assert feed.count("radar_late_events") == late, behind
        assert [s["type"] for s in feed.signals].count("pricing_page_visit") == 1 - late


# -- redeliveries ---------------------------------------------------------------------------


def test_a_message_read_again_is_counted_as_redelivered_not_late() -> None:
    feed = Feed()
    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    first = event("outreach_reply", t0, "r1")
    feed.deliver([feed.message(first, 0)])
    for day in range(1, 30):  # the account moves on: r1 is older than the allowed lateness
        feed.deliver([feed.message(event("outreach_reply", t0 + timedelta(days=day),
                                         f"r1-{day}"), 0)])
    feed.stage.received.clear()  # a restart: what was received is forgotten, the state is not
    feed.deliver([feed.message(first, 0, offset=0)])  # read again from an old offset
    feed.deliver([feed.message(event("outreach_reply", t0 + timedelta(days=29), "r1-29"), 0,
                               offset=29)])  # still in the duplicates' memory
    assert feed.count("radar_redelivered_events") == 2
    assert feed.count("radar_late_events") == 0
    # nor does the account's state count it late (it would differ from a run without restart)
    assert feed.stage.cache["acct-1"].late_ignored == 0
    # an old event never seen before, on a new offset, is late
    feed.deliver([feed.message(event("outreach_reply", t0 + timedelta(hours=1), "new"), 0)])
    assert feed.count("radar_late_events") == 1
    assert feed.count("radar_redelivered_events") == 2


# -- the day judgements do not depend on where batches end -----------------------------------


def test_every_partition_is_advanced_to_the_watermark_with_or_without_held_events() -> None:
    """acct-1 goes silent; other accounts' events carry event time 75 days on. Whether the
    last batch holds acct-1's events or not, its silence fires."""
    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    others = [a for a in (f"acct-{n}" for n in range(2, 40))
              if partition_of(a, 4) != partition_of("acct-1", 4)][:3]
    quiet = [event("outreach_reply", t0, "q1")]
    busy = [event("outreach_reply", t0 + timedelta(days=d), f"{a}-{d}", account=a)
            for d in range(0, 76) for a in others]

    def run(batches: list[list[InputEvent]]) -> set[tuple[str, str]]:
        feed = Feed()
        feed.holding = set()
        for batch in batches:
            feed.deliver([feed.message(e, partition_of(e.account_id, 4)) for e in batch])
        return {(s["type"], s["signal_id"]) for s in feed.signals
                if s["account_id"] == "acct-1"}

    together = run([quiet + busy])
    apart = run([quiet, busy])
    assert "engagement_silence" in {kind for kind, _ in together}
    assert apart == together
