"""Throughput benchmark: the signal engine, and engine + store, next to raw aiokafka
consume+parse of the same events.

    .venv/bin/python scripts/bench_ingest.py [--events 200000] [--file world.jsonl]
        [--workers N]

Publishes N valid events to two fresh sets of topics on the local broker (started if needed,
and stopped again if this started it) — synthetic ones, or the lines of ``--file`` (e.g. from
``radar simulate``, a realistic mix: mostly ad impressions, in event-time order) — then measures
in the same run:
  1. baseline: one aiokafka consumer reading all N and decoding each with the event schemas;
  2. the engine alone (``radar worker``, a separate process: consume, decode, signal engine,
     dead letters, signals and account states to Kafka) on the first set: from its start until
     the workers' group has committed every input message, which a worker does once the
     message's effects are on Kafka;
  3. ``radar store`` alone, on what that worker left on Kafka (inputs, dead letters, signals,
     account states), until its group has committed them all;
  4. with ``--workers N``, N workers sharing the partitions on a third set, as in 2;
  5. end to end on the second set: ``radar store`` started, then ``radar worker``, until
     everything is processed and stored (``streams.launch.wait_until_stored``: the workers'
     group has committed every input message, then the store's group every message of the
     inputs, dead letters, signals and account states, which it commits after the insert).
     Worker and store share the machine's cores.
Prints events/s for each and their ratio to the baseline. Figures from a shared, noisy machine:
compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from schemas.decode import decode_event  # noqa: E402
from streams import kafka_local  # noqa: E402
from streams.launch import (  # noqa: E402
    LaunchError,
    end_offsets,
    launch,
    metrics_url,
    stop,
    stored_topics,
    wait_until_committed,
)
from streams.query import run_query  # noqa: E402
from streams.settings import Settings, load_settings  # noqa: E402

KINDS = ("ad_impression", "content_interaction", "outreach_reply", "role_change")
WAIT_TIMEOUT_S = 1800.0
STORE_METRICS = ("radar_insert_duration_seconds_sum", "radar_insert_duration_seconds_count",
                 "radar_insert_batch_rows_sum", "radar_rows_written_total")


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


def world_lines(file: Path | None, events: int) -> list[bytes]:
    """The non-blank lines of ``file``, else ``events`` synthetic events."""
    lines = file.read_bytes().splitlines() if file else synthetic(events)
    return [line for line in lines if line.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Install:
    """One fresh set of topics, consumer groups, embedded database, local folder and web ports
    on the broker; the processes run with the caller's environment plus these settings."""

    def __init__(self, base: Settings, folder: Path) -> None:
        tag = uuid.uuid4().hex[:6]
        self.folder = folder
        folder.mkdir(parents=True)
        self.env = {
            "RADAR_KAFKA_BOOTSTRAP": base.kafka_bootstrap,
            "RADAR_KAFKA_PORT": str(base.kafka_port),
            "RADAR_TOPIC_PREFIX": f"bench{tag}",
            "RADAR_APP_ID": f"radar-bench-{tag}",
            "RADAR_CLICKHOUSE_DSN": f"chdb://{folder / 'clickhouse'}",
            "RADAR_LOCAL_DIR": str(folder / "local"),  # the worker's state store
            "RADAR_WEB_PORT": str(free_port()),
            "RADAR_STORE_PORT": str(free_port()),
            "RADAR_SIGNALS": "true",
            # everything is published before the worker starts: its sources are caught up for
            # good once read, and the last events wait only this long for them to count as
            # idle (30 s by default, which would be measured as if it were work)
            "RADAR_IDLE_SOURCE_SECONDS": os.environ.get("RADAR_IDLE_SOURCE_SECONDS", "1"),
        }
        self.process_env = {**os.environ, **self.env}  # other RADAR_* of the caller apply
        self.settings = load_settings(self.process_env)
        kafka_local.create_topics(self.settings, say=lambda _: None)

    def launch(self, command: str, name: str | None = None,
               **overrides: str) -> subprocess.Popen[bytes]:
        """``radar <command>``, logging to ``<name>.log``; ``overrides``: RADAR_* settings of
        this process only (a second worker's web port and state folder)."""
        log = self.folder / f"{name or command}.log"
        env = {**self.process_env, **overrides}
        try:
            return launch(command, load_settings(env), log, env, cwd=REPO)
        except LaunchError as exc:
            raise SystemExit(str(exc)) from exc

    def on_kafka(self, topic: str) -> int:
        return sum(end_offsets(self.settings.kafka_bootstrap, [topic]).values())


