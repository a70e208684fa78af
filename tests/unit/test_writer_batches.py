"""The ClickHouse writer on a real embedded database: batches of any size, stored once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from processors.ingest import AcceptedEvent, RawMessage
from schemas.events import AdImpression
from schemas.signals import Signal
from sinks.clickhouse import (
    PREFILTER_SLICE,
    ClickHouseWriter,
    WriteResult,
    occurred_within,
    open_client,
    sql_strings,
)


@contextmanager
def open_writer(tmp_path: Path) -> Iterator[ClickHouseWriter]:
    """A writer on a fresh embedded database under ``tmp_path``, closed afterwards."""
    writer = ClickHouseWriter(f"chdb://{tmp_path / 'db'}", retry_initial=0.01, retry_max=0.01)
    writer.open_blocking()
    try:
        yield writer
    finally:
        writer.close_blocking()


def signals(n: int) -> list[Signal]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [Signal(signal_id=f"{i:032x}", account_id=f"acct-{i % 50}", type="pricing_page_visit",
                   category="expansion", severity="high", occurred_at=at, detected_at=at,
                   rule_version="v1", evidence={"event_ids": [f"e{i}"]}) for i in range(n)]


def test_a_batch_larger_than_one_query_can_name_is_stored_once(tmp_path: Path) -> None:
    """The already-stored check runs in slices of PREFILTER_SLICE ids: a batch of several
    slices is checked whole and stored once."""
    n = PREFILTER_SLICE * 3 + 7
    batch = signals(n)
    with open_writer(tmp_path) as writer:
        first = asyncio.run(asyncio.wait_for(writer.write_signals(batch), 60))
        again = asyncio.run(asyncio.wait_for(writer.write_signals(batch), 60))
        _, rows = asyncio.run(writer.query_read_only("SELECT count(), uniqExact(signal_id) "
                                                     "FROM signals"))
    assert (first.written, first.attempts) == (n, 1)
    assert again.written == 0  # a redelivered batch: every id already stored
    assert rows == [(n, n)]


def events(first: int, last: int) -> list[AcceptedEvent]:
    """Events ``first``..``last - 1``; event i sits at offset i, as Kafka would redeliver it."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [AcceptedEvent(
        AdImpression(event_id=f"evt-{i:06d}", type="ad_impression", schema_version=1,
                     occurred_at=at, account_id=f"acct-{i % 50}", stakeholder_id=f"p-{i}",
                     campaign_id="camp", creative_id="cr", channel="linkedin"),
        RawMessage("radar.ad-impressions", 0, i, None, b"")) for i in range(first, last)]


def test_redelivered_events_in_a_later_batch_are_not_stored_again(tmp_path: Path) -> None:
    """After a restart Kafka redelivers from the last commit, cut into other batches: the
    events already stored are skipped (across several prefilter slices), the new ones stored."""
    n = PREFILTER_SLICE * 2 + 3
    with open_writer(tmp_path) as writer:
        first = asyncio.run(asyncio.wait_for(writer.write_events(events(0, n)), 60))
        later = asyncio.run(asyncio.wait_for(
            writer.write_events(events(n - PREFILTER_SLICE - 5, n + 10)), 60))
        _, rows = asyncio.run(writer.query_read_only("SELECT count(), uniqExact(event_id) "
                                                     "FROM events"))
    assert (first.written, first.attempts) == (n, 1)
    assert (later.offered, later.written) == (PREFILTER_SLICE + 15, 10)
    assert rows == [(n + 10, n + 10)]


ODD_IDS = ["it's", "back\\slash", "both\\'", "nul\x00byte", "new\nline\ttab", "%(ids)s",
           "{braces}", "\u65e5\u672c\U0001f600", "'", "\\", "a','b", "trailing\\"]


def impressions(ids: list[str]) -> list[AcceptedEvent]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [AcceptedEvent(
        AdImpression(event_id=eid, type="ad_impression", schema_version=1, occurred_at=at,
                     account_id="acct-1", stakeholder_id="p-1", campaign_id="camp",
                     creative_id="cr", channel="linkedin"),
        RawMessage("radar.ad-impressions", 0, i, None, b"")) for i, eid in enumerate(ids)]


