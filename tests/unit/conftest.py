"""Shared builders for the unit tests: one valid example of each input event type (SPEC §2)."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from processors.erasure import Erased
from sinks.sink import MemorySink
from streams.metrics import Metrics
from streams.settings import load_settings
from streams.store import Record, Store

# One minimal, valid event of each type. Optional fields with defaults are left out on purpose
# so the tests can check that the defaults are applied.
VALID_EVENTS: dict[str, dict[str, Any]] = {
    "ad_impression": {
        "event_id": "evt-ad-1",
        "type": "ad_impression",
        "schema_version": 1,
        "occurred_at": "2026-01-05T09:00:00Z",
        "account_id": "acct-1",
        "stakeholder_id": "person-1",
        "campaign_id": "camp-1",
        "creative_id": "creative-1",
        "channel": "linkedin",
    },
    "outreach_reply": {
        "event_id": "evt-reply-1",
        "type": "outreach_reply",
        "schema_version": 1,
        "occurred_at": "2026-01-05T09:00:00Z",
        "account_id": "acct-1",
        "stakeholder_id": "person-1",
        "sequence_id": "seq-1",
        "channel": "email",
        "reply_kind": "positive_reply",
    },
    "content_interaction": {
        "event_id": "evt-content-1",
        "type": "content_interaction",
        "schema_version": 1,
        "occurred_at": "2026-01-05T09:00:00Z",
        "account_id": "acct-1",
        "stakeholder_id": "person-1",
        "content_id": "whitepaper-1",
        "action": "like",
    },
    "role_change": {
        "event_id": "evt-role-1",
        "type": "role_change",
        "schema_version": 1,
        "occurred_at": "2026-01-05T09:00:00Z",
        "account_id": "acct-1",
        "stakeholder_id": "person-1",
        "change": "left",
        "title": "VP Sales",
        "function": "commercial",
        "seniority": "vp",
    },
    "account_profile": {
        "event_id": "evt-profile-1",
        "type": "account_profile",
        "schema_version": 1,
        "occurred_at": "2026-01-05T09:00:00Z",
        "account_id": "acct-1",
        "name": "Acme Corp",
        "sector": "energy",
        "tier": 2,
        "renewal_date": "2026-03-01",
        "arr": 353000.0,
    },
}

EventFactory = Callable[..., dict[str, Any]]


def build_event(
    event_type: str, *, drop: tuple[str, ...] = (), **overrides: Any
) -> dict[str, Any]:
    """A valid event of ``event_type`` with ``overrides`` applied and ``drop`` fields removed."""
    event = copy.deepcopy(VALID_EVENTS[event_type])
    event.update(overrides)
    for name in drop:
        event.pop(name, None)
    return event


def encode(event: Any) -> bytes:
    """Compact JSON bytes, as a producer would send them."""
    return json.dumps(event, separators=(",", ":")).encode("utf-8")


@pytest.fixture
def make_event() -> EventFactory:
    return build_event


@pytest.fixture
def to_bytes() -> Callable[[Any], bytes]:
    return encode


def store_in_memory(batches: list[list[Record]]) -> MemorySink:
    """``batches`` through ``radar store`` (default settings, nothing erased) into MemorySink:
    what the store keeps, to compare with what embedded ClickHouse keeps."""
    memory = MemorySink()
    store = Store(load_settings({}), memory, Metrics(), Erased())

    async def go() -> None:
        for batch in batches:
            await store.store(batch)

    asyncio.run(go())
    return memory
