"""``radar sql``: answer a read-only query, through the running store when it holds the database.

Embedded ClickHouse can be open in one process only. When ``radar store`` runs, it holds it, so
the query goes to the store's ``/sql`` endpoint; otherwise (or with a server DSN) it is run here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sinks.analyst import AnalystQueries, QueryFailed
from sinks.readonly import check_read_only
from streams.settings import Settings
from streams.store_client import (
    StoreRefused,
    StoreUnreachable,
    post_to_store,
    query_limits,
    read_store_state,
)

Result = tuple[list[str], list[Sequence[Any]]]


class QueryError(RuntimeError):
    pass


# beyond the query's own time bound: judging it, the answer's way back
ANSWER_MARGIN_S = 30.0


def _through_store(url: str, sql: str, timeout: float, token: str | None) -> Result:
    try:
        body = post_to_store(url, "/sql", {"sql": sql}, token, timeout)
    except (StoreRefused, StoreUnreachable) as exc:
        raise QueryError(str(exc)) from exc
    return list(body["columns"]), [list(r) for r in body["rows"]]


def run_query(settings: Settings, sql: str) -> Result:
    """Answer an analyst query (judged and bounded as ``sinks.analyst`` says), through the
    running store when it holds the embedded database, else here."""
    statement = check_read_only(sql)  # the clear message before anything is opened
    if settings.embedded:
        state = read_store_state(settings)
        if state is not None:
            token = settings.sql_token.get_secret_value() if settings.sql_token else None
            return _through_store(str(state["url"]), statement,
                                   settings.sql_max_seconds + ANSWER_MARGIN_S, token)
    queries = AnalystQueries(settings.dsn, query_limits(settings))
    try:
        columns, rows = queries.run_interruptible(statement)
    except QueryFailed as exc:
        raise QueryError(str(exc)) from exc
    finally:
        queries.close()
    return columns, [list(r) for r in rows]


def render_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return "NULL" if v is None else str(v)

    text = [[cell(v) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in text:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    out = [line(list(columns)), line(["-" * w for w in widths])]
    out += [line(row) for row in text]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)
