"""Pure: where one line of a JSONL file goes, for ``radar publish`` (streams/publish.py).

A line goes to its topic by ``type``, keyed by ``account_id``; nothing else is validated (the
worker is the one judge of an event). A line that cannot be sent becomes a dead letter on the
dead-letter topic (source ``publish:<file>``, offset = line number, error class and reason in
its headers):

- not JSON, invalid UTF-8 included, or nested deeper than ``MAX_NESTING`` levels:
  ``malformed_json``. Lines are parsed with the worker's own JSON parser (pydantic-core), so
  publish refuses exactly the lines the worker would;
- not a JSON object: ``not_an_object``; a ``type`` with no topic: ``unknown_type``;
- no ``type``, or no ``account_id`` for a compacted topic (``radar.accounts`` is compacted by
  key and the broker refuses a message without one): ``unroutable``;
- larger than the broker accepts on its topic (:class:`TopicRules`): ``oversize``. Its dead
  letter carries the first ``PAYLOAD_PREFIX_BYTES`` of the line (the whole line would be
  refused too), and its reason says so and gives the line's size;
- refused by the broker all the same (:func:`broker_refusal`): ``oversize`` when too large,
  else ``refused_by_broker``, with the broker's error as the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pydantic_core import from_json

from schemas.dead_letter import PAYLOAD_PREFIX_BYTES, DeadLetter
from schemas.decode import ErrorClass
from schemas.topics import TopicNames

# Kafka's default message.max.bytes (and so max.message.bytes of a topic that does not set it)
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
# a record batch's header (61 bytes) and one record's own framing (at most 36), rounded up
RECORD_OVERHEAD_BYTES = 128
HEADER_OVERHEAD_BYTES = 10  # the two length varints of one header
# kept free under a topic's limit: a line the worker refuses goes to the dead-letter topic whole,
# with the headers that say why (about 300 bytes), so that message must fit too
DEAD_LETTER_HEADROOM_BYTES = 1024
# The worker sends its dead letters with faust's producer_max_request_size (its default, 1 MB):
# it cuts a payload above PAYLOAD_MAX_BYTES to its head, and publish keeps every line within
# what a whole dead letter of it may be, so the worker's dead letter of a line is the line.
WORKER_DEAD_LETTER_MAX_BYTES = 1_000_000
# pydantic-core's JSON parser (the worker's decoder) refuses deeper nesting: publish uses it too
MAX_NESTING = 200
_MAX_TEXT_IN_REASON = 200


def record_bytes(key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]] = ()) -> int:
    """An upper bound of the size of one message sent in a record batch of its own."""
    return (RECORD_OVERHEAD_BYTES + len(key or b"") + len(value)
            + sum(HEADER_OVERHEAD_BYTES + len(name.encode()) + len(v) for name, v in headers))


@dataclass(frozen=True, slots=True)
class TopicRules:
    """What the broker enforces on the topics publish writes to."""

    topics: TopicNames
    max_message_bytes: Mapping[str, int]  # per topic; Kafka's default for a topic not listed
    compacted: frozenset[str]
    # the most a line (its key included) may hold to go to each input topic: one message there
    # and, should the worker refuse it, one dead letter with its headers
    line_limits: Mapping[str, int] = field(init=False, repr=False, compare=False)
    largest_line_bytes: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        limits = {t: min(self.limit(t), self.dead_letter_bytes) - RECORD_OVERHEAD_BYTES
                  - DEAD_LETTER_HEADROOM_BYTES for t in self.topics.inputs}
        object.__setattr__(self, "line_limits", limits)
        object.__setattr__(self, "largest_line_bytes", max(limits.values()))

    @classmethod
    def kafka_defaults(cls, topics: TopicNames) -> TopicRules:
        compacted = frozenset(t for t in topics.all() if topics.is_compacted(t))
        return cls(topics, {}, compacted)

    def limit(self, topic: str) -> int:
        return self.max_message_bytes.get(topic, KAFKA_DEFAULT_MAX_MESSAGE_BYTES)

    @property
    def dead_letter_bytes(self) -> int:
        """The largest dead letter both publish and the worker can put on the topic."""
        return min(self.limit(self.topics.dead_letters), WORKER_DEAD_LETTER_MAX_BYTES)

    @property
    def written(self) -> list[str]:
        return [*self.topics.inputs, self.topics.dead_letters]


def rules_from_configs(configs: Mapping[str, Mapping[str, Any]], topics: TopicNames) -> TopicRules:
    """The rules from the broker's answer to DescribeConfigs: {topic: {name: {"value": ...}}}."""
    limits: dict[str, int] = {}
    compacted: set[str] = set()
    for topic in [*topics.inputs, topics.dead_letters]:
        described = configs.get(topic, {})
        value = described.get("max.message.bytes", {}).get("value")
        if isinstance(value, str) and value.isdigit():
            limits[topic] = int(value)
        policy = described.get("cleanup.policy", {}).get("value")
        known = isinstance(policy, str)
        if (known and "compact" in policy.split(",")) or (not known and topics.is_compacted(topic)):
            compacted.add(topic)
    return TopicRules(topics, limits, frozenset(compacted))


