"""``radar publish``: ``streams.routing.route_line`` sends each JSONL line to its topic, and a line
it cannot send to the dead-letter topic, with its line number and why; it never raises."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from kafka.record.default_records import DefaultRecordBatchBuilder
from pydantic_core import from_json

from schemas.dead_letter import PAYLOAD_PREFIX_BYTES, from_message
from schemas.decode import ErrorClass, Rejection, decode_event
from schemas.topics import TopicNames
from streams.publish import PublishSummary, read_lines
from streams.routing import (
    DEAD_LETTER_HEADROOM_BYTES,
    KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
    MAX_NESTING,
    RECORD_OVERHEAD_BYTES,
    WORKER_DEAD_LETTER_MAX_BYTES,
    Routed,
    TopicRules,
    broker_refusal,
    record_bytes,
    route_line,
    rules_from_configs,
)

TOPICS = TopicNames("radar")
DEFAULTS = TopicRules.kafka_defaults(TOPICS)
SOURCE = "events.jsonl"
RUN_ID = "run-42"
# the most a line may hold: its dead letter from the worker must fit the worker's 1,000,000 bytes
LARGEST_LINE = WORKER_DEAD_LETTER_MAX_BYTES - RECORD_OVERHEAD_BYTES - DEAD_LETTER_HEADROOM_BYTES


def line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def route(raw: bytes, lineno: int = 17, rules: TopicRules = DEFAULTS, size: int | None = None) -> Routed:
    return route_line(raw, lineno, SOURCE, RUN_ID, TOPICS, rules, size=size)


def headers_of(routed: Routed) -> dict[str, str]:
    return {name: value.decode() for name, value in routed.headers}


def nested(depth: int) -> bytes:
    """An event whose ``x`` field nests ``depth`` arrays (the line's object adds one level)."""
    return (b'{"type": "ad_impression", "account_id": "a", "x": ' + b"[" * depth + b"1"
            + b"]" * depth + b"}")


def assert_fits_the_dead_letter_topic(routed: Routed, rules: TopicRules = DEFAULTS) -> None:
    assert routed.topic == "radar.dead-letters"
    assert record_bytes(routed.key, routed.value, routed.headers) <= rules.limit(routed.topic)


# --- lines that go to their topic -------------------------------------------------------------


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

    routed = route(raw, 1)

    assert routed.topic == topic
    assert routed.key == "acct-ü1".encode()
    assert routed.value == raw.rstrip(b"\n")
    assert routed.headers == []
    assert routed.dead_letter is False
    assert routed.error_class is None


def test_the_topic_prefix_is_applied() -> None:
    acme = TopicNames("acme")
    routed = route_line(line({"type": "role_change", "account_id": "a"}), 1, SOURCE, RUN_ID, acme)

    assert routed.topic == "acme.role-changes"


def test_a_crlf_line_ending_is_stripped_from_the_value() -> None:
    routed = route(b'{"type": "ad_impression", "account_id": "a"}\r\n')

    assert routed.value == b'{"type": "ad_impression", "account_id": "a"}'


def test_routing_does_not_validate_the_event() -> None:
    # the worker is the one judge of an event: a routable but invalid one is published as is
    routed = route(line({"type": "ad_impression", "account_id": "a", "junk": 1}))

    assert routed.topic == "radar.ad-impressions"
    assert routed.dead_letter is False


@pytest.mark.parametrize(
    "account_id",
    [pytest.param(None, id="missing"), pytest.param("", id="empty"), pytest.param(7, id="not-a-string")],
)
def test_a_line_without_a_usable_account_id_has_no_key(account_id: object) -> None:
    obj: dict[str, object] = {"type": "ad_impression"}
    if account_id is not None:
        obj["account_id"] = account_id

    routed = route(line(obj))

    assert routed.topic == "radar.ad-impressions"
    assert routed.key is None
    assert routed.dead_letter is False


def test_the_largest_line_that_fits_goes_to_its_topic_and_one_byte_more_does_not() -> None:
    key = b"acct-1"
    head = b'{"type": "ad_impression", "account_id": "acct-1", "pad": "'
    fits = head + b"x" * (LARGEST_LINE - len(key) - len(head) - 2) + b'"}'
    assert len(fits) + len(key) == LARGEST_LINE

    routed = route(fits)
    over = route(fits[:-2] + b'x"}')

    assert (routed.topic, routed.key, routed.value) == ("radar.ad-impressions", key, fits)
    # it fits a message on its topic, and its dead letter fits what the worker can send should
    # the worker refuse it (the worker's headers are about 300 bytes)
    assert record_bytes(key, fits) + DEAD_LETTER_HEADROOM_BYTES <= WORKER_DEAD_LETTER_MAX_BYTES
    assert WORKER_DEAD_LETTER_MAX_BYTES < KAFKA_DEFAULT_MAX_MESSAGE_BYTES
    assert over.error_class == "oversize"


# --- lines that cannot be routed --------------------------------------------------------------


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
        pytest.param(b'{"type": "ad_impression", "account_id": "a"\n', "malformed_json",
                     "not valid JSON: EOF while parsing", None, id="truncated-json"),
        pytest.param(b"\xff\xfe{}\n", "malformed_json",
                     "not valid JSON: not UTF-8 (byte 0xff at offset 0)", None, id="invalid-utf8"),
        pytest.param(b'{"type": "ad_impression", "account_id": "acct-\xe9"}\n', "malformed_json",
                     "not valid JSON: not UTF-8 (byte 0xe9 at offset 46)", None,
                     id="invalid-utf8-in-a-string"),
        pytest.param(b'{"type": "ad_impression", "account_id": "\\ud800"}\n', "malformed_json",
                     "not valid JSON: ", None, id="lone-surrogate-escape"),
        pytest.param(b"[1, 2]\n", "not_an_object", "a line must be a JSON object, got an array",
                     None, id="array"),
        pytest.param(b"42\n", "not_an_object", "a line must be a JSON object, got a number", None,
                     id="number"),
        pytest.param(b"null\n", "not_an_object", "a line must be a JSON object, got null", None,
                     id="null"),
        pytest.param(b'{"type": "account_profile", "event_id": "p1", "name": "Proxima"}\n',
                     "unroutable", "account_id: a non-empty string is required; radar.accounts is "
                     "compacted by key and the broker refuses a message without one", None,
                     id="account-profile-without-account-id"),
        pytest.param(b'{"type": "account_profile", "account_id": ""}\n', "unroutable",
                     "radar.accounts is compacted by key", None,
                     id="account-profile-with-empty-account-id"),
        pytest.param(b'{"type": "account_profile", "account_id": 42}\n', "unroutable",
                     "radar.accounts is compacted by key", None,
                     id="account-profile-with-numeric-account-id"),
    ],
)
def test_an_unroutable_line_goes_to_the_dead_letter_topic_with_headers(
    raw: bytes, error_class: str, reason_fragment: str, key: bytes | None
) -> None:
    routed = route(raw, 17)

    assert routed.topic == "radar.dead-letters"
    assert routed.dead_letter is True
    assert routed.error_class == error_class
    assert routed.value == raw[:-1]  # the original bytes without the trailing newline
    assert routed.key == key
    headers = dict(routed.headers)
    assert headers["radar.source_topic"] == b"publish:events.jsonl"
    assert headers["radar.source_partition"] == b"-1"
    assert headers["radar.source_offset"] == b"17"
    assert headers["radar.error_class"] == error_class.encode()
    assert reason_fragment.encode() in headers["radar.reason"]
    assert headers["radar.dead_letter_id"] == b"publish:run-42:17"
    assert b"carries its first" not in headers["radar.reason"]  # the whole line is carried


