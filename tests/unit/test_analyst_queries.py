"""Analyst queries on a real embedded database: they read and nothing else, within their bounds,
beside ingestion, and a query whose asker left is killed (sinks.analyst)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sinks.analyst import AnalystQueries, QueryFailed, QueryLimits
from sinks.clickhouse import ClickHouseWriter
from sinks.readonly import NotReadOnly

# numbers(1e11) summed takes minutes: only a bound or a kill ends it
HEAVY = "SELECT sum(cityHash64(number)) FROM numbers(1e11)"


@contextmanager
def database(tmp_path: Path, limits: QueryLimits | None = None
             ) -> Iterator[tuple[ClickHouseWriter, AnalystQueries]]:
    """The writer (as the worker holds it) and the analyst queries beside it."""
    dsn = f"chdb://{tmp_path / 'db'}"
    writer = ClickHouseWriter(dsn)
    writer.open_blocking()
    queries = AnalystQueries(dsn, limits or QueryLimits(30, 1000, 2 * 1024**3))
    try:
        yield writer, queries
    finally:
        queries.close()
        writer.close_blocking()


def running(queries: AnalystQueries, text: str) -> int:
    """How many queries mentioning ``text`` run now."""
    _, rows = queries.run_blocking(
        f"SELECT count() FROM system.processes WHERE query LIKE '%{text}%' "
        "AND query NOT LIKE '%system.processes%'")
    return int(rows[0][0])


def test_a_read_answers_with_columns_and_rows(tmp_path: Path) -> None:
    with database(tmp_path) as (_, queries):
        columns, rows = queries.run_blocking("SELECT count() AS n FROM events")

    assert columns == ["n"]
    assert rows == [(0,)]


@pytest.mark.parametrize("clause", ["", " TRUNCATE", " APPEND", " AND STDOUT",
                                    " COMPRESSION 'gzip'"])
@pytest.mark.parametrize("shape", [
    "SELECT * FROM events INTO OUTFILE '{f}'{c}",
    "select * from events into\n  outfile '{f}'{c}",
    "SELECT 1 UNION ALL SELECT 2 INTO OUTFILE '{f}'{c}",
    "SHOW TABLES INTO OUTFILE '{f}'{c}",
    "EXPLAIN SELECT 1 INTO OUTFILE '{f}'{c}",
    "DESCRIBE events INTO OUTFILE '{f}'{c}",
])
def test_into_outfile_in_any_form_writes_no_file(tmp_path: Path, shape: str, clause: str) -> None:
    target = tmp_path / "out.tsv"
    existing = tmp_path / "existing.tsv"
    existing.write_text("kept\n")
    with database(tmp_path) as (_, queries):
        for path in (target, existing):
            with pytest.raises(NotReadOnly, match="INTO OUTFILE is not allowed"):
                queries.run_blocking(shape.format(f=path, c=clause))

    assert not target.exists()
    assert existing.read_text() == "kept\n"


def test_into_outfile_is_refused_by_clickhouses_own_parse_too(tmp_path: Path) -> None:
    """A comment between INTO and OUTFILE hides the words from the text check; ClickHouse's
    parse still shows the file name as a clause of the statement."""
    target = tmp_path / "out.tsv"
    with database(tmp_path) as (_, queries), pytest.raises(NotReadOnly, match="INTO OUTFILE"):
        queries.run_blocking(f"SELECT 1 INTO /* x */ OUTFILE '{target}'")

    assert not target.exists()


@pytest.mark.parametrize("sql", [
    "SELECT file('{secret}')",
    "SELECT * FROM file('{secret}', 'LineAsString')",
    "WITH file('{secret}') AS f SELECT f",
    "SELECT 1 WHERE 1 IN (SELECT length(file('{secret}')))",
    "DESCRIBE file('{secret}')",
    "SELECT * FROM filesystem('{dir}')",
    "SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')",
    "SELECT * FROM s3('http://127.0.0.1:9/bucket/x.csv')",
    "SELECT * FROM remote('127.0.0.1:9', system.one)",
    "SELECT * FROM mysql('127.0.0.1:9', 'db', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:9', 'db', 't', 'u', 'p')",
    "SELECT * FROM executable('cat {secret}', 'LineAsString', 'x String')",
    "SELECT * FROM python(secrets)",
    "SELECT * FROM sqlite('{secret}', 't')",
    "SELECT * FROM format(JSONEachRow, '{{\"a\": 1}}')",
    "SELECT * FROM events AS e JOIN URL('http://127.0.0.1:9/x', CSV) AS u ON 1",
    "SELECT (SELECT count() FROM hdfs('hdfs://127.0.0.1:9/x', 'CSV', 'a String'))",
])
def test_nothing_outside_the_database_is_reached(tmp_path: Path, sql: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t-value\n")
    with database(tmp_path) as (_, queries), pytest.raises(NotReadOnly, match=r"is not allowed"):
        queries.run_blocking(sql.format(secret=secret, dir=tmp_path))


@pytest.mark.parametrize("sql", [
    "SELECT * FROM numbers(3)", "SELECT * FROM generate_series(1, 3)",
    "SELECT * FROM values('x UInt8', 1, 2, 3)", "SELECT format('{} {}', 'a', 'b')",
    "SELECT * FROM view(SELECT 1) UNION ALL SELECT 2 UNION ALL SELECT 3",
])
def test_generating_table_functions_and_ordinary_functions_of_the_same_name_answer(
        tmp_path: Path, sql: str) -> None:
    with database(tmp_path) as (_, queries):
        assert queries.run_blocking(sql)[1]


@pytest.mark.parametrize("sql", [
    "SELECT * FROM events SETTINGS readonly = 0",
    "SELECT * FROM events SETTINGS max_result_rows = 0",
    "SELECT * FROM events SETTINGS max_execution_time = 0",
])
def test_no_setting_can_be_changed_from_the_query(tmp_path: Path, sql: str) -> None:
    with database(tmp_path) as (_, queries), pytest.raises(QueryFailed, match="readonly"):
        queries.run_blocking(sql)


@pytest.mark.parametrize(("sql", "kind"), [
    ("SHOW USERS", "SHOW USERS"), ("SHOW GRANTS", "ShowGrantsQuery"),
    ("SHOW ACCESS", "ShowAccessQuery"), ("SHOW CREATE USER default", "SHOW CREATE USER"),
    ("SELECT * FROM events PARALLEL WITH SELECT 1", "ParallelWithQuery"),
])
def test_access_control_statements_are_refused(tmp_path: Path, sql: str, kind: str) -> None:
    with database(tmp_path) as (_, queries), pytest.raises(NotReadOnly, match=kind):
        queries.run_blocking(sql)


def test_system_users_stays_out_of_reach(tmp_path: Path) -> None:
    with database(tmp_path) as (_, queries), pytest.raises(QueryFailed, match="SHOW USERS"):
        queries.run_blocking("SELECT name FROM system.users")


def test_a_result_beyond_the_row_bound_is_refused_naming_the_variable(tmp_path: Path) -> None:
    limits = QueryLimits(max_seconds=30, max_rows=10, max_memory_bytes=2 * 1024**3)
    with database(tmp_path, limits) as (_, queries):
        assert len(queries.run_blocking("SELECT * FROM numbers(10)")[1]) == 10
        with pytest.raises(QueryFailed, match="RADAR_SQL_MAX_ROWS"):
            queries.run_blocking("SELECT * FROM numbers(11)")


def test_a_query_beyond_the_time_bound_is_stopped_naming_the_variable(tmp_path: Path) -> None:
    limits = QueryLimits(max_seconds=1, max_rows=10, max_memory_bytes=2 * 1024**3)
    with database(tmp_path, limits) as (_, queries):
        with pytest.raises(QueryFailed, match="RADAR_SQL_MAX_SECONDS"):
            queries.run_blocking(HEAVY)
        assert running(queries, "cityHash64") == 0


def test_a_query_beyond_the_memory_bound_is_stopped(tmp_path: Path) -> None:
    limits = QueryLimits(max_seconds=60, max_rows=10, max_memory_bytes=32 * 1024**2)
    with database(tmp_path, limits) as (_, queries), pytest.raises(
            QueryFailed, match="RADAR_SQL_MAX_MEMORY_BYTES"):
        queries.run_blocking("SELECT groupArray(number) FROM numbers(1e8)")


def test_a_cancelled_query_is_killed_not_left_to_run(tmp_path: Path) -> None:
    """The asker went away (an HTTP client hung up): the query stops well before its bound."""
    limits = QueryLimits(max_seconds=600, max_rows=10, max_memory_bytes=2 * 1024**3)

    async def ask_and_leave(queries: AnalystQueries) -> None:
        asking = asyncio.ensure_future(queries.run(HEAVY))
        while running(queries, "cityHash64") == 0:
            await asyncio.sleep(0.05)
        asking.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asking

    with database(tmp_path, limits) as (_, queries):
        asyncio.run(ask_and_leave(queries))
        deadline = time.monotonic() + 30
        while running(queries, "cityHash64") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert running(queries, "cityHash64") == 0


def test_writes_go_on_while_a_heavy_query_runs(tmp_path: Path) -> None:
    """The writer's inserts do not wait for an analyst query: all of them are stored while the
    heavy query is still running (it ends only at its time bound)."""
    from tests.unit.test_writer_batches import signals

    limits = QueryLimits(max_seconds=60, max_rows=10, max_memory_bytes=2 * 1024**3)

    async def write_beside(writer: ClickHouseWriter, queries: AnalystQueries) -> int:
        heavy = asyncio.ensure_future(queries.run(HEAVY))
        while running(queries, "cityHash64") == 0:
            await asyncio.sleep(0.05)
        written = 0
        for i in range(5):
            written += (await writer.write_signals(signals(100)[i * 20:(i + 1) * 20])).written
        assert not heavy.done()
        heavy.cancel()
        with pytest.raises(asyncio.CancelledError):
            await heavy
        return written

    with database(tmp_path, limits) as (writer, queries):
        assert asyncio.run(write_beside(writer, queries)) == 100
        assert queries.run_blocking("SELECT count() FROM signals")[1] == [(100,)]