def write_twice(tmp_path: Path, ids: list[str]) -> tuple[WriteResult, WriteResult, list[str]]:
    """The same batch written twice (a redelivery); returns both results and the ids stored."""
    with open_writer(tmp_path) as writer:
        first = asyncio.run(asyncio.wait_for(writer.write_events(impressions(ids)), 60))
        again = asyncio.run(asyncio.wait_for(writer.write_events(impressions(ids)), 60))
        _, rows = asyncio.run(writer.query_read_only("SELECT event_id FROM events"))
    return first, again, [r[0] for r in rows]


def test_ids_with_quotes_backslashes_and_control_characters_are_found_again(
        tmp_path: Path) -> None:
    """The already-stored check writes its id list itself: an id it quoted wrongly would be
    refused (the insert retried for ever) or missed (the event stored twice)."""
    first, again, stored = write_twice(tmp_path, ODD_IDS)
    assert (first.written, first.attempts) == (len(ODD_IDS), 1)
    assert (again.written, again.attempts) == (0, 1)
    assert sorted(stored) == sorted(ODD_IDS)
    assert sql_strings(["plain-1", "plain-2"]) == "'plain-1','plain-2'"


def test_long_ids_fill_a_check_beyond_clickhouses_default_query_size(tmp_path: Path) -> None:
    """5,000 ids of 128 characters are ~650 KB of query text, over the default
    max_query_size (256 KiB), which the check raises to fit; a refused check would make the
    insert retry for ever."""
    ids = [f"{i:06d}".rjust(128, "e") for i in range(5000)]
    first, again, stored = write_twice(tmp_path, ids)
    assert (first.written, first.attempts) == (5000, 1)
    assert (again.written, again.attempts) == (0, 1)
    assert sorted(stored) == ids


def at_times(times: list[datetime], prefix: str = "t") -> list[AcceptedEvent]:
    return [AcceptedEvent(
        AdImpression(event_id=f"{prefix}-{i}", type="ad_impression", schema_version=1,
                     occurred_at=t, account_id=f"acct-{i % 3}", stakeholder_id="p-1",
                     campaign_id="camp", creative_id="cr", channel="linkedin"),
        RawMessage("radar.ad-impressions", 0, i, None, b"")) for i, t in enumerate(times)]