def watching(procs: dict[str, tuple[subprocess.Popen[bytes], Path]]) -> Callable[[int, int], None]:
    """A progress callback that stops the wait as soon as one of ``procs`` has died."""
    def check(_done: int, _total: int) -> None:
        for name, (proc, log) in procs.items():
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                raise SystemExit(f"radar {name} exited with code {proc.returncode}; log "
                                 f"tail:\n{tail}")
    return check


def publish(installs: list[Install], lines: list[bytes]) -> float:
    """Every line to each install's topics; returns the seconds of the first."""
    from kafka import KafkaProducer

    first = installs[0].settings
    producer = KafkaProducer(bootstrap_servers=first.kafka_bootstrap, acks="all",
                             linger_ms=20, batch_size=1024 * 1024)
    seconds = 0.0
    try:
        for install in installs:
            topics = install.settings.topics
            started = time.perf_counter()
            for line in lines:
                e = json.loads(line)
                producer.send(topics.for_type(str(e["type"])),
                              key=str(e["account_id"]).encode(), value=line)
            producer.flush()
            seconds = seconds or time.perf_counter() - started
    finally:
        producer.close()
    return seconds


async def raw_consume_parse(settings: Settings, n: int) -> float:
    from aiokafka import AIOKafkaConsumer

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


def engine_alone(install: Install, workers: int = 1) -> tuple[float, float]:
    """``workers`` workers sharing the partitions (one consumer group), from the first one's
    start until the group committed every input message; returns (total, start-up) seconds,
    start-up lasting until the last worker answers."""
    settings = install.settings
    started = time.perf_counter()
    procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    try:
        for i in range(1, workers + 1):
            name = "worker" if i == 1 else f"worker-{i}"
            extra = {} if i == 1 else {"RADAR_WEB_PORT": str(free_port()),
                                       "RADAR_LOCAL_DIR": str(install.folder / f"local-{i}")}
            procs[name] = (install.launch("worker", name, **extra),
                           install.folder / f"{name}.log")
        ready = time.perf_counter()
        wait_until_committed(settings, settings.app_id, settings.topics.inputs,
                             timeout=WAIT_TIMEOUT_S, on_progress=watching(procs))
        done = time.perf_counter()
    finally:
        for proc, _log in procs.values():
            stop(proc)
    topics = settings.topics
    print(f"   on Kafka: {install.on_kafka(topics.signals):,} signal, "
          f"{install.on_kafka(topics.account_state):,} account-state and "
          f"{install.on_kafka(topics.dead_letters):,} dead-letter message(s)")
    return done - started, ready - started


def store_alone(install: Install, n: int) -> tuple[float, float, int]:
    """``radar store`` alone, after the worker is done: from its start until its group has
    committed every message of the inputs, dead letters, signals and account states; returns
    (total, start-up) seconds and the number of messages it read."""
    settings = install.settings
    topics = stored_topics(settings)
    messages = sum(end_offsets(settings.kafka_bootstrap, topics).values())
    started = time.perf_counter()
    store = install.launch("store")
    try:
        ready = time.perf_counter()
        wait_until_committed(settings, settings.store_group, topics, timeout=WAIT_TIMEOUT_S,
                             on_progress=watching({"store": (store,
                                                             install.folder / "store.log")}))
        done = time.perf_counter()
        stored = run_query(settings, "SELECT count() FROM events")[1][0][0]
        if stored != n:
            raise SystemExit(f"expected {n} rows in events, found {stored}")
    finally:
        stop(store)
    return done - started, ready - started, messages


