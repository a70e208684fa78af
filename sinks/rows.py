"""Pure conversion of events, dead letters, signals, account states and alert deliveries into
ClickHouse rows (column order fixed here)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from processors.engagement import figures
from processors.ingest import AcceptedEvent
from processors.rules import Rules
from processors.state import DAY, EPOCH_ORDINAL, AccountState
from processors.tiers import tier_of
from schemas.dead_letter import DeadLetter
from schemas.events import (
    AccountProfile,
    AdImpression,
    ContentInteraction,
    OutreachReply,
    RoleChange,
)
from schemas.notify import DeliveryRecord
from schemas.signals import Signal


@dataclass(frozen=True, slots=True)
class AccountView:
    state: AccountState
    figures: dict[str, Any]
    tier_reasons: list[str]
    rule_version: str

    @classmethod
    def of(cls, state: AccountState, rules: Rules) -> AccountView:
        """The account's row for ``account_state``, from a copy of the state as it is now
        (judged at its latest event, or the last day judged if later)."""
        now = state.high_water
        if state.evaluated_day is not None:
            now = max(now, state.evaluated_day * DAY)
        _, reasons = tier_of(state, now, rules)
        # the row reads only scalar fields of the state: a shallow copy keeps them as they are
        return cls(replace(state), figures(state, now, rules), reasons, rules.version)

EVENT_COLUMNS: tuple[str, ...] = (
    "event_id", "type", "schema_version", "occurred_at", "account_id", "stakeholder_id",
    # ad_impression
    "campaign_id", "creative_id", "clicked", "cost_micros",
    # ad_impression / outreach_reply
    "channel",
    # outreach_reply
    "sequence_id", "reply_kind",
    # content_interaction
    "content_id", "action", "topic", "public",
    # role_change
    "change", "title", "function", "seniority", "buying_role",
    # account_profile
    "name", "sector", "tier", "renewal_date", "arr", "champion_ids", "owner",
    # where it came from
    "source_topic", "source_partition", "source_offset", "ingested_at",
)

DEAD_LETTER_COLUMNS: tuple[str, ...] = (
    "dead_letter_id", "source_topic", "source_partition", "source_offset", "error_class",
    "reason", "message_key", "payload", "payload_bytes", "failed_at", "stored_at",
)

_EMPTY: dict[str, Any] = {
    "campaign_id": "", "creative_id": "", "clicked": False, "cost_micros": None, "channel": "",
    "sequence_id": "", "reply_kind": "", "content_id": "", "action": "", "topic": None,
    "public": False, "change": "", "title": "", "function": "", "seniority": "",
    "buying_role": "", "name": "", "sector": "", "tier": None, "renewal_date": None,
    "arr": None, "champion_ids": [], "owner": "",
}


def _type_columns(e: object) -> dict[str, Any]:
    if isinstance(e, AdImpression):
        return {"campaign_id": e.campaign_id, "creative_id": e.creative_id, "channel": e.channel,
                "clicked": e.clicked, "cost_micros": e.cost_micros}
    if isinstance(e, OutreachReply):
        return {"sequence_id": e.sequence_id, "channel": e.channel, "reply_kind": e.reply_kind}
    if isinstance(e, ContentInteraction):
        return {"content_id": e.content_id, "action": e.action, "topic": e.topic,
                "public": e.public}
    if isinstance(e, RoleChange):
        return {"change": e.change, "title": e.title, "function": e.function,
                "seniority": e.seniority, "buying_role": e.buying_role}
    if isinstance(e, AccountProfile):
        return {"name": e.name, "sector": e.sector, "tier": e.tier,
                "renewal_date": e.renewal_date, "arr": e.arr,
                "champion_ids": list(e.champion_ids), "owner": e.owner or ""}
    raise TypeError(f"not an input event: {type(e).__name__}")


def event_row(accepted: AcceptedEvent, ingested_at: datetime) -> list[Any]:
    """The event as a row of ``EVENT_COLUMNS``: what each column holds, spelled out. The writer
    sends :func:`event_json_line` instead; this is the reference the tests hold it to."""
    e = accepted.event
    src = accepted.source
    values = dict(_EMPTY, champion_ids=[])  # a list of its own for every row
    values.update(_type_columns(e))
    values.update(
        event_id=e.event_id,
        type=e.type,
        schema_version=e.schema_version,
        occurred_at=e.occurred_at.astimezone(UTC),
        account_id=e.account_id,
        stakeholder_id="" if isinstance(e, AccountProfile) else e.stakeholder_id,
        source_topic=src.topic,
        source_partition=src.partition,
        source_offset=src.offset,
        ingested_at=ingested_at,
    )
    return [values[c] for c in EVENT_COLUMNS]


def ingested_at_text(at: datetime) -> bytes:
    """``at`` as ISO-8601 UTC with milliseconds (truncated, as DateTime64(3) stores it).

    Computed once per batch for :func:`event_json_line`."""
    at = at.astimezone(UTC)
    return f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z".encode()


@lru_cache(maxsize=1024)
def _json_string(text: str) -> bytes:
    """``text`` as a JSON string literal; a topic name is escaped once, not once per row."""
    return json.dumps(text).encode()


def event_json_line(accepted: AcceptedEvent, ingested_at: bytes) -> bytes:
    """One JSONEachRow line for the ``events`` table: the event as pydantic serialises it, plus
    the source columns. ``ingested_at`` comes from :func:`ingested_at_text`.

    The model's own serialiser (what ``model_dump_json`` runs, in Rust) writes exactly the model's
    fields; ClickHouse parses the line in C++ without the GIL, and fills the columns of the other
    event types with their defaults ('' / false / NULL / []), which are the values of _EMPTY.
    """
    e = accepted.event
    src = accepted.source
    # to_json returns the bytes model_dump_json would decode to str: no decode and re-encode
    body = e.__pydantic_serializer__.to_json(e)
    return b'%s,"source_topic":%s,"source_partition":%d,"source_offset":%d,"ingested_at":"%s"}' % (
        body[:-1], _json_string(src.topic), src.partition, src.offset, ingested_at)


def dead_letter_row(dl: DeadLetter, failed_at: datetime, stored_at: datetime) -> list[Any]:
    return [
        dl.dead_letter_id, dl.source_topic, dl.source_partition, dl.source_offset,
        dl.error_class, dl.reason, dl.key or b"", dl.payload, len(dl.payload),
        failed_at, stored_at,
    ]


SIGNAL_COLUMNS: tuple[str, ...] = (
    "signal_id", "account_id", "stakeholder_id", "type", "category", "severity", "occurred_at",
    "detected_at", "rule_version", "evidence", "stored_at", "status", "withdrawn_at",
    "status_rank",
)

ACCOUNT_STATE_COLUMNS: tuple[str, ...] = (
    "account_id", "name", "sector", "owner", "tier_level", "tier", "tier_reasons", "renewal_date",
    "arr", "champions", "score_7d", "score_30d", "score_90d", "score_prior_30d", "engaged_7d",
    "engaged_30d", "engaged_90d", "reached_7d", "reached_30d", "reached_90d", "functions_30d",
    "roster", "last_engaged_at", "last_exposed_at", "event_time", "late_ignored", "rule_version",
    "version",
)


def signal_row(signal: Signal, stored_at: datetime) -> list[Any]:
    return [
        signal.signal_id, signal.account_id, signal.stakeholder_id, signal.type,
        signal.category, signal.severity, signal.occurred_at, signal.detected_at,
        signal.rule_version, json.dumps(signal.evidence, default=str, sort_keys=True), stored_at,
        signal.status, signal.withdrawn_at, STATUS_RANK[signal.status],
    ]


# the signals table keeps, per id, the row of the highest rank: the latest status
STATUS_RANK: dict[str, int] = {"open": 0, "withdrawn": 1}


def _ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def account_state_row(view: AccountView, version: int) -> list[Any]:
    """``view``: the account's state and window figures at its event time."""
    s, f = view.state, view.figures
    renewal = None if s.renewal_day is None else date.fromordinal(s.renewal_day + EPOCH_ORDINAL)
    return [
        s.account_id, s.name or "", s.sector or "", s.owner or "", s.tier_level,
        s.tier or "stable", list(view.tier_reasons), renewal, s.arr, list(f["champions"]),
        f["score_7d"], f["score_30d"], f["score_90d"], f["score_prior_30d"],
        f["engaged_7d"], f["engaged_30d"], f["engaged_90d"],
        f["reached_7d"], f["reached_30d"], f["reached_90d"], list(f["functions_30d"]),
        f["roster"], _ts(s.last_engaged), _ts(s.last_exposed), _ts(s.high_water),
        s.late_ignored, view.rule_version, version,
    ]


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return ingested_at_text(value).decode()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def account_state_json(view: AccountView, version: int) -> bytes:
    """The account's ``account_state`` row as one JSON object (a JSONEachRow line): what the
    worker puts on the account-state topic and ``radar store`` inserts as it is."""
    row = dict(zip(ACCOUNT_STATE_COLUMNS, account_state_row(view, version), strict=True))
    return json.dumps(row, default=_json_value, separators=(",", ":")).encode()


