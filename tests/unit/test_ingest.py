"""``processors.ingest``: a batch of raw Kafka messages -> accepted events and dead letters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import build_event, encode

from processors.ingest import AcceptedEvent, RawMessage, count_by, dead_letter_for, ingest
from schemas.dead_letter import PAYLOAD_MAX_BYTES, PAYLOAD_PREFIX_BYTES, DeadLetter
from schemas.decode import ErrorClass, EventTimeBounds, Rejection
from schemas.events import AccountProfile, AdImpression, RoleChange
from schemas.topics import TopicNames

TOPICS = TopicNames("radar")
MAX_BYTES = 4096
# the clock at decode: the example events (2026-01-05) are plausible
BOUNDS = EventTimeBounds(datetime(2000, 1, 1, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC), 86_400)


def message(
    value: bytes | None, topic: str = "radar.ad-impressions", offset: int = 7,
    partition: int = 3, key: bytes | None = b"acct-1",
) -> RawMessage:
    return RawMessage(topic=topic, partition=partition, offset=offset, key=key, value=value)


def run(*messages: RawMessage) -> Any:
    return ingest(messages, max_bytes=MAX_BYTES, topic_for_type=TOPICS.for_type,
                  time_bounds=BOUNDS)


def test_valid_events_on_their_own_topics_are_accepted_with_their_source() -> None:
    ad = message(encode(build_event("ad_impression")), "radar.ad-impressions", offset=1)
    role = message(encode(build_event("role_change")), "radar.role-changes", offset=2)
    profile = message(encode(build_event("account_profile")), "radar.accounts", offset=3)

    batch = run(ad, role, profile)

    assert batch.rejected == []
    assert [type(a.event) for a in batch.accepted] == [AdImpression, RoleChange, AccountProfile]
    assert [a.source for a in batch.accepted] == [ad, role, profile]
    assert all(isinstance(a, AcceptedEvent) for a in batch.accepted)


@pytest.mark.parametrize(
    "event_type",
    ["ad_impression", "outreach_reply", "content_interaction", "role_change", "account_profile"],
)
def test_every_type_is_accepted_on_its_topic(event_type: str) -> None:
    topic = TOPICS.for_type(event_type)
    assert topic is not None

    batch = run(message(encode(build_event(event_type)), topic))

    assert [a.event.type for a in batch.accepted] == [event_type]
    assert batch.rejected == []


def test_an_invalid_message_becomes_a_dead_letter_with_its_coordinates_and_original_bytes() -> None:
    original = b'{"event_id": "e1",  "type": "ad_click"}\n'  # odd spacing kept byte for byte
    bad = message(original, "radar.ad-impressions", partition=3, offset=42, key=b"acct-9")

    batch = run(bad)

    assert batch.accepted == []
    assert len(batch.rejected) == 1
    dl = batch.rejected[0]
    assert dl.dead_letter_id == "radar.ad-impressions:3:42"
    assert dl.source_topic == "radar.ad-impressions"
    assert dl.source_partition == 3
    assert dl.source_offset == 42
    assert dl.key == b"acct-9"
    assert dl.payload == original
    assert dl.error_class == "unknown_type"
    assert dl.reason.startswith("unknown type 'ad_click'; expected one of ad_impression")


def test_invalid_utf8_payload_is_kept_byte_for_byte() -> None:
    original = b'{"event_id": "\xff\xfe"}'

    (dl,) = run(message(original)).rejected

    assert dl.payload == original
    assert dl.error_class == "malformed_json"
    assert dl.reason.startswith("not valid JSON: ")


def test_a_message_without_a_value_becomes_an_empty_payload_dead_letter() -> None:
    (dl,) = run(message(None, key=None)).rejected

    assert dl.payload == b""
    assert dl.key is None
    assert dl.error_class == "empty_message"
    assert dl.reason == "message has no value"


def test_an_oversize_message_is_dead_lettered_whole() -> None:
    original = encode(build_event("ad_impression")) + b" " * MAX_BYTES

    (dl,) = run(message(original)).rejected

    assert dl.error_class == "oversize"
    assert dl.payload == original
    assert f"the limit is {MAX_BYTES} bytes" in dl.reason


@pytest.mark.parametrize("size", [PAYLOAD_MAX_BYTES, PAYLOAD_MAX_BYTES + 1, 1_010_000])
def test_a_dead_letter_too_large_for_its_topic_carries_the_head_and_says_the_size(
        size: int) -> None:
    """A payload the dead-letter topic could not take whole (it would stop the batch) is cut to
    its head; up to the bound it travels whole."""
    original = b"x" * size

    (dl,) = run(message(original)).rejected

    assert dl.error_class == "oversize"
    if size <= PAYLOAD_MAX_BYTES:
        assert dl.payload == original
        assert "carries its first" not in dl.reason
    else:
        assert dl.payload == original[:PAYLOAD_PREFIX_BYTES]
        assert f"the dead letter carries its first 4,096 of {size:,} bytes" in dl.reason


def test_an_event_on_another_types_topic_is_refused_as_wrong_topic() -> None:
    raw = encode(build_event("role_change"))

    batch = run(message(raw, "radar.ad-impressions", partition=0, offset=5))

    assert batch.accepted == []
    (dl,) = batch.rejected
    assert dl.error_class == "wrong_topic"
    assert dl.error_class == ErrorClass.WRONG_TOPIC
    assert dl.reason == (
        "a role_change event belongs on radar.role-changes, not radar.ad-impressions"
    )
    assert dl.dead_letter_id == "radar.ad-impressions:0:5"
    assert dl.payload == raw


def test_topic_check_uses_the_configured_prefix() -> None:
    acme = TopicNames("acme")
    raw = encode(build_event("ad_impression"))

    on_acme = ingest([message(raw, "acme.ad-impressions")], max_bytes=MAX_BYTES,
                     topic_for_type=acme.for_type, time_bounds=BOUNDS)
    on_radar = ingest([message(raw, "radar.ad-impressions")], max_bytes=MAX_BYTES,
                      topic_for_type=acme.for_type, time_bounds=BOUNDS)

    assert len(on_acme.accepted) == 1
    assert [d.error_class for d in on_radar.rejected] == ["wrong_topic"]


def test_a_redelivered_message_yields_an_identical_dead_letter() -> None:
    bad = message(b"not json", "radar.accounts", partition=1, offset=99)

    first = run(bad).rejected
    again = run(message(b"not json", "radar.accounts", partition=1, offset=99)).rejected

    assert first == again
    assert first[0].dead_letter_id == "radar.accounts:1:99"


def test_bad_messages_do_not_stop_the_batch_and_order_is_kept() -> None:
    good1 = message(encode(build_event("ad_impression", event_id="a")), offset=1)
    bad = message(b"[]", offset=2)
    good2 = message(encode(build_event("ad_impression", event_id="b")), offset=3)

    batch = run(good1, bad, good2)

    assert [a.event.event_id for a in batch.accepted] == ["a", "b"]
    assert [d.source_offset for d in batch.rejected] == [2]
    assert batch.rejected[0].error_class == "not_an_object"


def test_dead_letter_for_stores_the_error_class_as_its_plain_string_value() -> None:
    dl = dead_letter_for(message(b"x"), Rejection(ErrorClass.NAIVE_TIMESTAMP, "why"))

    assert dl.error_class == "naive_timestamp"
    assert type(dl.error_class) is str
    assert dl.reason == "why"


def _dl(error_class: str, n: int) -> DeadLetter:
    return DeadLetter(f"t:0:{n}", "t", 0, n, None, b"", error_class, "r")


def test_count_by_counts_dead_letters_per_error_class() -> None:
    items = [_dl("malformed_json", 1), _dl("wrong_topic", 2), _dl("malformed_json", 3)]

    assert count_by(items) == {"malformed_json": 2, "wrong_topic": 1}


def test_count_by_of_nothing_is_empty() -> None:
    assert count_by([]) == {}