def worker_and_store(install: Install, n: int) -> tuple[float, float, float]:
    """The store, then the worker, until everything is processed and stored; returns (total,
    start-up, the workers' group done) seconds."""
    settings = install.settings
    started = time.perf_counter()
    procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    try:
        for command in ("store", "worker"):
            procs[command] = (install.launch(command), install.folder / f"{command}.log")
        ready = time.perf_counter()
        check = watching(procs)
        # streams.launch.wait_until_stored, in its two steps: the processes watched in both,
        # and the moment the workers are done seen
        wait_until_committed(settings, settings.app_id, settings.topics.inputs,
                             timeout=WAIT_TIMEOUT_S, on_progress=check)
        engine_done = time.perf_counter()
        wait_until_committed(settings, settings.store_group, stored_topics(settings),
                             timeout=WAIT_TIMEOUT_S, on_progress=check)
        done = time.perf_counter()
        stored = run_query(settings, "SELECT count() FROM events")[1][0][0]
        signals = run_query(settings, "SELECT count() FROM signals")[1][0][0]
        print(f"   {stored:,} events and {signals:,} signals stored")
        with urllib.request.urlopen(metrics_url(settings, "store"), timeout=5) as r:
            metrics = r.read().decode()
        for line in metrics.splitlines():
            if line.startswith(STORE_METRICS):
                print("  ", line)
        if stored != n:
            raise SystemExit(f"expected {n} rows in events, found {stored}")
        return done - started, ready - started, engine_done - started
    finally:
        for command in ("worker", "store"):  # the worker first: the store stores what it sent
            if command in procs:
                stop(procs[command][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000,
                        help="synthetic events to publish (ignored with --file)")
    parser.add_argument("--file", type=Path, default=None,
                        help="publish this JSONL file's lines instead (all must be valid)")
    parser.add_argument("--workers", type=int, default=1,
                        help="also measure this many workers sharing the partitions (one "
                             "consumer group, each its own process), on a third set of topics")
    args = parser.parse_args()
    lines = world_lines(args.file, args.events)
    n = len(lines)

    base = load_settings()
    started_kafka = kafka_local.ensure_running(base)
    tmp = Path(tempfile.mkdtemp(prefix="radar-bench-"))
    try:
        alone, both = Install(base, tmp / "engine"), Install(base, tmp / "end-to-end")
        several = Install(base, tmp / "workers") if args.workers > 1 else None
        installs = [alone, both] + ([several] if several else [])
        print(f"publishing {n:,} events (to {len(installs)} sets of topics) ...", flush=True)
        pub = publish(installs, lines)
        print(f"  published in {pub:.1f}s ({n / pub:,.0f} events/s, kafka-python producer)")

        print("baseline: raw aiokafka consume + schema decode ...", flush=True)
        raw = asyncio.run(raw_consume_parse(alone.settings, n))
        print(f"  {n / raw:,.0f} events/s ({raw:.1f}s)")

        print("radar worker alone: consume, decode, signal engine, state, signals to Kafka, "
              "commit ...", flush=True)
        total, startup = engine_alone(alone)
        engine_steady = total - startup
        print(f"  {n / total:,.0f} events/s end to end ({total:.1f}s incl. {startup:.1f}s "
              f"start-up); {n / engine_steady:,.0f} events/s after start-up")

        print("radar store alone, on what that worker left on Kafka: until everything is in "
              "ClickHouse ...", flush=True)
        total_s, startup_s, read = store_alone(alone, n)
        steady_s = total_s - startup_s
        print(f"  {n / steady_s:,.0f} events/s after start-up ({read:,} messages: inputs, "
              f"signals, account states; {read / steady_s:,.0f} messages/s; {total_s:.1f}s incl. "
              f"{startup_s:.1f}s start-up)")

        if several is not None:
            print(f"{args.workers} radar workers sharing the partitions ...", flush=True)
            total_n, startup_n = engine_alone(several, args.workers)
            steady_n = total_n - startup_n
            print(f"  {n / total_n:,.0f} events/s end to end ({total_n:.1f}s incl. "
                  f"{startup_n:.1f}s start-up); {n / steady_n:,.0f} events/s after start-up: "
                  f"{engine_steady / steady_n:.2f}x one worker")

        print("radar store + radar worker: until everything is in ClickHouse ...", flush=True)
        total2, startup2, engine_done = worker_and_store(both, n)
        steady2 = total2 - startup2
        print(f"  {n / total2:,.0f} events/s end to end ({total2:.1f}s incl. {startup2:.1f}s "
              f"start-up of both); {n / steady2:,.0f} events/s after start-up; the workers' "
              f"group was done after {engine_done:.1f}s, the store {total2 - engine_done:.1f}s "
              "later")

        print(f"\nratio to the baseline (after start-up): engine alone "
              f"{(n / engine_steady) / (n / raw):.3f}, worker + store "
              f"{(n / steady2) / (n / raw):.3f}; end to end {(n / total) / (n / raw):.3f} "
              f"and {(n / total2) / (n / raw):.3f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if started_kafka:
            kafka_local.down(base, say=lambda _: None)


if __name__ == "__main__":
    main()
