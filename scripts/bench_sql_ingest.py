"""Ingest delay while an analyst query runs: small batches published → stored, with and without a
heavy query on /sql, in the same run.

    .venv/bin/python scripts/bench_sql_ingest.py [--rounds 5] [--batch 100]

Starts a worker on fresh topics of the local broker (started if needed) and an embedded database
in a temporary folder. Each round publishes ``--batch`` events and times how long until all of
them are in ClickHouse. First the rounds run on an idle worker (the baseline), then again while
``SELECT sum(cityHash64(number)) FROM numbers(1e11)`` runs through /sql (it takes minutes; the
worker stops it at RADAR_SQL_MAX_SECONDS, set to 120 here). Prints p50 and max of each and
their ratio. Figures from a shared, noisy machine: compare within the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from streams import kafka_local  # noqa: E402
from streams.settings import Settings, load_settings  # noqa: E402

HEAVY = "SELECT sum(cityHash64(number)) FROM numbers(1e11)"


def sql(settings: Settings, query: str, timeout: float = 300) -> list[list[object]]:
    request = urllib.request.Request(f"{settings.web_url}/sql",
                                     data=json.dumps({"sql": query}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return list(json.loads(response.read())["rows"])


def heavy_running(settings: Settings) -> bool:
    rows = sql(settings, "SELECT count() FROM system.processes WHERE query LIKE '%cityHash64%' "
                         "AND query NOT LIKE '%system.processes%'")
    return bool(rows[0][0])


def one_round(settings: Settings, producer: object, start: int, batch: int) -> float:
    topic = settings.topics.for_type("outreach_reply")
    began = time.perf_counter()
    for i in range(start, start + batch):
        event = {"event_id": f"lag-{i}", "type": "outreach_reply", "schema_version": 1,
                 "occurred_at": "2026-03-01T10:00:00Z", "account_id": f"acct-{i % 40}",
                 "stakeholder_id": f"p-{i % 7}", "sequence_id": "s1", "channel": "email",
                 "reply_kind": "reply"}
        producer.send(topic, key=event["account_id"].encode(),  # type: ignore[attr-defined]
                      value=json.dumps(event).encode())
    producer.flush()  # type: ignore[attr-defined]
    while int(str(sql(settings, "SELECT count() FROM events")[0][0])) < start + batch:
        time.sleep(0.02)
    return time.perf_counter() - began


def rounds(settings: Settings, producer: object, first: int, n: int, batch: int) -> list[float]:
    return [one_round(settings, producer, first + r * batch, batch) for r in range(n)]


def describe(name: str, delays: list[float]) -> str:
    return (f"{name}: p50 {statistics.median(delays) * 1000:,.0f} ms, "
            f"max {max(delays) * 1000:,.0f} ms over {len(delays)} batches")


def main() -> None:
    import argparse

    from kafka import KafkaProducer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()

    base = load_settings()
    kafka_local.ensure_running(base)
    tag = uuid.uuid4().hex[:6]
    tmp = Path(tempfile.mkdtemp(prefix="radar-bench-sql-"))
    env = {"RADAR_KAFKA_BOOTSTRAP": base.kafka_bootstrap, "RADAR_KAFKA_PORT": str(base.kafka_port),
           "RADAR_TOPIC_PREFIX": f"benchsql{tag}", "RADAR_APP_ID": f"radar-bench-sql-{tag}",
           "RADAR_CLICKHOUSE_DSN": f"chdb://{tmp / 'clickhouse'}", "RADAR_WEB_PORT": "6098",
           "RADAR_SQL_MAX_SECONDS": "120"}
    settings = load_settings(env)
    kafka_local.create_topics(settings, say=lambda _: None)
    with (tmp / "worker.log").open("wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], cwd=REPO,
                                  env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5)
    try:
        while True:
            if worker.poll() is not None:
                raise SystemExit(f"the worker died; see {tmp / 'worker.log'}")
            try:
                sql(settings, "SELECT 1", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        one_round(settings, producer, 0, args.batch)  # warm-up: topics assigned, tables open
        first = args.batch
        idle = rounds(settings, producer, first, args.rounds, args.batch)
        print(describe("no analyst query     ", idle), flush=True)

        def ask_heavy() -> None:
            # the worker stops at the end of the run, before the query ends
            with contextlib.suppress(OSError):
                sql(settings, HEAVY)

        asking = threading.Thread(target=ask_heavy, daemon=True)
        asking.start()
        while not heavy_running(settings):
            time.sleep(0.05)
        first += args.rounds * args.batch
        busy = rounds(settings, producer, first, args.rounds, args.batch)
        still = heavy_running(settings)
        print(describe("during a heavy query ", busy), flush=True)
        print(f"the heavy query was {'still running' if still else 'over'} after the last batch")
        print(f"ratio (p50 during / p50 idle): {statistics.median(busy) / statistics.median(idle):.2f}")
    finally:
        producer.close()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=90)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
