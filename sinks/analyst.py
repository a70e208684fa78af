"""Analyst queries (``radar sql``, ``/sql``): judged, bounded, run beside ingestion, cancellable.

Each query is judged first (``sinks.readonly``: our text check, then ClickHouse's own parse),
then run with ``readonly = 1`` and bounds in time, memory, result rows and threads. Queries run
on their own threads and ClickHouse handles, never on the writer's: embedded ClickHouse runs
several handles of one engine at once and releases the GIL while it works, so a heavy query
does not hold ingestion up. A query whose asker is gone (an HTTP client that hung up, Ctrl-C)
is killed by its marker (``log_comment``) instead of running to its time limit.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.clickhouse import open_client
from sinks.readonly import check_read_only, judge_ast

Result = tuple[list[str], list[tuple[Any, ...]]]
# queries answered at once; a third waits for a thread
QUERY_THREADS = 2
# how long a kill looks for its query (it may not be registered yet when the asker leaves)
KILL_WAIT_S = 5.0


class QueryFailed(RuntimeError):
    """ClickHouse refused or stopped the query; the message says why (and which bound)."""


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_seconds: float
    max_rows: int
    max_memory_bytes: int
    # one core of two is left to ingestion while a heavy query runs
    max_threads: int = max(1, (os.cpu_count() or 2) // 2)

    def settings(self, marker: str, server: bool) -> dict[str, Any]:
        """ClickHouse settings of one analyst query. ``readonly = 1`` also refuses any
        ``SETTINGS`` clause of the query itself, so none of these bounds can be lifted."""
        settings: dict[str, Any] = {
            "readonly": 1,
            "max_execution_time": self.max_seconds,
            "timeout_overflow_mode": "throw",
            "max_result_rows": self.max_rows,
            "max_result_bytes": self.max_memory_bytes,
            "result_overflow_mode": "throw",
            "max_memory_usage": self.max_memory_bytes,
            "max_threads": self.max_threads,
            "log_comment": marker,
        }
        if server:
            settings["cancel_http_readonly_queries_on_client_close"] = 1
        return settings


def explain(error: Exception, limits: QueryLimits) -> str:
    """ClickHouse's message, with the bound and the variable named when a bound stopped it."""
    text = str(error).strip()
    if "TIMEOUT_EXCEEDED" in text or "Timeout exceeded" in text:
        return (f"the query ran longer than RADAR_SQL_MAX_SECONDS ({limits.max_seconds:g} s) and "
                "was stopped; narrow it (WHERE occurred_at >= ...) or aggregate more")
    if "TOO_MANY_ROWS_OR_BYTES" in text or "Limit for result exceeded" in text:
        return (f"the result is larger than RADAR_SQL_MAX_ROWS ({limits.max_rows:,} rows) or "
                f"RADAR_SQL_MAX_MEMORY_BYTES ({limits.max_memory_bytes:,} bytes); add a LIMIT or "
                "aggregate")
    if "MEMORY_LIMIT_EXCEEDED" in text:
        return (f"the query needed more than RADAR_SQL_MAX_MEMORY_BYTES "
                f"({limits.max_memory_bytes:,} bytes) and was stopped")
    if "QUERY_WAS_CANCELLED" in text:
        return "the query was cancelled"
    return text


class AnalystQueries:
    """Runs analyst queries for one database; thread-safe, usable from asyncio or plain code."""

    def __init__(self, dsn: str, limits: QueryLimits) -> None:
        self.dsn = dsn
        self.limits = limits
        self._server = not dsn.startswith("chdb://")
        self._pool = ThreadPoolExecutor(max_workers=QUERY_THREADS, thread_name_prefix="analyst")
        # kills run apart from the queries: every query thread may be busy
        self._control = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analyst-kill")
        self._local = threading.local()
        self._catalogue: tuple[frozenset[str], frozenset[str]] | None = None
        self._lock = threading.Lock()
        self._clients: list[Client] = []

    # -- clients ---------------------------------------------------------------------------
    def _client(self) -> Client:
        """One ClickHouse handle per thread (a handle runs one query at a time)."""
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = open_client(self.dsn)
            with self._lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._control.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()

    # -- judging ---------------------------------------------------------------------------
    def _table_functions(self, client: Client) -> tuple[frozenset[str], frozenset[str]]:
        """This ClickHouse's table functions, and those that are also ordinary functions."""
        if self._catalogue is None:
            names = client.query("SELECT name FROM system.table_functions",
                                 settings={"readonly": 1}).result_rows
            both = client.query(
                "SELECT name FROM system.functions WHERE lower(name) IN "
                "(SELECT lower(name) FROM system.table_functions)",
                settings={"readonly": 1}).result_rows
            self._catalogue = (frozenset(r[0] for r in names), frozenset(r[0] for r in both))
        return self._catalogue

    def judge(self, client: Client, sql: str) -> str:
        """The statement to run, or :class:`NotReadOnly` saying why it may not run."""
        statement = check_read_only(sql)
        try:
            parsed = client.query(f"EXPLAIN AST {statement}", settings={"readonly": 1})
        except Exception as exc:
            raise QueryFailed(explain(exc, self.limits)) from exc
        lines = [str(row[0]) for row in parsed.result_rows]
        judge_ast(lines, *self._table_functions(client))
        return statement

    # -- running ---------------------------------------------------------------------------
    def run_blocking(self, sql: str, marker: str | None = None) -> Result:
        """Judge and run ``sql`` on this thread."""
        client = self._client()
        statement = self.judge(client, sql)
        settings = self.limits.settings(marker or new_marker(), self._server)
        try:
            result = client.query(statement, settings=settings)
        except Exception as exc:
            raise QueryFailed(explain(exc, self.limits)) from exc
        return list(result.column_names), [tuple(r) for r in result.result_rows]

    def _submit(self, sql: str, marker: str) -> Future[Result]:
        return self._pool.submit(self.run_blocking, sql, marker)

    async def run(self, sql: str) -> Result:
        """Judge and run ``sql`` on a query thread; if the caller is cancelled (its client
        went away), the query is killed."""
        marker = new_marker()
        query = self._submit(sql, marker)
        try:
            return await asyncio.shield(asyncio.wrap_future(query))
        except asyncio.CancelledError:
            await asyncio.wrap_future(self._control.submit(self.kill_blocking, marker, query))
            raise

    def run_interruptible(self, sql: str) -> Result:
        """``run_blocking`` for a command line: Ctrl-C kills the query before it returns."""
        marker = new_marker()
        future = self._submit(sql, marker)
        try:
            return future.result()
        except KeyboardInterrupt:
            self.kill_blocking(marker, future)
            raise

    def kill_blocking(self, marker: str, query: Future[Any]) -> None:
        """Kill the query carrying ``marker``; it may still be being judged, so look again
        until it is registered or done."""
        client = self._client()  # the control thread's own handle
        deadline = time.monotonic() + KILL_WAIT_S
        while not query.done() and time.monotonic() < deadline:
            killed = client.query(
                "KILL QUERY WHERE Settings['log_comment'] = {marker:String} ASYNC",
                parameters={"marker": marker})
            if killed.result_rows:
                return
            time.sleep(0.05)


def new_marker() -> str:
    return f"radar-sql:{uuid.uuid4().hex}"
