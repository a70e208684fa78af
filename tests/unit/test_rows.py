"""``sinks.rows``: events and dead letters -> ClickHouse rows, in the fixed column order."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from conftest import build_event, encode

from processors.ingest import AcceptedEvent, RawMessage
from schemas.dead_letter import DeadLetter
from schemas.decode import Rejection, decode_event
from sinks.rows import DEAD_LETTER_COLUMNS, EVENT_COLUMNS, dead_letter_row, event_row
from sinks.schema import STATEMENTS

INGESTED_AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

# the type columns and the value each holds when the event is of another type
EMPTY_TYPE_COLUMNS: dict[str, Any] = {
    "campaign_id": "", "creative_id": "", "clicked": False, "cost_micros": None, "channel": "",
    "sequence_id": "", "reply_kind": "", "content_id": "", "action": "", "topic": None,
    "public": False, "change": "", "title": "", "function": "", "seniority": "",
    "buying_role": "", "name": "", "sector": "", "tier": None, "renewal_date": None,
    "arr": None, "champion_ids": [], "owner": "",
}


def accepted(event: dict[str, Any], topic: str = "radar.t", offset: int = 11) -> AcceptedEvent:
    decoded = decode_event(encode(event), 4096)
    assert not isinstance(decoded, Rejection), decoded
    return AcceptedEvent(decoded, RawMessage(topic, 2, offset, b"acct-1", encode(event)))


def as_dict(row: list[Any]) -> dict[str, Any]:
    assert len(row) == len(EVENT_COLUMNS)
    return dict(zip(EVENT_COLUMNS, row, strict=True))


def table_columns(table: str) -> list[str]:
    statement = next(s for s in STATEMENTS if f"CREATE TABLE IF NOT EXISTS {table}\n" in s)
    body = statement.split("(", 1)[1].split("\n    )\n", 1)[0]
    return [line.split()[0].strip("`") for line in body.strip().splitlines()]


def test_event_columns_match_the_events_table() -> None:
    assert list(EVENT_COLUMNS) == table_columns("events")


def test_dead_letter_columns_match_the_dead_letters_table() -> None:
    assert list(DEAD_LETTER_COLUMNS) == table_columns("dead_letters")


def test_envelope_and_source_columns_with_occurred_at_converted_to_utc() -> None:
    event = build_event("ad_impression", occurred_at="2026-01-05T09:30:00+02:00")

    row = as_dict(event_row(accepted(event, "radar.ad-impressions", 77), INGESTED_AT))

    assert row["event_id"] == "evt-ad-1"
    assert row["type"] == "ad_impression"
    assert row["schema_version"] == 1
    assert row["occurred_at"] == datetime(2026, 1, 5, 7, 30, tzinfo=UTC)
    assert row["occurred_at"].utcoffset().total_seconds() == 0
    assert row["account_id"] == "acct-1"
    assert row["stakeholder_id"] == "person-1"
    assert row["source_topic"] == "radar.ad-impressions"
    assert row["source_partition"] == 2
    assert row["source_offset"] == 77
    assert row["ingested_at"] == INGESTED_AT


@pytest.mark.parametrize(
    ("event", "filled"),
    [
        pytest.param(
            build_event("ad_impression", clicked=True, cost_micros=2500),
            {"campaign_id": "camp-1", "creative_id": "creative-1", "clicked": True,
             "cost_micros": 2500, "channel": "linkedin"},
            id="ad_impression",
        ),
        pytest.param(
            build_event("outreach_reply"),
            {"sequence_id": "seq-1", "channel": "email", "reply_kind": "positive_reply"},
            id="outreach_reply",
        ),
        pytest.param(
            build_event("content_interaction", topic="pricing", public=True),
            {"content_id": "whitepaper-1", "action": "like", "topic": "pricing", "public": True},
            id="content_interaction",
        ),
        pytest.param(
            build_event("role_change", buying_role="champion"),
            {"change": "left", "title": "VP Sales", "function": "commercial",
             "seniority": "vp", "buying_role": "champion"},
            id="role_change",
        ),
        pytest.param(
            build_event("account_profile", champion_ids=["p1", "p2"]),
            {"name": "Acme Corp", "sector": "energy", "tier": 2,
             "renewal_date": date(2026, 3, 1), "arr": 353000.0, "champion_ids": ["p1", "p2"]},
            id="account_profile",
        ),
        pytest.param(
            build_event("account_profile", owner="ana@example.com"),
            {"name": "Acme Corp", "sector": "energy", "tier": 2,
             "renewal_date": date(2026, 3, 1), "arr": 353000.0, "champion_ids": [],
             "owner": "ana@example.com"},
            id="account_profile-owner",
        ),
    ],
)
def test_type_columns_are_filled_and_the_others_empty(
    event: dict[str, Any], filled: dict[str, Any]
) -> None:
    row = as_dict(event_row(accepted(event), INGESTED_AT))

    expected = {**EMPTY_TYPE_COLUMNS, **filled}
    assert {c: row[c] for c in EMPTY_TYPE_COLUMNS} == expected


def test_an_account_profile_has_an_empty_stakeholder_id() -> None:
    row = as_dict(event_row(accepted(build_event("account_profile")), INGESTED_AT))

    assert row["stakeholder_id"] == ""


def test_role_change_default_buying_role_is_stored_as_unknown() -> None:
    row = as_dict(event_row(accepted(build_event("role_change")), INGESTED_AT))

    assert row["buying_role"] == "unknown"


def test_champion_ids_are_a_fresh_list() -> None:
    acc = accepted(build_event("account_profile", champion_ids=["p1"]))

    row = as_dict(event_row(acc, INGESTED_AT))
    row["champion_ids"].append("p2")

    assert acc.event.champion_ids == ["p1"]


def test_rows_of_different_events_do_not_share_the_empty_champion_list() -> None:
    first = as_dict(event_row(accepted(build_event("ad_impression")), INGESTED_AT))
    first["champion_ids"].append("leak")

    second = as_dict(event_row(accepted(build_event("ad_impression")), INGESTED_AT))

    assert second["champion_ids"] == []


def test_event_row_refuses_something_that_is_not_an_input_event() -> None:
    fake = AcceptedEvent(object(), RawMessage("t", 0, 0, None, b""))  # type: ignore[arg-type]

    with pytest.raises(TypeError, match="not an input event: object"):
        event_row(fake, INGESTED_AT)


FAILED_AT = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
STORED_AT = datetime(2026, 1, 5, 10, 0, 1, tzinfo=UTC)


def test_dead_letter_row_values_in_column_order() -> None:
    dl = DeadLetter(
        dead_letter_id="radar.accounts:1:99", source_topic="radar.accounts",
        source_partition=1, source_offset=99, key=b"acct-1", payload=b"not json",
        error_class="malformed_json", reason="not valid JSON: x",
    )

    row = dead_letter_row(dl, FAILED_AT, STORED_AT)

    assert len(row) == len(DEAD_LETTER_COLUMNS)
    assert dict(zip(DEAD_LETTER_COLUMNS, row, strict=True)) == {
        "dead_letter_id": "radar.accounts:1:99",
        "source_topic": "radar.accounts",
        "source_partition": 1,
        "source_offset": 99,
        "error_class": "malformed_json",
        "reason": "not valid JSON: x",
        "message_key": b"acct-1",
        "payload": b"not json",
        "payload_bytes": 8,
        "failed_at": FAILED_AT,
        "stored_at": STORED_AT,
    }


def test_dead_letter_row_without_a_key_or_value() -> None:
    dl = DeadLetter("t:0:1", "t", 0, 1, None, b"", "empty_message", "message has no value")

    row = dict(zip(DEAD_LETTER_COLUMNS, dead_letter_row(dl, FAILED_AT, STORED_AT), strict=True))

    assert row["message_key"] == b""
    assert row["payload"] == b""
    assert row["payload_bytes"] == 0


def test_payload_bytes_counts_bytes_not_characters() -> None:
    payload = "é".encode() * 3  # 3 characters, 6 bytes
    dl = DeadLetter("t:0:1", "t", 0, 1, None, payload, "malformed_json", "r")

    row = dead_letter_row(dl, FAILED_AT, STORED_AT)

    assert row[DEAD_LETTER_COLUMNS.index("payload_bytes")] == 6