def test_a_dead_lettered_line_is_read_back_by_the_dead_letter_consumer() -> None:
    raw = b'{"type": "ad_click"}'

    routed = route(raw, 3)
    dl = from_message(routed.headers, routed.key, routed.value, fallback_id="unused")

    assert dl.dead_letter_id == "publish:run-42:3"
    assert dl.source_topic == "publish:events.jsonl"
    assert (dl.source_partition, dl.source_offset) == (-1, 3)
    assert dl.payload == raw
    assert dl.error_class == "unknown_type"


def test_a_keyless_account_profile_goes_to_its_topic_when_the_broker_says_it_is_not_compacted() -> None:
    rules = rules_from_configs({"radar.accounts": {"cleanup.policy": {"value": "delete"}}}, TOPICS)

    routed = route(b'{"type": "account_profile", "name": "Proxima"}', rules=rules)

    assert (routed.topic, routed.key, routed.dead_letter) == ("radar.accounts", None, False)


# --- nesting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 1000, 100_000])
def test_a_line_nested_deeper_than_the_bound_is_a_dead_letter_not_a_traceback(depth: int) -> None:
    for raw in (b'{"a":' * depth + b"1" + b"}" * depth, b"[" * depth + b"1" + b"]" * depth):
        routed = route(raw)

        assert routed.error_class == "malformed_json"
        reason = headers_of(routed)["radar.reason"]
        assert reason.startswith(f"nested deeper than {MAX_NESTING} levels")
        assert routed.value == raw  # carried whole: 100,000 levels are 600,001 bytes
        assert_fits_the_dead_letter_topic(routed)


