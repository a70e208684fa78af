"""Peer benchmark: the worker's engine path under Quix Streams next to ``radar worker``, same run.

    .venv/bin/python scripts/bench_peer.py --file world.jsonl [--port 28192] \
        [--poll-timeouts default,0.1]

Creates once a virtualenv for Quix Streams (``.local/quix-venv``: Quix pins pydantic below the
project's, so it cannot share ``.venv``), starts its own local broker on ``--port`` (stopped
again at the end if this started it), publishes the events once (``--file``, e.g. from ``radar
simulate``, or ``--events N`` synthetic ones as ``bench_ingest.py``) and measures on those same
input topics, each with a fresh consumer group:
  1. baseline: raw aiokafka consume + schema decode (``bench_ingest.py``'s);
  2. the Quix peer (``scripts/quix_peer.py``, in the Quix virtualenv: the project's ingest and
     ``Sequencer`` under a Quix ``Application`` with RocksDB state, outputs to its own topics)
     once per ``consumer_poll_timeout`` of ``--poll-timeouts`` (``default``: Quix's own, 1 s);
  3. ``radar worker`` alone (``bench_ingest.py``'s: until its group has committed everything).
Prints a table of events/s after start-up, their ratios to the baseline, the ratio worker / best
peer setting, and the signals on each output topic (they must be the same ids; said if not).
Figures from a shared, noisy machine: compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_ingest import (  # noqa: E402
    Install,
    engine_alone,
    publish,
    raw_consume_parse,
    world_lines,
)

from streams import kafka_local  # noqa: E402
from streams.settings import Settings, load_settings  # noqa: E402

QUIX_VERSION = "3.28.1"
DEFAULT_PORT = 28192
PEER_TIMEOUT_S = 1800.0


def quix_python(settings: Settings) -> Path:
    """The Quix virtualenv's interpreter, made (once) under the git-ignored ``.local``."""
    venv = settings.local / "quix-venv"
    python = venv / "bin" / "python"
    probe = "import importlib.metadata as m; print(m.version('quixstreams'))"
    if python.exists() and subprocess.run([str(python), "-c", probe], capture_output=True,
                                          text=True).stdout.strip() == QUIX_VERSION:
        return python
    print(f"installing Quix Streams {QUIX_VERSION} into {venv} (once, about a minute) ...",
          flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", f"quixstreams=={QUIX_VERSION}"],
                   check=True)
    return python


