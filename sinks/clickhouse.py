"""ClickHouse access: one code path through clickhouse-connect for both modes.

``chdb:///path`` opens embedded ClickHouse in this process; ``http(s)://...`` talks to a
server. Embedded ClickHouse can be opened by one process at a time, so every call goes through
one dedicated thread: chDB is never used concurrently, and the event loop never blocks on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from processors.ingest import AcceptedEvent
from schemas.dead_letter import DeadLetter
from schemas.notify import DeliveryRecord
from schemas.signals import Signal
from sinks.dsn import parse_dsn, redact
from sinks.rows import (
    ACCOUNT_STATE_COLUMNS,
    DEAD_LETTER_COLUMNS,
    DELIVERY_COLUMNS,
    SIGNAL_COLUMNS,
    AccountView,
    account_state_row,
    dead_letter_row,
    delivery_id,
    delivery_row,
    event_json_line,
    ingested_at_text,
    signal_row,
)
from sinks.schema import (
    SCHEMA_VERSION,
    STATEMENTS,
    TTL_COLUMNS,
    retention_statements,
    table_ttl,
    upgrade_statements,
)
from sinks.sink import WriteResult

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
# sends a batch of already-filtered rows with the given settings
Insert = Callable[[Client, list[R], dict[str, Any]], None]

# Inserts are synchronous: the worker commits Kafka offsets right after an insert returns, so
# the rows must be stored by then. The worker batches by itself (rows or seconds), which is
# what async_insert would do server-side, so it stays off.
INSERT_SETTINGS: dict[str, Any] = {"async_insert": 0}
READ_ONLY_SETTINGS: dict[str, Any] = {"readonly": 1}
# How ClickHouse reads the JSONEachRow lines of event_json_line. Set explicitly: a server's
# defaults differ by version and configuration (embedded chDB already has most of them).
JSON_INSERT_SETTINGS: dict[str, Any] = {
    # occurred_at is RFC 3339 with the producer's offset (+02:00, Z) and any fraction; 'basic'
    # refuses an offset, and refuses the whole batch with it
    "date_time_input_format": "best_effort",
    # a model field without a column (a schema change not yet in sinks/schema.py) is dropped:
    # a refused insert would be retried for ever and stall the pipeline
    "input_format_skip_unknown_fields": 1,
    # arr must round-trip to the same Float64 as the column insert, which sends binary doubles
    "precise_float_parsing": 1,
    # an optional field the model writes as null (an account_profile's owner) into a column
    # that is not Nullable: its default ('')
    "input_format_null_as_default": 1,
}


# ids per already-stored check: each check reads the whole id column, so a batch is one check
# (its query text is up to ~2.6 MB, max_query_size is raised to fit); the slice bounds the
# query of a very large batch
PREFILTER_SLICE = 20_000


def occurred_within(accepted: Iterable[AcceptedEvent]) -> str:
    """The already-stored check's bound for a batch of events: a redelivered event is the same
    event, at the same time, so a stored copy lies within the batch's event times. Months
    (the table's partitions) and parts outside them are not read: the check costs what the
    batch's time span holds, not the whole table. Stored times keep milliseconds (a
    microsecond is cut); the bound is a millisecond wider on each side."""
    times = [a.event.occurred_at.timestamp() for a in accepted]
    if not times:
        return ""
    lo, hi = math.floor(min(times) * 1000) - 1, math.ceil(max(times) * 1000) + 1
    return (f" AND occurred_at BETWEEN fromUnixTimestamp64Milli(toInt64({lo}), 'UTC')"
            f" AND fromUnixTimestamp64Milli(toInt64({hi}), 'UTC')")


def sql_strings(values: Sequence[str]) -> str:
    """``values`` as ClickHouse string literals for an ``IN (...)`` list.

    Ids are almost always plain text: then they are joined as they are, in one pass in C
    (clickhouse-connect's parameter binding escapes character by character, which was most of
    the Python time of an events insert). Otherwise each is escaped: in a quoted literal only
    the quote and the backslash are special; NUL is escaped too.
    """
    joined = "".join(values)
    if "'" in joined or "\\" in joined or "\x00" in joined:
        values = [v.replace("\\", "\\\\").replace("'", "\\'").replace("\x00", "\\0")
                  for v in values]
    return "'" + "','".join(values) + "'"


class DatabaseUnavailable(RuntimeError):
    """The database cannot be opened or reached; the message says what to do."""


def open_client(dsn: str) -> Client:
    """A clickhouse-connect client for ``dsn``, with a clear error when it cannot be opened."""
    if dsn.startswith("chdb://"):
        path = Path(dsn.removeprefix("chdb://"))
        path.mkdir(parents=True, exist_ok=True)
    try:
        if dsn.startswith("chdb://"):
            return clickhouse_connect.get_client(dsn=dsn)
        parts = parse_dsn(dsn)  # credentials from either place in the DSN, passed apart
        return clickhouse_connect.get_client(dsn=parts.address, username=parts.username,
                                             password=parts.password or "")
    except Exception as exc:
        text = str(exc)
        if "Cannot lock file" in text or "already running" in text:
            raise DatabaseUnavailable(
                f"the embedded database at {dsn.removeprefix('chdb://')} is open in another "
                "process (a running `radar worker`?); stop it, or query through it with "
                "`radar sql` while it runs"
            ) from exc
        raise DatabaseUnavailable(f"cannot open ClickHouse at {redact(dsn)}: {text}") from exc


def init_schema(client: Client, events_ttl_days: int | None = None) -> list[str]:
    """Create or upgrade every table and set the retention of ``events`` and ``dead_letters``
    (``events_ttl_days``, None: no TTL); safe to run any number of times. Returns table names."""
    views = [s for s in STATEMENTS if "CREATE OR REPLACE VIEW" in s]
    for statement in STATEMENTS:
        if statement not in views:
            client.command(statement)
    # columns added since a table was made, before the views that read them
    present = {(r[0], r[1]) for r in client.query(
        "SELECT table, name FROM system.columns WHERE database = currentDatabase()").result_rows}
    for statement in upgrade_statements(present):
        log.info("upgrading the schema: %s", statement)
        client.command(statement)
    for statement in views:
        client.command(statement)
    apply_retention(client, events_ttl_days)
    client.command(f"INSERT INTO radar_schema (version) VALUES ({SCHEMA_VERSION})")
    rows = client.query("SELECT name FROM system.tables WHERE database = currentDatabase()")
    return sorted(r[0] for r in rows.result_rows)


def apply_retention(client: Client, days: int | None) -> list[str]:
    """Bring the TTL of ``events`` and ``dead_letters`` to ``days``; returns the ALTERs run
    (none when it already is). A change is logged: it deletes, or stops deleting, rows."""
    tables = ", ".join(f"'{t}'" for t in TTL_COLUMNS)
    rows = client.query("SELECT name, engine_full FROM system.tables "
                        f"WHERE database = currentDatabase() AND name IN ({tables})").result_rows
    statements = retention_statements({name: table_ttl(engine) for name, engine in rows}, days)
    for statement in statements:
        log.warning("retention: %s", statement)
        client.command(statement)
    return statements


def dedup_token(table: str, ids: Sequence[str]) -> str:
    digest = hashlib.sha256(json.dumps(list(ids)).encode()).hexdigest()  # unambiguous framing
    return f"{table}:{len(ids)}:{digest}"


def column_insert(table: str, columns: Sequence[str]) -> Insert[list[Any]]:
    """Python rows, sent column-oriented: clickhouse-connect serialises whole columns, ~4x
    faster than row by row."""
    def insert(client: Client, rows: list[list[Any]], settings: dict[str, Any]) -> None:
        data = list(zip(*rows, strict=True))
        client.insert(table, data, column_names=list(columns), column_oriented=True,
                      settings=settings)

    return insert


def json_insert(table: str) -> Insert[bytes]:
    """JSONEachRow lines, sent as they are: ClickHouse parses them in C++ (chDB releases the
    GIL meanwhile), about twice as fast as the column insert and far less Python time."""
    def insert(client: Client, lines: list[bytes], settings: dict[str, Any]) -> None:
        client.raw_insert(table, None, insert_block=b"\n".join(lines), fmt="JSONEachRow",
                          settings={**settings, **JSON_INSERT_SETTINGS})

    return insert


__all__ = ["ClickHouseWriter", "WriteResult"]


class ClickHouseWriter:
    """Owns the client; writes batches idempotently and answers read-only queries (a
    ``sinks.sink.Sink``)."""

    def __init__(
        self,
        dsn: str,
        *,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        events_ttl_days: int | None = None,
    ) -> None:
        self.dsn = dsn
        self._events_ttl_days = events_ttl_days
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self._client: Client | None = None
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._clock = clock

    # -- thread plumbing -------------------------------------------------------------------
    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _get_client(self) -> Client:
        if self._client is None:
            self._client = open_client(self.dsn)
        return self._client

    def open_blocking(self) -> list[str]:
        """Open the database and create or upgrade the schema; returns the table names."""
        return self._executor.submit(
            lambda: init_schema(self._get_client(), self._events_ttl_days)).result()

    def close_blocking(self) -> None:
        def _close() -> None:
            if self._client is not None:
                self._client.close()
                self._client = None

        self._executor.submit(_close).result()
        self._executor.shutdown(wait=True)

    # -- writes ----------------------------------------------------------------------------
    def _insert_new(
        self, table: str, key: str | None, ids: list[str], rows: list[R], insert: Insert[R],
        within: str = "",
    ) -> int:
        """Insert the rows whose ``key`` is not stored yet (all rows when ``key`` is None).
        ``within``: a condition every stored duplicate of these rows meets, which lets the
        check skip the parts of the table that cannot hold one."""
        client = self._get_client()
        already: set[str] = set()
        if key is not None:
            # in slices (see PREFILTER_SLICE); ClickHouse parses at most max_query_size bytes
            for i in range(0, len(ids), PREFILTER_SLICE):
                listed = sql_strings(ids[i:i + PREFILTER_SLICE])
                sql = f"SELECT {key} FROM {table} WHERE {key} IN ({listed}){within}"
                stored = client.query(sql, settings={"max_query_size": len(sql.encode()) + 4096})
                already.update(r[0] for r in stored.result_rows)
        fresh = [(i, r) for i, r in zip(ids, rows, strict=True) if i not in already]
        if not fresh:
            return 0
        settings = dict(INSERT_SETTINGS)
        settings["insert_deduplication_token"] = dedup_token(table, [i for i, _ in fresh])
        insert(client, [r for _, r in fresh], settings)
        return len(fresh)

    async def _write(
        self, table: str, key: str | None, ids: list[str], rows: list[R], insert: Insert[R],
        within: str = "",
    ) -> WriteResult:
        """Insert until it succeeds: a stalled worker loses nothing, a skipped batch would."""
        started = time.perf_counter()
        delay = self._retry_initial
        attempt = 0
        while True:
            attempt += 1
            try:
                written = await self._run(
                    lambda: self._insert_new(table, key, ids, rows, insert, within))
            except DatabaseUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure is retried, never dropped
                log.warning("insert into %s failed (attempt %d), retrying in %.1fs: %s",
                            table, attempt, delay, exc)
                if not self.dsn.startswith("chdb://"):
                    self._client = None  # reconnect to a server; the embedded engine stays open
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            return WriteResult(table, len(rows), written, time.perf_counter() - started, attempt)

    async def write_events(self, accepted: Sequence[AcceptedEvent]) -> WriteResult:
        now = ingested_at_text(self._clock())
        # the same event twice in one batch (a producer retry) is stored once
        unique = {a.event.event_id: a for a in accepted}
        lines = [event_json_line(a, now) for a in unique.values()]
        return await self._write("events", "event_id", list(unique), lines,
                                 json_insert("events"), occurred_within(unique.values()))

    async def write_dead_letters(
        self, letters: Sequence[tuple[DeadLetter, datetime]]
    ) -> WriteResult:
        now = self._clock()
        unique = {dl.dead_letter_id: (dl, failed_at) for dl, failed_at in letters}
        rows = [dead_letter_row(dl, failed_at, now) for dl, failed_at in unique.values()]
        return await self._write("dead_letters", "dead_letter_id", list(unique), rows,
                                 column_insert("dead_letters", DEAD_LETTER_COLUMNS))

    async def write_signals(self, signals: Sequence[Signal]) -> WriteResult:
        now = self._clock()
        # a signal and its withdrawal are two rows: the check for rows stored already is by id
        # and status (the table keeps the latest status, see sinks.schema)
        unique = {f"{s.signal_id}:{s.status}": s for s in signals}
        rows = [signal_row(s, now) for s in unique.values()]
        return await self._write("signals", "concat(signal_id, ':', status)", list(unique),
                                 rows, column_insert("signals", SIGNAL_COLUMNS))

    async def write_deliveries(self, records: Sequence[DeliveryRecord]) -> WriteResult:
        """radar notify's records, one row per key (the latest ``recorded_at`` wins, see
        sinks.schema); a record read again is found stored, by key and time, and skipped."""
        now = self._clock()
        unique = {delivery_id(r): r for r in records}
        rows = [delivery_row(r, now) for r in unique.values()]
        return await self._write(
            "alert_deliveries", "concat(key, '@', toString(toUnixTimestamp64Milli(recorded_at)))",
            list(unique), rows, column_insert("alert_deliveries", DELIVERY_COLUMNS))

    async def write_account_states(self, views: Sequence[AccountView],
                                   version: int | None = None) -> WriteResult:
        """Latest state per account: an upsert (ReplacingMergeTree on ``version``, the time
        of writing unless given: a caller with several writes in flight orders them itself)."""
        version = time.time_ns() if version is None else version
        latest = {v.state.account_id: v for v in views}
        rows = [account_state_row(v, version) for v in latest.values()]
        return await self._write("account_state", None, list(latest), rows,
                                 column_insert("account_state", ACCOUNT_STATE_COLUMNS))

    async def write_account_state_lines(self, lines: Sequence[bytes]) -> WriteResult:
        """Rows of ``account_state`` as the worker put them on the account-state topic (JSON
        objects, see ``sinks.rows.account_state_json``); the highest version per account wins,
        so a line stored twice changes nothing."""
        # the insert's deduplication token is made of the lines (each carries its version)
        return await self._write("account_state", None, [x.decode() for x in lines], list(lines),
                                 json_insert("account_state"))

    async def on_client(self, fn: Callable[[Client], T]) -> T:
        """Run ``fn`` with the writer's client, on its thread: after every write submitted
        before it (e.g. an erasure, once the writes it must follow are in)."""
        return await self._run(lambda: fn(self._get_client()))

    # -- reads -----------------------------------------------------------------------------
    async def query_read_only(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        def _query() -> tuple[list[str], list[tuple[Any, ...]]]:
            result = self._get_client().query(sql, settings=READ_ONLY_SETTINGS)
            return list(result.column_names), [tuple(r) for r in result.result_rows]

        return await self._run(_query)
