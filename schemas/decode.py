"""Raw Kafka message bytes -> a valid input event, or the precise reason it is refused.

The error classes are a closed set (they label a Prometheus counter and a ClickHouse column);
the reason is a human-readable sentence naming the field, the rule and the offending value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from schemas.events import EVENT_TYPES, INPUT_EVENT, SCHEMA_VERSION, InputEvent


class ErrorClass(StrEnum):
    OVERSIZE = "oversize"
    EMPTY = "empty_message"
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    NAIVE_TIMESTAMP = "naive_timestamp"
    IMPLAUSIBLE_TIME = "implausible_time"
    SCHEMA_VIOLATION = "schema_violation"
    WRONG_TOPIC = "wrong_topic"
    UNROUTABLE = "unroutable"
    REFUSED_BY_BROKER = "refused_by_broker"  # radar publish: the broker refused the line itself


@dataclass(frozen=True, slots=True)
class Rejection:
    error_class: ErrorClass
    reason: str


# Ordered: the first class that applies names the message's problem.
_PRECEDENCE = (
    ErrorClass.MALFORMED_JSON,
    ErrorClass.NOT_AN_OBJECT,
    ErrorClass.UNKNOWN_TYPE,
    ErrorClass.UNKNOWN_SCHEMA_VERSION,
    ErrorClass.NAIVE_TIMESTAMP,
    ErrorClass.SCHEMA_VIOLATION,
)
_MAX_VALUE_IN_REASON = 60


def _shorten(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_IN_REASON else text[: _MAX_VALUE_IN_REASON - 3] + "..."


def _classify(error: Any) -> tuple[ErrorClass, str]:
    kind = error["type"]
    # loc is (tag, field, ...) for the union's members; the tag adds nothing to a reason
    field = ".".join(str(p) for p in error["loc"][1:]) or "message"
    value = error.get("input")
    if kind == "json_invalid":
        return ErrorClass.MALFORMED_JSON, f"not valid JSON: {error['msg'].removeprefix('Invalid JSON: ')}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return ErrorClass.NOT_AN_OBJECT, f"a message must be a JSON object, got {_shorten(value)}"
    if kind == "union_tag_invalid":
        tag = value.get("type") if isinstance(value, dict) else value
        return (
            ErrorClass.UNKNOWN_TYPE,
            f"unknown type {_shorten(tag)}; expected one of {', '.join(EVENT_TYPES)}",
        )
    if kind == "union_tag_not_found":
        return ErrorClass.SCHEMA_VIOLATION, "type: field required"
    if field == "schema_version" and kind == "literal_error":
        return (
            ErrorClass.UNKNOWN_SCHEMA_VERSION,
            f"schema_version {_shorten(value)} is not supported; expected {SCHEMA_VERSION}",
        )
    if kind == "timezone_aware":
        return (
            ErrorClass.NAIVE_TIMESTAMP,
            f"{field}: timestamp {_shorten(value)} has no UTC offset (RFC 3339 requires one)",
        )
    if kind == "missing":
        return ErrorClass.SCHEMA_VIOLATION, f"{field}: field required"
    return ErrorClass.SCHEMA_VIOLATION, f"{field}: {error['msg']} (got {_shorten(value)})"


def decode_event(raw: bytes | None, max_bytes: int) -> InputEvent | Rejection:
    """Decode one message value. Never raises for bad input: it returns a :class:`Rejection`."""
    if raw is None or len(raw) == 0:
        return Rejection(ErrorClass.EMPTY, "message has no value")
    if len(raw) > max_bytes:
        return Rejection(
            ErrorClass.OVERSIZE, f"message is {len(raw)} bytes; the limit is {max_bytes} bytes"
        )
    try:
        return INPUT_EVENT.validate_json(raw)
    except ValidationError as exc:
        found = [_classify(e) for e in exc.errors(include_url=False)]
        first = min(found, key=lambda f: _PRECEDENCE.index(f[0]))
        others = [reason for cls, reason in found if cls is first[0] and reason != first[1]]
        reason = "; ".join([first[1], *others[:4]])
        return Rejection(first[0], reason)


@dataclass(frozen=True, slots=True)
class EventTimeBounds:
    """The event times a valid message may carry, judged at decode: from ``earliest`` to
    ``max_future_seconds`` after ``now``, the wall clock when its batch was read (handed in:
    decoding reads no clock). A time outside them is bad input, not history: a single event
    dated in year 9999 would otherwise move its partition's event time there for good."""

    earliest: datetime
    now: datetime
    max_future_seconds: int
    # the latest plausible time (None: beyond what a datetime holds), and both bounds as
    # timestamps with a second's margin inside them: most events are judged on those alone
    latest: datetime | None = field(init=False)
    _inside: tuple[float, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            latest: datetime | None = self.now + timedelta(seconds=self.max_future_seconds)
        except OverflowError:
            latest = None
        object.__setattr__(self, "latest", latest)
        object.__setattr__(self, "_inside", (
            self.earliest.timestamp() + 1.0,
            math.inf if latest is None else latest.timestamp() - 1.0))


def check_event_time(occurred_at: datetime, bounds: EventTimeBounds) -> Rejection | None:
    """A rejection when ``occurred_at`` lies outside ``bounds`` (both limits are plausible)."""
    low, high = bounds._inside
    if low < occurred_at.timestamp() < high:
        return None  # well inside: the exact comparisons below are for times near a bound
    if occurred_at < bounds.earliest:
        return Rejection(
            ErrorClass.IMPLAUSIBLE_TIME,
            f"occurred_at {occurred_at.isoformat()} is before the earliest plausible event "
            f"time {bounds.earliest.isoformat()} (RADAR_EARLIEST_EVENT_TIME)",
        )
    latest = bounds.latest
    if latest is not None and occurred_at > latest:
        return Rejection(
            ErrorClass.IMPLAUSIBLE_TIME,
            f"occurred_at {occurred_at.isoformat()} is more than {bounds.max_future_seconds} s "
            f"ahead of the clock at decode ({bounds.now.isoformat()}): the latest plausible "
            f"event time is {latest.isoformat()} (RADAR_MAX_FUTURE_SECONDS)",
        )
    return None
