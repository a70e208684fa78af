"""``write_events`` sends JSONEachRow text (``sinks.rows.event_json_line``) instead of Python rows.

It must store exactly what the column insert of ``event_row`` stored, value for value, on real
embedded ClickHouse: the same table definition, the same batch, every column compared.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_args

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from conftest import build_event, encode

from processors.ingest import AcceptedEvent, RawMessage
from schemas.decode import Rejection, decode_event
from schemas.events import AdImpression, InputEvent
from sinks.clickhouse import (
    INSERT_SETTINGS,
    ClickHouseWriter,
    WriteResult,
    column_insert,
    dedup_token,
    init_schema,
    json_insert,
    open_client,
)
from sinks.rows import EVENT_COLUMNS, event_json_line, event_row, ingested_at_text

# sub-millisecond digits on purpose: DateTime64(3) keeps milliseconds, both paths must truncate
CLOCK = datetime(2026, 1, 5, 12, 0, 0, 123999, tzinfo=UTC)
# every character class a JSON writer or reader can get wrong
AWKWARD = ('quote " backslash \\ slash / newline \n CR \r tab \t é 日本 🚀 nul \x00 bell \x07 '
           "unit-sep \x1f del \x7f line-sep \u2028 bom \ufeff")
FLOATS = [353000.0, 0.1 + 0.2, 1 / 3, 123456789.123456789, 2.718281828459045e-7, 5e-324,
          2.2250738585072014e-308, 1.7976931348623157e308, 1e22, 1e23, 9007199254740993.0, 0.0,
          -0.0]


# Session defaults a server may have (older versions, or a profile), under which the JSON insert
# must still store the same: each is overridden by a setting of JSON_INSERT_SETTINGS.
STRICT_DEFAULTS: dict[str, Any] = {
    "date_time_input_format": "basic", "input_format_skip_unknown_fields": 0,
    "precise_float_parsing": 0, "input_format_null_as_default": 0,
}


@pytest.fixture(params=[{}, STRICT_DEFAULTS], ids=["chdb-defaults", "strict-defaults"])
def session_defaults(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every client opened in the test (the writer's too) starts with these settings."""
    if request.param:
        get_client = functools.partial(clickhouse_connect.get_client, settings=request.param)
        monkeypatch.setattr(clickhouse_connect, "get_client", get_client)


def accepted(event: dict[str, Any], offset: int, topic: str = "radar.t") -> AcceptedEvent:
    decoded = decode_event(encode(event), 1 << 20)
    assert not isinstance(decoded, Rejection), decoded
    return AcceptedEvent(decoded, RawMessage(topic, offset % 6, offset, None, encode(event)))


def occurred_at_cases() -> list[dict[str, Any]]:
    stamps = [
        "2026-01-05T09:00:00Z", "2026-01-05T09:30:00+02:00", "2026-01-05T09:30:00-05:30",
        "2026-01-05T00:30:00+14:00", "2026-01-05T09:00:00.5Z", "2026-01-05T09:00:00.123+02:00",
        "2026-01-05T09:00:00.123456Z", "2026-01-05T09:00:00.999999-05:30",
        "1969-12-31T23:59:59.9995Z", "1960-06-01T12:00:00.1239Z", "1970-01-01T00:00:00.0009Z",
        "1900-01-01T00:00:00Z", "2299-12-31T23:59:59.999Z",
    ]
    kinds = ["ad_impression", "outreach_reply", "content_interaction", "role_change",
             "account_profile"]
    return [build_event(kinds[i % len(kinds)], event_id=f"at-{i:02d}", occurred_at=stamp)
            for i, stamp in enumerate(stamps)]


def ad_impressions() -> list[dict[str, Any]]:
    return [
        build_event("ad_impression", event_id="ad-minimal"),  # clicked, cost_micros absent
        build_event("ad_impression", event_id="ad-clicked", clicked=True, cost_micros=0,
                    channel="meta"),
        build_event("ad_impression", event_id="ad-null-cost", clicked=False, cost_micros=None,
                    channel="google"),
        build_event("ad_impression", event_id="ad-max-cost", clicked=True,
                    cost_micros=2**63 - 1, channel="programmatic"),
        build_event("ad_impression", event_id=f"ad-{AWKWARD}", account_id=f"acct-{AWKWARD}",
                    stakeholder_id=AWKWARD, campaign_id=AWKWARD, creative_id='"2026-01-05"'),
        build_event("ad_impression", event_id="ad-null-word", campaign_id="null",
                    creative_id="12345"),
    ]


