"""``radar publish``: ``streams.publish.route_line`` sends each JSONL line to its topic."""

from __future__ import annotations

import json

import pytest

from schemas.dead_letter import from_message
from schemas.topics import TopicNames
from streams.publish import route_line

TOPICS = TopicNames("radar")
SOURCE = "events.jsonl"
RUN_ID = "run-42"


def line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


@pytest.mark.parametrize(
    ("event_type", "topic"),
    [
        pytest.param("ad_impression", "radar.ad-impressions", id="ad_impression"),
        pytest.param("outreach_reply", "radar.outreach-replies", id="outreach_reply"),
        pytest.param("content_interaction", "radar.content-interactions",
                     id="content_interaction"),
        pytest.param("role_change", "radar.role-changes", id="role_change"),
        pytest.param("account_profile", "radar.accounts", id="account_profile"),
    ],
)
def test_each_type_goes_to_its_topic_keyed_by_account(event_type: str, topic: str) -> None:
    raw = line({"type": event_type, "account_id": "acct-ü1", "event_id": "e1"})

    routed = route_line(raw, 1, SOURCE, RUN_ID, TOPICS)

    assert routed.topic == topic
    assert routed.key == "acct-ü1".encode()
    assert routed.value == raw.rstrip(b"\n")
    assert routed.headers == []
    assert routed.dead_letter is False


def test_the_topic_prefix_is_applied() -> None:
    routed = route_line(line({"type": "role_change", "account_id": "a"}), 1, SOURCE, RUN_ID,
                        TopicNames("acme"))

    assert routed.topic == "acme.role-changes"


def test_a_crlf_line_ending_is_stripped_from_the_value() -> None:
    routed = route_line(b'{"type": "ad_impression", "account_id": "a"}\r\n', 1, SOURCE, RUN_ID,
                        TOPICS)

    assert routed.value == b'{"type": "ad_impression", "account_id": "a"}'


def test_routing_does_not_validate_the_event() -> None:
    # the worker is the one judge of an event: a routable but invalid one is published as is
    routed = route_line(line({"type": "ad_impression", "account_id": "a", "junk": 1}), 1,
                        SOURCE, RUN_ID, TOPICS)

    assert routed.topic == "radar.ad-impressions"
    assert routed.dead_letter is False


@pytest.mark.parametrize(
    ("account_id", "key"),
    [
        pytest.param(None, None, id="missing"),
        pytest.param("", None, id="empty"),
        pytest.param(7, None, id="not-a-string"),
    ],
)
def test_a_line_without_a_usable_account_id_has_no_key(account_id: object, key: None) -> None:
    obj: dict[str, object] = {"type": "ad_impression"}
    if account_id is not None:
        obj["account_id"] = account_id

    routed = route_line(line(obj), 1, SOURCE, RUN_ID, TOPICS)

    assert routed.topic == "radar.ad-impressions"
    assert routed.key is key


@pytest.mark.parametrize(
    ("raw", "error_class", "reason_fragment", "key"),
    [
        pytest.param(
            b'{"type": "ad_click", "account_id": "acct-1"}\n', "unknown_type",
            "unknown type 'ad_click'; no topic for it", b"acct-1", id="unknown-type",
        ),
        pytest.param(
            b'{"type": 5, "account_id": "acct-1"}\n', "unknown_type", "unknown type 5",
            b"acct-1", id="non-string-type",
        ),
        pytest.param(
            b'{"account_id": "acct-1"}\n', "unroutable",
            "type: field required, so the line has no topic", b"acct-1", id="missing-type",
        ),
        pytest.param(b"{not json\n", "malformed_json", "not valid JSON: ", None,
                     id="malformed-json"),
        pytest.param(b"\xff\xfe{}\n", "malformed_json", "not valid JSON: ", None,
                     id="invalid-utf8"),
        pytest.param(b"[1, 2]\n", "not_an_object", "a line must be a JSON object, got list",
                     None, id="array"),
        pytest.param(b"42\n", "not_an_object", "a line must be a JSON object, got int", None,
                     id="number"),
    ],
)
def test_an_unroutable_line_goes_to_the_dead_letter_topic_with_headers(
    raw: bytes, error_class: str, reason_fragment: str, key: bytes | None
) -> None:
    routed = route_line(raw, 17, SOURCE, RUN_ID, TOPICS)

    assert routed.topic == "radar.dead-letters"
    assert routed.dead_letter is True
    assert routed.value == raw[:-1]  # the original bytes without the trailing newline
    assert routed.key == key
    headers = dict(routed.headers)
    assert headers["radar.source_topic"] == b"publish:events.jsonl"
    assert headers["radar.source_partition"] == b"-1"
    assert headers["radar.source_offset"] == b"17"
    assert headers["radar.error_class"] == error_class.encode()
    assert reason_fragment.encode() in headers["radar.reason"]
    assert headers["radar.dead_letter_id"] == b"publish:run-42:17"


def test_a_dead_lettered_line_is_read_back_by_the_dead_letter_consumer() -> None:
    raw = b'{"type": "ad_click"}'

    routed = route_line(raw, 3, SOURCE, RUN_ID, TOPICS)
    dl = from_message(routed.headers, routed.key, routed.value, fallback_id="unused")

    assert dl.dead_letter_id == "publish:run-42:3"
    assert dl.source_topic == "publish:events.jsonl"
    assert (dl.source_partition, dl.source_offset) == (-1, 3)
    assert dl.payload == raw
    assert dl.error_class == "unknown_type"


def test_route_line_never_raises() -> None:
    for raw in (b"", b"\n", b"null", b'"x"', b"\x00", b"{" * 10_000):
        assert route_line(raw, 1, SOURCE, RUN_ID, TOPICS).dead_letter is True