def run_peer(python: Path, install: Install, outputs: str, n: int, poll: str,
             folder: Path) -> dict[str, float]:
    """One Quix peer run on ``install``'s inputs, outputs to topics prefixed ``outputs``."""
    settings = install.settings
    kafka_local.create_topics(settings.model_copy(update={"topic_prefix": outputs}),
                              say=lambda _: None)
    cmd = [str(python), str(REPO / "scripts" / "quix_peer.py"),
           "--bootstrap", settings.kafka_bootstrap, "--inputs", settings.topic_prefix,
           "--outputs", outputs, "--expect", str(n), "--state-dir", str(folder)]
    if poll != "default":
        cmd += ["--poll-timeout", poll]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=PEER_TIMEOUT_S)
    if proc.returncode != 0:
        raise SystemExit(f"quix peer exited with code {proc.returncode}:\n{proc.stderr[-3000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def signals_on(bootstrap: str, topic: str) -> dict[str, tuple[str, str]]:
    """Every signal on ``topic``: id -> (type, latest status)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        found: dict[str, tuple[str, str]] = {}
        deadline = time.monotonic() + 120
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise SystemExit(f"could not read {topic} to its end")
            for records in consumer.poll(timeout_ms=1000).values():
                for r in records:
                    s = json.loads(r.value)
                    found[s["signal_id"]] = (s["type"], s["status"])
        return found
    finally:
        consumer.close()


def describe(signals: dict[str, tuple[str, str]]) -> str:
    open_ = sum(status == "open" for _, status in signals.values())
    return f"{len(signals):,} ids ({open_:,} open)"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--file", type=Path, default=None,
                        help="publish this JSONL file's lines (all must be valid)")
    parser.add_argument("--events", type=int, default=200_000,
                        help="synthetic events to publish (ignored with --file)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="the local broker's port (its controller uses the next one)")
    parser.add_argument("--poll-timeouts", default="default,0.1",
                        help="Quix consumer_poll_timeout values to measure, comma-separated "
                             "('default': Quix's own, 1.0 s)")
    args = parser.parse_args()
    lines = world_lines(args.file, args.events)
    n = len(lines)
    polls = [p.strip() for p in args.poll_timeouts.split(",") if p.strip()]

    # this broker for everything below, the worker's process included
    os.environ["RADAR_KAFKA_PORT"] = str(args.port)
    os.environ["RADAR_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{args.port}"
    base = load_settings()
    python = quix_python(base)
    started_kafka = kafka_local.ensure_running(base)
    tmp = Path(tempfile.mkdtemp(prefix="radar-bench-peer-"))
    # (what, events/s after start-up, start-up seconds, signals on Kafka)
    rows: list[tuple[str, float, float, str]] = []
    peers: dict[str, dict[str, float]] = {}
    peer_ids: dict[str, dict[str, tuple[str, str]]] = {}
    try:
        install = Install(base, tmp / "worker")
        print(f"publishing {n:,} events ...", flush=True)
        pub = publish([install], lines)
        print(f"  published in {pub:.1f}s ({n / pub:,.0f} events/s)")

        print("baseline: raw aiokafka consume + schema decode ...", flush=True)
        raw = asyncio.run(raw_consume_parse(install.settings, n))
        print(f"  {n / raw:,.0f} events/s ({raw:.1f}s)")
        rows.append(("raw aiokafka consume + decode", n / raw, 0.0, ""))

        for poll in polls:
            outputs = f"peer{uuid.uuid4().hex[:6]}"
            print(f"Quix peer, consumer_poll_timeout={poll} ...", flush=True)
            r = run_peer(python, install, outputs, n, poll, tmp)
            signals = signals_on(base.kafka_bootstrap, f"{outputs}.signals")
            peers[poll] = r
            rate = n / r["first_to_done_s"]
            print(f"  {rate:,.0f} events/s after start-up ({r['first_to_done_s']:.1f}s; "
                  f"start-up {r['startup_s']:.1f}s, {n / r['run_s']:,.0f} events/s from "
                  f"app.run()); {r['cpu_cores']:.2f} cores; {r['signals']:,} signals, "
                  f"{r['withdrawn']:,} withdrawn, {r['state_writes']:,} state writes; "
                  f"on Kafka {describe(signals)}", flush=True)
            rows.append((f"Quix peer, poll timeout {poll}", rate, r["startup_s"],
                         describe(signals)))
            peer_ids[poll] = signals

        print("radar worker alone ...", flush=True)
        total, startup = engine_alone(install)
        worker_rate = n / (total - startup)
        worker_signals = signals_on(base.kafka_bootstrap, install.settings.topics.signals)
        print(f"  {worker_rate:,.0f} events/s after start-up ({total - startup:.1f}s; "
              f"start-up {startup:.1f}s); on Kafka {describe(worker_signals)}")
        rows.append(("radar worker alone", worker_rate, startup, describe(worker_signals)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if started_kafka:
            kafka_local.down(base, say=lambda _: None)

    baseline = rows[0][1]
    print(f"\n{n:,} events, {os.cpu_count()} cores")
    print(f"{'measure':<34} {'events/s':>9} {'ratio':>6} {'start-up':>9}  signals")
    for what, rate, up, found in rows:
        print(f"{what:<34} {rate:>9,.0f} {rate / baseline:>6.3f} {up:>8.1f}s  {found}")
    best = max(polls, key=lambda p: n / peers[p]["first_to_done_s"])
    best_rate = n / peers[best]["first_to_done_s"]
    print(f"ratio worker / best peer setting (poll timeout {best}): "
          f"{worker_rate / best_rate:.3f}")
    for poll in polls:
        ids = peer_ids[poll]
        if ids == worker_signals:
            print(f"peer (poll timeout {poll}) and worker: the same signals (ids, types, "
                  "statuses)")
            continue
        only_peer = Counter(t for i, (t, _) in ids.items() if i not in worker_signals)
        only_worker = Counter(t for i, (t, _) in worker_signals.items() if i not in ids)
        status = sum(ids[i][1] != s for i, (_, s) in worker_signals.items() if i in ids)
        print(f"peer (poll timeout {poll}) and worker DIFFER: only the peer's "
              f"{dict(only_peer)}, only the worker's {dict(only_worker)}, {status} "
              "statuses differ")


if __name__ == "__main__":
    main()