def test_the_nesting_bound_is_the_workers_own() -> None:
    # publish parses with the worker's JSON parser: it routes the deepest line the parser reads,
    # and what it refuses as too deep the worker would refuse as well (decode_event never raises)
    deepest, too_deep = nested(MAX_NESTING - 1), nested(MAX_NESTING)

    assert route(deepest).topic == "radar.ad-impressions"
    assert route(too_deep).error_class == "malformed_json"
    from_json(deepest)
    with pytest.raises(ValueError, match="recursion limit exceeded"):
        from_json(too_deep)
    rejected = decode_event(too_deep, 10**9)
    assert isinstance(rejected, Rejection)
    assert rejected.error_class is ErrorClass.MALFORMED_JSON
    assert "recursion limit exceeded" in rejected.reason
    judged = decode_event(deepest, 10**9)  # read, then judged on the schema: not a depth problem
    assert isinstance(judged, Rejection)
    assert "recursion" not in judged.reason


def test_the_worker_refuses_a_100000_deep_message_without_raising() -> None:
    for raw in (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, b"[" * 100_000 + b"]" * 100_000):
        rejected = decode_event(raw, 10**9)

        assert isinstance(rejected, Rejection)
        assert rejected.error_class is ErrorClass.MALFORMED_JSON
        assert "recursion limit exceeded" in rejected.reason


# --- size -------------------------------------------------------------------------------------


def test_a_2_mb_line_is_an_oversize_dead_letter_carrying_a_prefix() -> None:
    raw = line({"type": "ad_impression", "account_id": "acct-1", "note": "é" * 1_000_000})
    size = len(raw) - 1

    routed = route(raw)

    assert routed.error_class == "oversize"
    assert routed.key is None  # not parsed: no line this large fits any topic
    assert len(routed.value) <= PAYLOAD_PREFIX_BYTES
    assert len(routed.value) >= PAYLOAD_PREFIX_BYTES - 3  # cut at a character boundary
    assert raw.startswith(routed.value)
    routed.value.decode("utf-8")  # not a character cut in two
    reason = headers_of(routed)["radar.reason"]
    assert reason.startswith(f"line is {size:,} bytes; at most {LARGEST_LINE:,} fit a message on "
                             "any input topic (max.message.bytes 1,048,588")
    assert reason.endswith(f"the dead letter carries its first {len(routed.value):,} of {size:,} bytes")
    assert_fits_the_dead_letter_topic(routed)


def test_a_line_the_reader_cut_short_is_oversize_by_its_full_size() -> None:
    head = b'{"type": "ad_impression", "account_id": "acct-1", "note": "' + b"x" * 100
    routed = route(head, size=5_000_000)

    assert routed.error_class == "oversize"
    assert routed.value == head
    assert headers_of(routed)["radar.reason"].startswith("line is 5,000,000 bytes")
    assert headers_of(routed)["radar.reason"].endswith(
        f"the dead letter carries its first {len(head):,} of 5,000,000 bytes")


