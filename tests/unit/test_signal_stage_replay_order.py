"""An in-order replay gives the same signal ids whatever the fetch and batch boundaries (issue 11
point 7, SPEC section 9).

Each source (an input topic's partition) is a log read in its own order; how a consumer's
fetches interleave the sources, and where its batches end, is delivery. The engine's sequence
depended on it in two ways: an event written after later ones of its source (late data) came
when the watermark had passed its time or not, and an event at exactly the watermark's time
was released while a source could still bring another event of that very time. Each scenario
is fed as several interleavings a consumer could produce; every one must fire the same signals.

No Kafka or ClickHouse: ``admit`` and ``step`` are the stage's pure part.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import build_event

from processors.ingest import AcceptedEvent, RawMessage
from processors.rules import DEFAULT_RULES
from processors.sequencer_ports import MemoryStateTable
from processors.watermark import Source
from schemas.decode import Rejection, decode_event
from streams.metrics import Metrics
from streams.settings import load_settings
from streams.signal_stage import SignalStage

SETTINGS = load_settings({})
REPLIES = SETTINGS.topics.for_type("outreach_reply") or ""
CONTENT = SETTINGS.topics.for_type("content_interaction") or ""
ACCOUNT = "acct-replay"
Fetch = list[tuple[str, int]]  # (topic, how many of its next messages)


def reply(event_id: str, at: str, stakeholder: str) -> dict[str, Any]:
    return build_event("outreach_reply", event_id=event_id, occurred_at=at, account_id=ACCOUNT,
                       stakeholder_id=stakeholder, reply_kind="positive_reply")


def view(event_id: str, at: str, stakeholder: str) -> dict[str, Any]:
    return build_event("content_interaction", event_id=event_id, occurred_at=at,
                       account_id=ACCOUNT, stakeholder_id=stakeholder, action="view")



def replay(logs: dict[str, list[dict[str, Any]]], fetches: list[Fetch]) -> dict[str, str]:
    """Feed the logs (the account's partition of each topic, each log in its order) as
    ``fetches`` read them, a step after each; a source may still deliver until its log is read.
    Returns the signals fired: id -> type and triggering event."""
    partition = 0  # the sources are the account's own partition of each topic
    read = dict.fromkeys(logs, 0)

    def sources() -> tuple[list[Source], list[Source]]:
        return [(topic, partition) for topic in logs], \
            [(topic, partition) for topic, log in logs.items() if read[topic] < len(log)]

    no_io: Any = None  # step() writes nothing
    stage = SignalStage(SETTINGS, DEFAULT_RULES, MemoryStateTable(), Metrics(), no_io,
                        sources=sources, clock=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    fired: dict[str, str] = {}
    for fetch in fetches:
        batch: list[tuple[AcceptedEvent, Any]] = []
        for topic, n in fetch:
            for offset in range(read[topic], read[topic] + n):
                event = decode_event(json.dumps(logs[topic][offset]).encode(), 1 << 20)
                assert not isinstance(event, Rejection), event
                raw = RawMessage(topic, partition, offset, ACCOUNT.encode(), b"")
                batch.append((AcceptedEvent(event, raw), offset))
            read[topic] += n
        stage.admit(batch)
        result, _ = stage.step()
        fired.update({s.signal_id: f"{s.type} {s.evidence['event_ids']}"
                      for s in result.signals})
    assert read == {topic: len(log) for topic, log in logs.items()}, "a test reads every log"
    assert stage.held() == 0
    return fired


# bob's reply of day 5 is written after amy's of day 10 (late data); his view of day 8 comes on
# time through the content topic. Whether the watermark had passed day 5 when the late reply
# came depended on how far the content topic had been read.
LATE = {
    REPLIES: [reply("r-amy", "2026-03-10T09:00:00Z", "amy"),
              reply("r-bob", "2026-03-05T09:00:00Z", "bob")],
    CONTENT: [view("c-bob", "2026-03-08T09:00:00Z", "bob")],
}
LATE_FETCHES = {
    "everything in one fetch": [[(REPLIES, 2), (CONTENT, 1)]],
    "the late reply in a fetch of its own": [[(REPLIES, 1), (CONTENT, 1)], [(REPLIES, 1)]],
    "one message per fetch, content first": [[(CONTENT, 1)], [(REPLIES, 1)], [(REPLIES, 1)]],
}

# two replies of bob's at the same second in one source; the one written second has the lower
# id: a fetch that ended between them applied the first one first, one fetch the other
SAME_SOURCE_TIE = {
    REPLIES: [reply("r-2", "2026-03-05T09:00:00Z", "bob"),
              reply("r-1", "2026-03-05T09:00:00Z", "bob")],
    CONTENT: [view("c-amy", "2026-03-05T10:00:00Z", "amy")],
}
SAME_SOURCE_TIE_FETCHES = {
    "everything in one fetch": [[(REPLIES, 2), (CONTENT, 1)]],
    "a fetch ends between the two": [[(REPLIES, 1), (CONTENT, 1)], [(REPLIES, 1)]],
    "one message per fetch": [[(CONTENT, 1)], [(REPLIES, 1)], [(REPLIES, 1)]],
}

# bob's view and reply at the same second, through two topics; the content topic, still at
# that second, may bring the view after the reply was released at the watermark
CROSS_SOURCE_TIE = {
    REPLIES: [reply("r-bob", "2026-03-05T09:00:00Z", "bob")],
    CONTENT: [view("c-amy", "2026-03-05T09:00:00Z", "amy"),
              view("c-bob", "2026-03-05T09:00:00Z", "bob")],
}
CROSS_SOURCE_TIE_FETCHES = {
    "everything in one fetch": [[(REPLIES, 1), (CONTENT, 2)]],
    "the reply before the second view": [[(CONTENT, 1), (REPLIES, 1)], [(CONTENT, 1)]],
    "one message per fetch": [[(REPLIES, 1)], [(CONTENT, 1)], [(CONTENT, 1)]],
}


@pytest.mark.parametrize(("logs", "interleavings", "expected"), [
    # bob's first engagement in the stream's order is his view: the reply of day 5 comes, as
    # late data, after the day-10 reply in its log, and engages no one new any more
    (LATE, LATE_FETCHES, {"new_stakeholder_engaged ['r-amy']",
                          "new_stakeholder_engaged ['c-bob']"}),
    # the same second in one source: the source's order
    (SAME_SOURCE_TIE, SAME_SOURCE_TIE_FETCHES, {"new_stakeholder_engaged ['r-2']",
                                                "new_stakeholder_engaged ['c-amy']"}),
    # the same second in two sources: the sources' order (content before replies)
    (CROSS_SOURCE_TIE, CROSS_SOURCE_TIE_FETCHES, {"new_stakeholder_engaged ['c-amy']",
                                                  "new_stakeholder_engaged ['c-bob']"}),
], ids=["late-in-its-source", "same-second-one-source", "same-second-two-sources"])
def test_an_in_order_replay_fires_the_same_signals_whatever_the_fetches(
        logs: dict[str, list[dict[str, Any]]], interleavings: dict[str, list[Fetch]],
        expected: set[str]) -> None:
    results = {name: replay(logs, fetches) for name, fetches in interleavings.items()}
    for name, fired in results.items():
        assert set(fired.values()) == expected, name
    ids = {name: frozenset(fired) for name, fired in results.items()}
    assert len(set(ids.values())) == 1, ids
