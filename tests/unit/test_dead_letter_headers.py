"""A dead letter travels on ``radar.dead-letters`` as original bytes plus ``radar.*`` headers."""

from __future__ import annotations

import pytest

from schemas.dead_letter import (
    H_ERROR_CLASS,
    H_ID,
    H_OFFSET,
    H_PARTITION,
    H_REASON,
    H_TOPIC,
    DeadLetter,
    from_message,
)

ORIGINAL = DeadLetter(
    dead_letter_id="radar.role-changes:4:1234",
    source_topic="radar.role-changes",
    source_partition=4,
    source_offset=1234,
    key=b"acct-7",
    payload=b'{"type": "role_change", "occurred_at": "2026-01-05T09:00:00"}',
    error_class="naive_timestamp",
    reason="occurred_at: timestamp '2026-01-05T09:00:00' has no UTC offset — ünïcödé",
)


def test_headers_name_every_field_as_utf8_bytes() -> None:
    assert ORIGINAL.headers() == [
        (H_ID, b"radar.role-changes:4:1234"),
        (H_TOPIC, b"radar.role-changes"),
        (H_PARTITION, b"4"),
        (H_OFFSET, b"1234"),
        (H_ERROR_CLASS, b"naive_timestamp"),
        (H_REASON, ORIGINAL.reason.encode("utf-8")),
    ]
    assert [name for name, _ in ORIGINAL.headers()] == [
        "radar.dead_letter_id", "radar.source_topic", "radar.source_partition",
        "radar.source_offset", "radar.error_class", "radar.reason",
    ]


@pytest.mark.parametrize(
    "original",
    [
        pytest.param(ORIGINAL, id="worker-dead-letter"),
        pytest.param(
            DeadLetter(
                dead_letter_id="publish:run-1:17",
                source_topic="publish:events.jsonl",
                source_partition=-1,
                source_offset=17,
                key=None,
                payload=b"\xff\xfe not json",
                error_class="malformed_json",
                reason="not valid JSON: boom",
            ),
            id="publish-dead-letter-with-negative-partition-and-no-key",
        ),
    ],
)
def test_headers_round_trip_every_field(original: DeadLetter) -> None:
    rebuilt = from_message(
        original.headers(), original.key, original.payload, fallback_id="radar.dead-letters:0:1"
    )

    assert rebuilt == original


def test_a_message_without_radar_headers_gets_the_fallback_id_and_unknown_class() -> None:
    rebuilt = from_message(
        [("traceparent", b"00-abc")], b"k", b"raw bytes", fallback_id="radar.dead-letters:2:50"
    )

    assert rebuilt.dead_letter_id == "radar.dead-letters:2:50"
    assert rebuilt.error_class == "unknown"
    assert rebuilt.source_topic == ""
    assert rebuilt.source_partition == -1
    assert rebuilt.source_offset == -1
    assert rebuilt.key == b"k"
    assert rebuilt.payload == b"raw bytes"
    assert rebuilt.reason == "arrived on the dead-letter topic without radar headers"


def test_a_message_without_a_value_has_an_empty_payload() -> None:
    assert from_message([], None, None, fallback_id="x").payload == b""


def test_unparseable_numeric_headers_fall_back_to_minus_one() -> None:
    headers = [(H_ID, b"id-1"), (H_PARTITION, b"three"), (H_OFFSET, b"")]

    rebuilt = from_message(headers, None, b"v", fallback_id="fallback")

    assert rebuilt.dead_letter_id == "id-1"
    assert (rebuilt.source_partition, rebuilt.source_offset) == (-1, -1)


def test_an_empty_id_header_uses_the_fallback_id() -> None:
    rebuilt = from_message([(H_ID, b"")], None, b"v", fallback_id="radar.dead-letters:0:9")

    assert rebuilt.dead_letter_id == "radar.dead-letters:0:9"


def test_invalid_utf8_in_a_header_is_replaced_not_raised() -> None:
    rebuilt = from_message([(H_REASON, b"bad \xff byte")], None, b"v", fallback_id="f")

    assert rebuilt.reason == "bad \ufffd byte"