def other_stakeholder_events() -> list[dict[str, Any]]:
    return [
        build_event("outreach_reply", event_id="reply-1"),
        build_event("outreach_reply", event_id="reply-2", channel="linkedin",
                    reply_kind="meeting_booked", sequence_id=AWKWARD),
        build_event("content_interaction", event_id="content-no-topic"),
        build_event("content_interaction", event_id="content-null-topic", topic=None,
                    public=False),
        build_event("content_interaction", event_id="content-empty-topic", topic="",
                    public=True, action="pricing_page_visit"),
        build_event("content_interaction", event_id="content-topic", topic=AWKWARD, public=True,
                    content_id=AWKWARD),
        # buying_role may be absent (stored as its default) or set; an explicit null is refused
        # by the schema and dead-lettered, so it never reaches the writer
        build_event("role_change", event_id="role-default"),
        build_event("role_change", event_id="role-set", buying_role="champion", change="joined",
                    title=AWKWARD, function="technical", seniority="c_level"),
        build_event("role_change", event_id="role-empty-title", title="",
                    buying_role="sceptic"),
    ]


def account_profiles() -> list[dict[str, Any]]:
    rnd = random.Random(20260105)
    floats = FLOATS + [rnd.random() * 10.0 ** rnd.randint(-20, 20) for _ in range(150)] + [
        float.fromhex(f"0x1.{rnd.getrandbits(52):013x}p{rnd.randint(-1000, 1000)}")
        for _ in range(150)]
    events = [build_event("account_profile", event_id=f"arr-{i:03d}", arr=value,
                          tier=1 + i % 3, renewal_date=str(date(2026, 1, 1) + timedelta(i * 37)))
              for i, value in enumerate(floats)]
    events += [
        build_event("account_profile", event_id="profile-no-champions"),
        build_event("account_profile", event_id="profile-empty-champions", champion_ids=[]),
        build_event("account_profile", event_id="profile-champions", name=AWKWARD,
                    sector="énergie 日本", champion_ids=["p1", AWKWARD, "p1", "日本"]),
        build_event("account_profile", event_id="profile-date-min", tier=1,
                    renewal_date="1970-01-01"),
        build_event("account_profile", event_id="profile-date-max", tier=3,
                    renewal_date="2149-06-06"),
        build_event("account_profile", event_id="profile-owner", owner=AWKWARD[:256]),
        build_event("account_profile", event_id="profile-null-owner", owner=None),
    ]
    return events


def all_cases() -> list[AcceptedEvent]:
    events = occurred_at_cases() + ad_impressions() + other_stakeholder_events() + \
        account_profiles()
    return [accepted(e, offset) for offset, e in enumerate(events)]


def naive_utc(*parts: int) -> datetime:
    """As clickhouse-connect reads a DateTime64(3, 'UTC'): naive, in UTC."""
    return datetime(*parts, tzinfo=UTC).replace(tzinfo=None)


def write_new(dsn: str, batches: list[list[AcceptedEvent]]) -> list[WriteResult]:
    """Through the writer, as the pipeline does; the database is closed again afterwards."""
    writer = ClickHouseWriter(dsn, retry_initial=0.01, retry_max=0.01, clock=lambda: CLOCK)
    writer.open_blocking()
    try:
        return [asyncio.run(asyncio.wait_for(writer.write_events(b), 20)) for b in batches]
    finally:
        writer.close_blocking()


def rows_of(client: Client, table: str) -> list[tuple[Any, ...]]:
    # arr's bits too: Python compares -0.0 equal to 0.0
    result = client.query(f"SELECT *, reinterpretAsUInt64(arr) FROM {table} ORDER BY event_id")
    return [tuple(r) for r in result.result_rows]


def test_every_field_of_every_event_model_is_a_column() -> None:
    """The JSON line names the model's fields: one without a column would be dropped (see
    test_a_field_without_a_column_is_dropped_not_refused), so catch it here."""
    models = get_args(get_args(InputEvent)[0])
    assert len(models) == 5
    for model in models:
        assert set(model.model_fields) <= set(EVENT_COLUMNS), model.__name__


def test_the_line_is_the_models_json_plus_the_source_columns() -> None:
    acc = accepted(build_event("content_interaction", topic=AWKWARD), 77, topic='odd "topic\\')

    line = event_json_line(acc, ingested_at_text(CLOCK))

    own = acc.event.model_dump_json()
    assert line.startswith(own[:-1].encode())
    assert json.loads(line) == {**json.loads(own), "source_topic": 'odd "topic\\',
                                "source_partition": 77 % 6, "source_offset": 77,
                                "ingested_at": "2026-01-05T12:00:00.123Z"}
    assert b"\n" not in line  # one line per row: JSON escapes a newline inside a string


def test_ingested_at_text_is_utc_with_milliseconds_truncated() -> None:
    at = datetime(2026, 1, 5, 14, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2)))

    assert ingested_at_text(at) == b"2026-01-05T12:00:00.999Z"