@dataclass(frozen=True, slots=True)
class Routed:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    error_class: str | None = None  # set on a dead letter: why the line is one

    @property
    def dead_letter(self) -> bool:
        return self.error_class is not None


def _shorten(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_TEXT_IN_REASON else text[: _MAX_TEXT_IN_REASON - 3] + "..."


def printable(text: str) -> str:
    """Header text must encode: a file name may carry undecodable bytes (surrogate escapes)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _utf8_head(data: bytes, n: int) -> bytes:
    """The first ``n`` bytes at most, not cutting a UTF-8 character in two."""
    if n >= len(data):
        return data
    cut = max(n, 0)
    while cut > max(n - 3, 0) and data[cut] & 0xC0 == 0x80:
        cut -= 1
    return data[:cut]


def dead_letter(
    value: bytes, size: int, key: bytes | None, error_class: ErrorClass, reason: str, *,
    lineno: int, source: str, run_id: str, rules: TopicRules, whole: bool = True,
) -> Routed:
    """The dead letter of one line (``value``, ``size`` bytes long): the line itself, or its first
    bytes when the whole line would not fit the dead-letter topic (or ``whole`` is false); the
    reason then says how much of it the letter carries."""
    topic = rules.topics.dead_letters
    limit = rules.limit(topic)

    def letter(payload: bytes, key: bytes | None, reason: str) -> Routed:
        dl = DeadLetter(
            dead_letter_id=f"publish:{run_id}:{lineno}", source_topic=printable(f"publish:{source}"),
            source_partition=-1, source_offset=lineno, key=key, payload=payload,
            error_class=str(error_class), reason=printable(reason),
        )
        return Routed(topic, key, payload, dl.headers(), str(error_class))

    routed = letter(value, key, reason)
    if whole and size == len(value) and record_bytes(key, value, routed.headers) <= limit:
        return routed
    widest = f"{reason}; the dead letter carries its first {PAYLOAD_PREFIX_BYTES:,} of {size:,} bytes"
    room = limit - record_bytes(key, b"", letter(b"", key, widest).headers)
    if room < 0:  # a key too large to carry as well
        key = None
        room = limit - record_bytes(None, b"", letter(b"", None, widest).headers)
    payload = _utf8_head(value, min(PAYLOAD_PREFIX_BYTES, room))
    return letter(payload, key,
                  f"{reason}; the dead letter carries its first {len(payload):,} of {size:,} bytes")


_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number",
               bool: "a boolean", type(None): "null"}


def _json_problem(value: bytes, error: ValueError) -> str:
    text = str(error)
    if text.startswith("recursion limit exceeded"):
        return f"nested deeper than {MAX_NESTING} levels, the most the worker accepts ({text})"
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not valid JSON: not UTF-8 (byte 0x{value[bad.start]:02x} at offset {bad.start})"
    return f"not valid JSON: {text[:_MAX_TEXT_IN_REASON]}"


def _oversize(size: int, most: int, where: str, topic_limit: int, rules: TopicRules) -> str:
    return (f"line is {size:,} bytes; at most {most:,} fit a message on {where} (max.message.bytes "
            f"{topic_limit:,}, a dead letter at most {rules.dead_letter_bytes:,}, less room for the "
            "key and a dead letter's headers)")


class _Refusal(NamedTuple):
    error_class: ErrorClass
    reason: str
    key: bytes | None = None


def _route(value: bytes, size: int, rules: TopicRules) -> Routed | _Refusal:
    topics = rules.topics
    if size > rules.largest_line_bytes:  # too large for any topic: not worth parsing
        biggest = max(map(rules.limit, rules.topics.inputs))
        return _Refusal(ErrorClass.OVERSIZE, _oversize(size, rules.largest_line_bytes,
                                                       "any input topic", biggest, rules))
    try:
        obj: Any = from_json(value, cache_strings=False)
    except ValueError as exc:
        return _Refusal(ErrorClass.MALFORMED_JSON, _json_problem(value, exc))
    if not isinstance(obj, dict):
        return _Refusal(ErrorClass.NOT_AN_OBJECT,
                        f"a line must be a JSON object, got {_JSON_KINDS.get(type(obj), 'a value')}")
    account = obj.get("account_id")
    key = account.encode() if isinstance(account, str) and account else None
    kind = obj.get("type")
    topic = topics.for_type(kind) if isinstance(kind, str) else None
    if topic is None:
        if kind is None:
            return _Refusal(ErrorClass.UNROUTABLE, "type: field required, so the line has no topic", key)
        return _Refusal(ErrorClass.UNKNOWN_TYPE, f"unknown type {_shorten(kind)}; no topic for it", key)
    if key is None and topic in rules.compacted:
        return _Refusal(ErrorClass.UNROUTABLE,
                        f"account_id: a non-empty string is required; {topic} is compacted by key "
                        "and the broker refuses a message without one")
    most = rules.line_limits[topic]
    if size + len(key or b"") > most:
        return _Refusal(ErrorClass.OVERSIZE, _oversize(size, most, topic, rules.limit(topic), rules), key)
    return Routed(topic, key, value)


def route_line(line: bytes, lineno: int, source: str, run_id: str, topics: TopicNames,
               rules: TopicRules | None = None, *, size: int | None = None) -> Routed:
    """Pure: where one line goes (its own topic, or the dead-letter topic). Never raises.

    ``rules`` (what the broker accepts on ``topics``) default to Kafka's defaults. ``size`` is
    the line's full length when ``line`` holds only its first bytes: the reader keeps no more
    of a line than any topic accepts.
    """
    rules = rules or TopicRules.kafka_defaults(topics)
    value = line.rstrip(b"\r\n")
    full = len(value) if size is None else size
    try:
        routed = _route(value, full, rules)
    except Exception as exc:  # the last guard: no line may stop the run
        routed = _Refusal(ErrorClass.UNROUTABLE,
                          f"publish could not route it: {type(exc).__name__}: {_shorten(str(exc))}")
    if isinstance(routed, Routed):
        return routed
    return dead_letter(value, full, routed.key, routed.error_class, routed.reason, lineno=lineno,
                       source=source, run_id=run_id, rules=rules)


def broker_refusal(routed: Routed, lineno: int, error: str, *, too_large: bool, source: str,
                   run_id: str, rules: TopicRules) -> Routed:
    """The dead letter of a line the broker refused even on its own (``error`` is its answer)."""
    error_class = ErrorClass.OVERSIZE if too_large else ErrorClass.REFUSED_BY_BROKER
    return dead_letter(routed.value, len(routed.value), routed.key, error_class,
                       f"the broker refused it on {routed.topic}: {error[:_MAX_TEXT_IN_REASON]}",
                       lineno=lineno, source=source, run_id=run_id, rules=rules, whole=not too_large)

