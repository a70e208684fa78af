"""The writer's already-stored check on a large events table: bounded by the batch's event
times (as the writer runs it) next to the same check over the whole table, in the same run.

    .venv/bin/python scripts/bench_stored_check.py [--rows 20000000] [--batch 5000]

Fills a fresh embedded database with ``--rows`` events in event-time order, one insert per
200,000 (as a replay writes them; about two events per second of event time, random-looking
ids spread over ``--accounts`` accounts), then checks a
batch of ``--batch`` consecutive events, half of them stored, as a redelivery after a restart
would. Prints the median time of each form and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from processors.ingest import AcceptedEvent, RawMessage  # noqa: E402
from schemas.events import AdImpression  # noqa: E402
from sinks.clickhouse import init_schema, occurred_within, open_client, sql_strings  # noqa: E402

START = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
CHUNK = 200_000
# ClickHouse remembers which granules matched a condition: the same check again would read
# only those. A worker's checks name new ids each time, so each check here starts cold
NO_CONDITION_CACHE = {"use_query_condition_cache": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        client = open_client(f"chdb://{tmp}/db")
        init_schema(client)
        started = time.perf_counter()
        for first in range(0, args.rows, CHUNK):
            client.command(
                "INSERT INTO events (event_id, type, schema_version, occurred_at, account_id, "
                "source_topic, ingested_at) SELECT concat('evt-', hex(cityHash64(number))), "
                f"'ad_impression', 1, toDateTime64({START}, 3, 'UTC') + intDiv(number, 2), "
                f"concat('acct-', toString(number % {args.accounts})), 'radar.ad-impressions', "
                "now64(3) "
                f"FROM numbers({first}, {min(CHUNK, args.rows - first)})")
        print(f"  filled {args.rows:,} rows in {time.perf_counter() - started:.0f}s")
        first = args.rows - args.batch // 2  # half stored, half new
        ids = [r[0] for r in client.query("SELECT concat('evt-', hex(cityHash64(number))) "
                                          f"FROM numbers({first}, {args.batch})").result_rows]
        batch = [AcceptedEvent(
            AdImpression(event_id=ids[n - first], type="ad_impression", schema_version=1,
                         occurred_at=datetime.fromtimestamp(START + n // 2, UTC),
                         account_id=f"acct-{n % args.accounts}", stakeholder_id="p", campaign_id="c",
                         creative_id="cr", channel="linkedin"),
            RawMessage("radar.ad-impressions", 0, n, None, b"")) for n in range(
                first, first + args.batch)]
        check = ("SELECT event_id FROM events WHERE event_id IN "
                 f"({sql_strings([a.event.event_id for a in batch])})")
        forms = {"whole table": check, "within the batch's times": check + occurred_within(batch)}
        times: dict[str, list[float]] = {name: [] for name in forms}
        for _ in range(args.repeat):  # alternating, so both see the same machine
            for name, sql in forms.items():
                t = time.perf_counter()
                found = client.query(sql, settings={"max_query_size": len(sql) + 4096,
                                                    **NO_CONDITION_CACHE})
                times[name].append(time.perf_counter() - t)
                assert len(found.result_rows) == args.batch // 2, name
        client.close()
    medians = {name: statistics.median(ts) * 1000 for name, ts in times.items()}
    for name, ms in medians.items():
        print(f"  {name:26s} {ms:8.1f} ms per check of {args.batch:,} ids (median of "
              f"{args.repeat})")
    whole, bounded = medians["whole table"], medians["within the batch's times"]
    print(f"ratio bounded/whole: {bounded / whole:.2f}")


if __name__ == "__main__":
    main()
