"""Throughput benchmark: the whole worker next to raw aiokafka consume+parse of the same events.

    .venv/bin/python scripts/bench_ingest.py [--events 200000] [--file world.jsonl] [--ingest-only]

Publishes N valid events to fresh topics on the local broker (started if needed) — synthetic
ones, or the lines of ``--file`` (e.g. from ``radar simulate``, a realistic mix: mostly ad
impressions, in event-time order) — then measures in the same run:
  1. baseline: one aiokafka consumer reading all N and decoding each with the event schemas;
  2. the worker (`radar worker`, a separate process, signal engine on unless --ingest-only):
     from its start until the consumer group has committed every offset, which the worker does
     only after the rows are in ClickHouse and each event's signals and state are stored.
Prints events/s for both and their ratio. Figures from a shared, noisy machine: compare the
ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from schemas.decode import decode_event  # noqa: E402
from streams import kafka_local  # noqa: E402
from streams.demo import wait_until_committed  # noqa: E402
from streams.query import run_query  # noqa: E402
from streams.settings import load_settings  # noqa: E402

KINDS = ("ad_impression", "content_interaction", "outreach_reply", "role_change")


def make_event(i: int) -> dict[str, object]:
    kind = KINDS[i % 4] if i % 50 else "account_profile"
    e: dict[str, object] = {
        "event_id": f"bench-{i}", "type": kind, "schema_version": 1,
        "occurred_at": f"2026-0{1 + i % 9}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
        "account_id": f"acct-{i % 2000}",
    }
    if kind == "ad_impression":
        e.update(stakeholder_id=f"p-{i % 9}", campaign_id="c1", creative_id="cr2",
                 channel="linkedin", clicked=i % 13 == 0, cost_micros=1200)
    elif kind == "content_interaction":
        e.update(stakeholder_id=f"p-{i % 9}", content_id="post-3", action="like", public=True)
    elif kind == "outreach_reply":
        e.update(stakeholder_id=f"p-{i % 9}", sequence_id="s1", channel="email",
                 reply_kind="reply")
    elif kind == "role_change":
        e.update(stakeholder_id=f"p-{i % 9}", change="joined", title="VP Ops",
                 function="operations", seniority="vp")
    else:
        e.update(name="Acme", sector="industrial", tier=1, renewal_date="2026-09-01",
                 arr=250000.0, champion_ids=["p-1"])
    return e


def synthetic(n: int) -> list[bytes]:
    return [json.dumps(make_event(i)).encode() for i in range(n)]


def publish(env: dict[str, str], lines: list[bytes]) -> float:
    from kafka import KafkaProducer

    settings = load_settings(env)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                             linger_ms=20, batch_size=1024 * 1024)
    started = time.perf_counter()
    for line in lines:
        e = json.loads(line)
        producer.send(settings.topics.for_type(str(e["type"])),
                      key=str(e["account_id"]).encode(), value=line)
    producer.flush()
    producer.close()
    return time.perf_counter() - started


async def raw_consume_parse(env: dict[str, str], n: int) -> float:
    from aiokafka import AIOKafkaConsumer

    settings = load_settings(env)
    consumer = AIOKafkaConsumer(
        *settings.topics.inputs, bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen = 0
    started = time.perf_counter()
    try:
        while seen < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for messages in batches.values():
                for m in messages:
                    decode_event(m.value, settings.max_message_bytes)
                seen += len(messages)
        await consumer.commit()
    finally:
        await consumer.stop()
    return time.perf_counter() - started


def run_worker(env: dict[str, str], n: int, log: Path) -> tuple[float, float]:
    settings = load_settings(env)
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], cwd=REPO,
                                env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"worker died; see {log}")
            try:
                with urllib.request.urlopen(f"{settings.web_url}/metrics", timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        ready = time.perf_counter()
        wait_until_committed(settings, settings.topics.inputs, timeout=1800)
        stored = run_query(settings, "SELECT count() FROM events")[1][0][0]
        signals = run_query(settings, "SELECT count() FROM signals")[1][0][0]
        print(f"   {stored:,} events and {signals:,} signals stored")
        done = time.perf_counter()
        with urllib.request.urlopen(f"{settings.web_url}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        for line in metrics.splitlines():
            if line.startswith(("radar_insert_duration_seconds_sum",
                                "radar_insert_duration_seconds_count",
                                "radar_insert_batch_rows_sum")):
                print("  ", line)
        if stored != n:
            raise SystemExit(f"expected {n} rows in events, found {stored}")
        return done - started, ready - started
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000,
                        help="synthetic events to publish (ignored with --file)")
    parser.add_argument("--file", type=Path, default=None,
                        help="publish this JSONL file's lines instead (all must be valid)")
    parser.add_argument("--ingest-only", action="store_true",
                        help="run the worker without the signal engine (RADAR_SIGNALS=false)")
    args = parser.parse_args()
    lines = args.file.read_bytes().splitlines() if args.file else synthetic(args.events)
    n = len(lines)

    base = load_settings()
    kafka_local.ensure_running(base)
    tag = uuid.uuid4().hex[:6]
    tmp = Path(tempfile.mkdtemp(prefix="radar-bench-"))
    env = {
        "RADAR_KAFKA_BOOTSTRAP": base.kafka_bootstrap,
        "RADAR_KAFKA_PORT": str(base.kafka_port),
        "RADAR_TOPIC_PREFIX": f"bench{tag}",
        "RADAR_APP_ID": f"radar-bench-{tag}",
        "RADAR_CLICKHOUSE_DSN": f"chdb://{tmp / 'clickhouse'}",
        "RADAR_WEB_PORT": "6099",
        "RADAR_SIGNALS": "false" if args.ingest_only else "true",
        # everything is published before the worker starts: its sources are caught up for good
        # once read, and the last events wait only this long for them to count as idle (30 s
        # by default, which would be measured as if it were work)
        "RADAR_IDLE_SOURCE_SECONDS": os.environ.get("RADAR_IDLE_SOURCE_SECONDS", "1"),
    }
    kafka_local.create_topics(load_settings(env), say=lambda _: None)
    try:
        print(f"publishing {n:,} events ...", flush=True)
        pub = publish(env, lines)
        print(f"  published in {pub:.1f}s ({n / pub:,.0f} events/s, kafka-python producer)")
        print("baseline: raw aiokafka consume + schema decode ...", flush=True)
        raw = asyncio.run(raw_consume_parse(env, n))
        print(f"  {n / raw:,.0f} events/s ({raw:.1f}s)")
        what = "store" if args.ingest_only else "signal engine, store"
        print(f"radar worker: consume, decode, {what} in ClickHouse, commit ...", flush=True)
        total, startup = run_worker(env, n, tmp / "worker.log")
        steady = total - startup
        print(f"  {n / total:,.0f} events/s end to end ({total:.1f}s incl. {startup:.1f}s "
              f"start-up); {n / steady:,.0f} events/s after start-up")
        print(f"\nratio worker/baseline: {(n / steady) / (n / raw):.2f} "
              f"(after start-up), {(n / total) / (n / raw):.2f} (end to end)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