AWKWARD_TIMES = [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(1899, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2026, 1, 31, 23, 59, 59, 999999, tzinfo=UTC),  # a microsecond before February
    datetime(2026, 2, 1, 4, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5))),
    datetime(2026, 3, 1, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
    datetime(2300, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


def test_redelivered_events_at_any_time_are_found_within_the_batch_time_bound(
        tmp_path: Path) -> None:
    """The check reads only the batch's span of event times (stored to the millisecond): an
    event redelivered alone, or in a batch spanning months and centuries, is found again."""
    batch = at_times(AWKWARD_TIMES)
    with open_writer(tmp_path) as writer:
        first = asyncio.run(asyncio.wait_for(writer.write_events(batch), 60))
        again = asyncio.run(asyncio.wait_for(writer.write_events(batch), 60))
        alone = [asyncio.run(asyncio.wait_for(writer.write_events([a]), 60)).written
                 for a in batch]
        _, rows = asyncio.run(writer.query_read_only("SELECT count() FROM events"))
    assert first.written == len(AWKWARD_TIMES)
    assert again.written == 0
    assert alone == [0] * len(AWKWARD_TIMES)
    assert rows == [(len(AWKWARD_TIMES),)]


def test_the_check_reads_only_the_months_of_the_batch(tmp_path: Path) -> None:
    """A year of events, a month per insert: the check's bound for one month's batch reads
    that month's rows only (ClickHouse refuses the query if it would read more)."""
    per_month = 2000
    year = [datetime(2025, m, 1 + d % 28, d % 24, tzinfo=UTC)
            for m in range(1, 13) for d in range(per_month)]
    with open_writer(tmp_path) as writer:
        for m in range(12):
            asyncio.run(writer.write_events(
                at_times(year[m * per_month:(m + 1) * per_month], prefix=f"m{m}")))
    june = at_times([datetime(2025, 6, 3, tzinfo=UTC), datetime(2025, 6, 20, tzinfo=UTC)])
    client = open_client(f"chdb://{tmp_path / 'db'}")
    try:
        limit = {"max_rows_to_read": per_month}
        check = "SELECT event_id FROM events WHERE event_id IN ('t-0', 't-1', 'm5-7')"
        bounded = client.query(check + occurred_within(june), settings=limit).result_rows
        with pytest.raises(Exception, match="TOO_MANY_ROWS"):  # the limit does bite
            client.query(check, settings=limit)
    finally:
        client.close()
    assert bounded == [("m5-7",)]  # June's 8th event


def test_a_withdrawal_replaces_its_signal_whatever_order_they_are_written_in(
        tmp_path: Path) -> None:
    """The signals table keeps each id's latest status: a withdrawal written before its signal
    (two batches' writes in flight) still wins, and a redelivered pair is stored once."""
    batch = signals(4)
    at = datetime(2026, 1, 2, tzinfo=UTC)
    withdrawn = [s.model_copy(update={"status": "withdrawn", "withdrawn_at": at})
                 for s in batch[:2]]
    with open_writer(tmp_path) as writer:
        asyncio.run(writer.write_signals(withdrawn[:1]))  # before its open row
        asyncio.run(writer.write_signals(batch))
        asyncio.run(writer.write_signals(withdrawn[1:]))
        again = asyncio.run(writer.write_signals(batch + withdrawn))
        _, latest = asyncio.run(writer.query_read_only(
            "SELECT signal_id, status, withdrawn_at IS NOT NULL FROM signals FINAL "
            "ORDER BY signal_id"))
        _, rows = asyncio.run(writer.query_read_only("SELECT count() FROM signals"))
    assert again.written == 0
    assert rows == [(6,)]
    assert latest == [(batch[0].signal_id, "withdrawn", True),
                      (batch[1].signal_id, "withdrawn", True),
                      (batch[2].signal_id, "open", False), (batch[3].signal_id, "open", False)]


SIGNALS_OF_SCHEMA_2 = """
    CREATE TABLE signals
    (
        signal_id String, account_id String, stakeholder_id Nullable(String),
        type LowCardinality(String), category LowCardinality(String),
        severity LowCardinality(String), occurred_at DateTime64(3, 'UTC'),
        detected_at DateTime64(3, 'UTC'), rule_version LowCardinality(String),
        evidence String, stored_at DateTime64(3, 'UTC')
    )
    ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(occurred_at)
    ORDER BY (account_id, signal_id)
"""


def test_a_signals_table_made_before_withdrawals_gets_its_columns(tmp_path: Path) -> None:
    client = open_client(f"chdb://{tmp_path / 'db'}")
    try:
        client.command(SIGNALS_OF_SCHEMA_2)
        client.command("INSERT INTO signals (signal_id, account_id, type, category, "
                       "severity, occurred_at, detected_at, rule_version, evidence, stored_at) "
                       "VALUES ('old', 'acct-1', 'engagement_silence', 'churn', 'high', now(), "
                       "now(), 'v1', '{}', now())")
    finally:
        client.close()
    with open_writer(tmp_path) as writer:
        _, columns = asyncio.run(writer.query_read_only(
            "SELECT name FROM system.columns WHERE database = currentDatabase() "
            "AND table = 'signals' AND name IN ('status', 'withdrawn_at', 'status_rank')"))
        _, old = asyncio.run(writer.query_read_only(
            "SELECT status, status_rank FROM signals WHERE signal_id = 'old'"))
    assert sorted(c for (c,) in columns) == ["status", "status_rank", "withdrawn_at"]
    assert old == [("open", 0)]
