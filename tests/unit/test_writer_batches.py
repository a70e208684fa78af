"""The ClickHouse writer on a real embedded database: batches of any size, stored once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from schemas.signals import Signal
from sinks.clickhouse import PREFILTER_SLICE, ClickHouseWriter


def signals(n: int) -> list[Signal]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [Signal(signal_id=f"{i:032x}", account_id=f"acct-{i % 50}", type="pricing_page_visit",
                   category="expansion", severity="high", occurred_at=at, detected_at=at,
                   rule_version="v1", evidence={"event_ids": [f"e{i}"]}) for i in range(n)]


def test_a_batch_larger_than_one_query_can_name_is_stored_once(tmp_path: Path) -> None:
    """The already-stored check runs in slices: one IN list of every id would exceed
    ClickHouse's max_query_size and the insert would be retried for ever."""
    n = PREFILTER_SLICE * 3 + 7
    batch = signals(n)
    writer = ClickHouseWriter(f"chdb://{tmp_path / 'db'}", retry_initial=0.01, retry_max=0.01)
    writer.open_blocking()
    try:
        first = asyncio.run(asyncio.wait_for(writer.write_signals(batch), 60))
        again = asyncio.run(asyncio.wait_for(writer.write_signals(batch), 60))
        _, rows = asyncio.run(writer.query_read_only("SELECT count(), uniqExact(signal_id) "
                                                     "FROM signals"))
    finally:
        writer.close_blocking()
    assert (first.written, first.attempts) == (n, 1)
    assert again.written == 0  # a redelivered batch: every id already stored
    assert rows == [(n, n)]
