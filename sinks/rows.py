"""Pure conversion of events and dead letters into ClickHouse rows (column order fixed here)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from processors.ingest import AcceptedEvent
from schemas.dead_letter import DeadLetter
from schemas.events import (
    AccountProfile,
    AdImpression,
    ContentInteraction,
    OutreachReply,
    RoleChange,
)

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
    "name", "sector", "tier", "renewal_date", "arr", "champion_ids",
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
    "arr": None, "champion_ids": [],
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
                "champion_ids": list(e.champion_ids)}
    raise TypeError(f"not an input event: {type(e).__name__}")


def event_row(accepted: AcceptedEvent, ingested_at: datetime) -> list[Any]:
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


def dead_letter_row(dl: DeadLetter, failed_at: datetime, stored_at: datetime) -> list[Any]:
    return [
        dl.dead_letter_id, dl.source_topic, dl.source_partition, dl.source_offset,
        dl.error_class, dl.reason, dl.key or b"", dl.payload, len(dl.payload),
        failed_at, stored_at,
    ]