DELIVERY_COLUMNS: tuple[str, ...] = (
    "key", "signal_id", "destination", "message", "outcome", "attempts", "http_status", "error",
    "signal_type", "severity", "account_id", "owner", "detected_at", "recorded_at", "stored_at",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def as_utc(at: datetime) -> datetime:
    # the notifier writes aware times; a naive one is read as UTC, not as this machine's zone
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def delivery_id(record: DeliveryRecord) -> str:
    """What tells a stored ``alert_deliveries`` row from a newer record of the same key: the key
    and ``recorded_at`` in whole milliseconds, as ``DateTime64(3)`` keeps it (the writer's
    already-stored check reads ``concat(key, '@', toString(toUnixTimestamp64Milli(...)))``)."""
    return f"{record.key}@{(as_utc(record.recorded_at) - _EPOCH) // _MILLISECOND}"


def delivery_problem(record: DeliveryRecord) -> str | None:
    """Why ``record`` cannot be a row (a number beyond its column), or None. Such a record is
    not radar notify's: an insert that fails would be retried for ever and stall the store."""
    if record.attempts > 2**32 - 1:
        return f"attempts {record.attempts} is beyond UInt32"
    if record.http_status is not None and not 0 <= record.http_status <= 2**16 - 1:
        return f"http_status {record.http_status} is not an HTTP status"
    return None


def delivery_row(record: DeliveryRecord, stored_at: datetime) -> list[Any]:
    """``record`` as a row of ``DELIVERY_COLUMNS``."""
    detected = None if record.detected_at is None else as_utc(record.detected_at)
    return [
        record.key, record.signal_id, record.destination, record.message, record.outcome,
        record.attempts, record.http_status, record.error, record.signal_type, record.severity,
        record.account_id, record.owner, detected, as_utc(record.recorded_at), stored_at,
    ]