def test_a_line_too_large_for_its_own_topic_names_that_topic_and_keeps_its_key() -> None:
    rules = rules_from_configs(
        {"radar.accounts": {"max.message.bytes": {"value": "20000"}}}, TOPICS)
    profile = line({"type": "account_profile", "account_id": "acct-1", "name": "x" * 30_000})

    refused = route(profile, rules=rules)
    impression = route(line({"type": "ad_impression", "account_id": "acct-1", "x": "y" * 30_000}),
                       rules=rules)

    assert refused.error_class == "oversize"
    assert refused.key == b"acct-1"
    assert refused.value == profile[:-1]  # the dead-letter topic takes the whole line
    assert headers_of(refused)["radar.reason"].startswith(
        f"line is {len(profile) - 1:,} bytes; at most {20_000 - 1152:,} fit a message on "
        "radar.accounts (max.message.bytes 20,000")
    assert impression.topic == "radar.ad-impressions"  # other topics keep their own limit


def test_a_bad_line_of_the_largest_size_is_carried_whole_by_its_dead_letter() -> None:
    raw = b"not json " * (LARGEST_LINE // 9) + b"x" * (LARGEST_LINE % 9)
    assert len(raw) == LARGEST_LINE

    # the longest file name a file system allows, and a large line number: the longest headers
    routed = route_line(raw, 123_456_789, "n" * 255, RUN_ID, TOPICS, DEFAULTS)

    assert routed.error_class == "malformed_json"
    assert routed.value == raw
    assert_fits_the_dead_letter_topic(routed)


def test_a_line_is_never_larger_than_the_dead_letter_topic_takes_in_the_worker_either() -> None:
    # the worker dead-letters a refused message whole: a smaller dead-letter topic bounds lines
    rules = rules_from_configs(
        {"radar.dead-letters": {"max.message.bytes": {"value": "50000"}}}, TOPICS)

    routed = route(line({"type": "ad_impression", "account_id": "a", "x": "y" * 49_000}), rules=rules)

    assert routed.error_class == "oversize"


@pytest.mark.parametrize(
    ("key", "value", "headers"),
    [
        pytest.param(None, b"", [], id="empty"),
        pytest.param(b"acct-1", b"x" * 300, [], id="event"),
        pytest.param(b"k" * 200, b"x" * 1_000_000, [], id="large"),
        pytest.param(None, b"x" * 100_000, [("radar.reason", b"r" * 300), ("radar.id", b"i")],
                     id="with-headers"),
    ],
)
def test_the_size_estimate_is_never_below_kafka_pythons_own(
    key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
) -> None:
    assert record_bytes(key, value, headers) >= DefaultRecordBatchBuilder.estimate_size_in_bytes(
        key, value, headers)


# --- the broker's answer ----------------------------------------------------------------------


def test_rules_come_from_the_brokers_topic_configs_with_kafkas_defaults_for_the_rest() -> None:
    described: dict[str, Any] = {
        "radar.ad-impressions": {"max.message.bytes": {"value": "2000000"},
                                 "cleanup.policy": {"value": "delete"}},
        "radar.role-changes": {"cleanup.policy": {"value": "compact,delete"}},
        "radar.accounts": {"max.message.bytes": {"value": "not a number"}},
    }

    rules = rules_from_configs(described, TOPICS)

    assert rules.limit("radar.ad-impressions") == 2_000_000
    assert rules.limit("radar.accounts") == KAFKA_DEFAULT_MAX_MESSAGE_BYTES
    assert rules.limit("radar.dead-letters") == KAFKA_DEFAULT_MAX_MESSAGE_BYTES
    # accounts said nothing of its policy: known to be compacted; role-changes said so itself
    assert rules.compacted == {"radar.role-changes", "radar.accounts"}
    # a line must also fit the dead-letter topic, which takes the default
    assert rules.line_limits["radar.ad-impressions"] == LARGEST_LINE


def test_a_line_the_broker_refused_on_its_own_becomes_a_dead_letter_with_the_brokers_answer() -> None:
    routed = route(line({"type": "account_profile", "account_id": "acct-1", "name": "P"}), 9)

    refused = broker_refusal(routed, 9, "InvalidRecordError: [Error 87] bad record",
                             too_large=False, source=SOURCE, run_id=RUN_ID, rules=DEFAULTS)
    too_large = broker_refusal(routed, 9, "MessageSizeTooLargeError: [Error 10]", too_large=True,
                               source=SOURCE, run_id=RUN_ID, rules=DEFAULTS)

    assert refused.error_class == "refused_by_broker"
    assert (refused.key, refused.value) == (b"acct-1", routed.value)
    assert headers_of(refused)["radar.reason"] == (
        "the broker refused it on radar.accounts: InvalidRecordError: [Error 87] bad record")
    assert headers_of(refused)["radar.source_offset"] == "9"
    # a line the broker found too large is never sent whole again
    assert too_large.error_class == "oversize"
    assert headers_of(too_large)["radar.reason"].endswith(
        f"the dead letter carries its first {len(routed.value)} of {len(routed.value)} bytes")


# --- never raises -----------------------------------------------------------------------------


class _BrokenTopics(TopicNames):
    def for_type(self, event_type: str) -> str | None:
        raise RuntimeError("boom")


def test_an_unexpected_error_while_routing_is_a_dead_letter_too() -> None:
    broken = _BrokenTopics("radar")

    routed = route_line(line({"type": "ad_impression", "account_id": "a"}), 5, SOURCE, RUN_ID,
                        broken)

    assert routed.error_class == "unroutable"
    assert headers_of(routed)["radar.reason"] == "publish could not route it: RuntimeError: 'boom'"


def test_route_line_never_raises() -> None:
    odd = [b"", b"\n", b"null", b'"x"', b"\x00", b"{" * 10_000, b"[" * 100_000, b"\xed\xa0\x80",
           b'{"a": NaN}', b'{"a": 1e999}', b'{"a": ' + b"9" * 100_000 + b"}",
           b'{"type": "' + b"t" * 2_000_000 + b'"}', b'{"type": "ad_impression", "account_id": "'
           + b"k" * 1_000_000 + b'"}']
    for raw in odd:
        routed = route(raw)

        assert routed.dead_letter is True
        assert_fits_the_dead_letter_topic(routed)


def test_a_file_name_that_is_not_utf8_still_makes_a_dead_letter() -> None:
    name = b"events-\xff.jsonl".decode("utf-8", "surrogateescape")

    routed = route_line(b"not json", 1, name, RUN_ID, TOPICS)

    assert headers_of(routed)["radar.source_topic"] == "publish:events-?.jsonl"


# --- reading and the summary ------------------------------------------------------------------


def test_the_reader_keeps_only_the_head_of_a_line_longer_than_its_cap() -> None:
    data = b'{"a": 1}\n' + b"x" * 1000 + b"\r\n" + b"tail without newline"

    lines = list(read_lines(io.BytesIO(data), cap=100))

    assert [(ln.data, ln.size, ln.consumed) for ln in lines] == [
        (b'{"a": 1}\n', None, 9),
        (b"x" * 100, 1000, 1002),
        (b"tail without newline", None, 20),
    ]


def test_the_summary_counts_dead_letters_by_class_and_lines_that_failed() -> None:
    summary = PublishSummary(blank=2, resent_alone=3, seconds=1.25)
    for lineno in (1, 2, 3, 4, 5, 6, 7, 8):
        summary.count(lineno, Routed("radar.ad-impressions", b"a", b"{}"), 1)
    for lineno, error_class in ((9, "oversize"), (4, "malformed_json"), (12, "malformed_json")):
        summary.count(lineno, Routed("radar.dead-letters", None, b"x", [], error_class), 1)
    summary.count(12, Routed("radar.dead-letters", None, b"x", [], "malformed_json"), -1)
    summary.failed.append((12, "refused, and its dead letter too: KafkaTimeoutError: gone"))

    text = summary.render()

    assert text.splitlines() == [
        "published 10 messages in 1.2s",
        "  radar.ad-impressions                     8",
        "  radar.dead-letters                       2",
        "  2 line(s) could not be routed or sent and went to the dead-letter topic, by error class:",
        "    malformed_json                 1  (line 4)",
        "    oversize                       1  (line 9)",
        "  3 line(s) refused in a batch with a bad line were published on their own",
        "  2 blank line(s) skipped",
        "  FAILED: 1 line(s) could be neither published nor dead-lettered: line 12: refused, and its "
        "dead letter too: KafkaTimeoutError: gone",
    ]