@pytest.mark.usefixtures("session_defaults")
def test_the_json_insert_stores_what_the_column_insert_stored(tmp_path: Path) -> None:
    cases = all_cases()
    assert len({type(a.event) for a in cases}) == 5
    dsn = f"chdb://{tmp_path / 'db'}"
    # two batches of different sizes, and a duplicate within a batch
    results = write_new(dsn, [cases[:40], cases[40:] + cases[-3:]])
    assert sum(r.written for r in results) == len(cases)

    client = open_client(dsn)
    try:
        # the old path: Python rows, column-oriented, into a table of the same definition
        client.command("CREATE TABLE events_old AS events")
        column_insert("events_old", EVENT_COLUMNS)(
            client, [event_row(a, CLOCK) for a in cases], dict(INSERT_SETTINGS))
        new = rows_of(client, "events")
        old = rows_of(client, "events_old")
        # the same, to ClickHouse's own equality (bit-exact floats, every column)
        differing = client.query("SELECT count() FROM (SELECT * FROM events EXCEPT "
                                 "SELECT * FROM events_old)").result_rows
    finally:
        client.close()

    assert len(new) == len(old) == len(cases)
    for n, o in zip(new, old, strict=True):
        diff = {(EVENT_COLUMNS + ("arr bits",))[i]: (a, b)
                for i, (a, b) in enumerate(zip(n, o, strict=True)) if a != b}
        assert not diff, f"{n[0]!r}: {diff}"
    assert differing == [(0,)]

    # and what both stored is what was sent, not an agreement on a wrong value
    stored = {r[0]: dict(zip(EVENT_COLUMNS, r, strict=False)) for r in new}
    assert stored[f"ad-{AWKWARD}"]["stakeholder_id"] == AWKWARD
    assert stored["role-set"]["title"] == AWKWARD
    assert stored["role-default"]["buying_role"] == "unknown"
    assert stored["content-empty-topic"]["topic"] == ""
    assert stored["content-null-topic"]["topic"] is None
    assert stored["ad-max-cost"]["cost_micros"] == 2**63 - 1
    assert stored["profile-champions"]["champion_ids"] == ["p1", AWKWARD, "p1", "日本"]
    assert stored["profile-champions"]["stakeholder_id"] == ""
    assert stored["profile-owner"]["owner"] == AWKWARD[:256]
    assert stored["profile-null-owner"]["owner"] == stored["reply-1"]["owner"] == ""
    assert [stored[f"arr-{i:03d}"]["arr"] for i in range(len(FLOATS))] == FLOATS
    assert stored["at-01"]["occurred_at"] == naive_utc(2026, 1, 5, 7, 30)
    assert stored["at-06"]["occurred_at"] == naive_utc(2026, 1, 5, 9, 0, 0, 123000)
    assert stored["at-08"]["occurred_at"] == naive_utc(1969, 12, 31, 23, 59, 59, 999000)
    assert stored["at-00"]["ingested_at"] == naive_utc(2026, 1, 5, 12, 0, 0, 123000)
    assert stored["at-00"]["source_offset"] == 0


@pytest.mark.usefixtures("session_defaults")
def test_a_field_without_a_column_is_dropped_not_refused(tmp_path: Path) -> None:
    """A refused insert is retried for ever: the pipeline would stall on a model change."""
    plain = accepted(build_event("ad_impression"), 5)

    class Wider(AdImpression):
        not_a_column: str = "x"

    wider = AcceptedEvent(Wider.model_validate(plain.event.model_dump()), plain.source)
    assert b'"not_a_column":"x"' in event_json_line(wider, ingested_at_text(CLOCK))

    [result] = write_new(f"chdb://{tmp_path / 'db'}", [[wider]])

    assert (result.written, result.attempts) == (1, 1)


def test_a_retried_insert_with_the_same_token_is_stored_once(tmp_path: Path) -> None:
    """The deduplication token rides on the raw insert too (a retry after a lost answer)."""
    cases = all_cases()[:10]
    lines = [event_json_line(a, ingested_at_text(CLOCK)) for a in cases]
    ids = [a.event.event_id for a in cases]
    client = open_client(f"chdb://{tmp_path / 'db'}")
    try:
        init_schema(client)
        insert = json_insert("events")
        for token in ("same", "same", "other"):
            settings = {**INSERT_SETTINGS,
                        "insert_deduplication_token": dedup_token(token, ids)}
            insert(client, lines, settings)
        count = client.query("SELECT count() FROM events").result_rows
    finally:
        client.close()
    assert count == [(20,)]  # the repeat with the same token is dropped, another token is not
