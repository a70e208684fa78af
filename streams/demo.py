"""``radar demo``: the main job end to end on the embedded defaults.

Start the local Kafka if nothing answers on its port, start a worker, publish the bundled sample
(bad lines included), wait until every message is stored and its offset committed, print what
landed in ClickHouse, then stop what it started. The data stays queryable with ``radar sql``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streams import kafka_local
from streams.publish import publish_file
from streams.query import render_table, run_query
from streams.settings import Settings
from streams.worker import read_worker_state

WAIT_TIMEOUT_S = 300.0
NEXT_QUERIES = (
    "SELECT * FROM at_risk_accounts",
    "SELECT * FROM expansion_candidates",
    "SELECT type, occurred_at, account_id, stakeholder_id, evidence FROM signals "
    "WHERE type = 'champion_left'",
    "SELECT account_id, countIf(type = 'ad_impression') AS impressions, "
    "countIf(type != 'ad_impression') AS other FROM events GROUP BY account_id ORDER BY other DESC",
    "SELECT error_class, source_topic, source_offset, reason FROM dead_letters",
)


class DemoError(RuntimeError):
    pass


def bundled_sample(settings: Settings) -> Path:
    return settings.home / "samples" / "sample-events.jsonl"


def end_offsets(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), client_id="radar-demo")
    try:
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        return {(tp.topic, tp.partition): off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets; empty while a new broker is still electing a coordinator."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import CoordinatorNotAvailableError, NotCoordinatorError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="radar-demo")
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    except (CoordinatorNotAvailableError, NotCoordinatorError):
        return {}
    finally:
        admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


def wait_until_committed(
    settings: Settings,
    topics: list[str],
    timeout: float = WAIT_TIMEOUT_S,
    on_progress: Callable[[int, int], None] | None = None,
) -> None:
    """Block until the worker's group has committed every message now on ``topics``.

    The worker commits only after rows are stored, so this means "everything is in ClickHouse".
    """
    bootstrap = settings.kafka_bootstrap
    ends = end_offsets(bootstrap, topics)
    target = sum(ends.values())
    deadline = time.monotonic() + timeout
    while True:
        done = committed_offsets(bootstrap, settings.app_id)
        behind = sum(max(0, end - max(done.get(tp, 0), 0)) for tp, end in ends.items())
        if on_progress is not None:
            on_progress(target - behind, target)
        if behind == 0:
            return
        if time.monotonic() > deadline:
            raise DemoError(f"the worker still had {behind} message(s) to store after {timeout:.0f}s")
        time.sleep(0.3)


def _start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"], stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, env={**os.environ, "RADAR_SIGNALS": "true"},
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise DemoError(f"the worker exited with code {proc.returncode}; log tail:\n{tail}")
        try:
            with urllib.request.urlopen(f"{settings.web_url}/metrics", timeout=1):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise DemoError(f"the worker did not start within 90s; see {log_path}")


def _section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)))


def _show(settings: Settings, title: str, sql: str) -> None:
    _section(title)
    columns, rows = run_query(settings, sql)
    print(render_table(columns, rows))


def run_demo(settings: Settings, sample: str | None = None) -> int:
    from tqdm import tqdm

    path = Path(sample) if sample else bundled_sample(settings)
    if not path.is_file():
        raise DemoError(f"no sample file at {path}")
    started_at = time.perf_counter()
    # dead letters accumulate over runs (each publication is a new message); show this run's
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    settings.local.mkdir(parents=True, exist_ok=True)

    started_kafka = kafka_local.ensure_running(settings)

    worker: subprocess.Popen[bytes] | None = None
    if read_worker_state(settings) is None:
        log_path = settings.local / "demo-worker.log"
        print(f"starting the worker (log: {log_path}) ...")
        worker = _start_worker(settings, log_path)
    else:
        print("using the worker that is already running")
    try:
        summary = publish_file(str(path), bootstrap=settings.kafka_bootstrap,
                               topics=settings.topics, show_progress=sys.stderr.isatty())
        print(summary.render())
        topics = settings.topics
        with tqdm(desc="stored in ClickHouse", unit="msg", disable=not sys.stderr.isatty(),
                  leave=False) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            wait_until_committed(settings, topics.inputs, on_progress=progress)
            # refused messages reach the dead-letter topic before their offsets are committed
            wait_until_committed(settings, [topics.dead_letters], on_progress=progress)

        _show(settings, "events stored, by type",
              "SELECT type, count() AS events, uniqExact(account_id) AS accounts, "
              "min(occurred_at) AS first, max(occurred_at) AS last "
              "FROM events FINAL GROUP BY type ORDER BY type")
        _show(settings, "dead letters: refused messages, kept with the reason",
              "SELECT error_class, source_topic, source_partition AS partition, "
              "source_offset AS offset, substring(reason, 1, 70) AS reason "
              f"FROM dead_letters FINAL WHERE failed_at >= toDateTime64('{since:%Y-%m-%d %H:%M:%S}', "
              "3, 'UTC') ORDER BY error_class, source_topic, source_offset")
        _show(settings, "signals by type",
              "SELECT category, type, severity, count() AS signals, "
              "uniqExact(account_id) AS accounts FROM signals FINAL "
              "GROUP BY category, type, severity ORDER BY category, signals DESC")
        _show(settings, "accounts by tier",
              "SELECT tier, count() AS accounts FROM account_state FINAL GROUP BY tier "
              "ORDER BY tier")
        _show(settings, "at-risk accounts and why",
              "SELECT account_id, arrayStringConcat(tier_reasons, '; ') AS why, "
              "arrayStringConcat(churn_signals, ', ') AS churn_signals "
              "FROM at_risk_accounts ORDER BY last_signal_at DESC LIMIT 5")
        _show(settings, "most engaged accounts (non-impression events)",
              "SELECT account_id, countIf(type != 'ad_impression') AS engagements, "
              "countIf(type = 'ad_impression') AS impressions, uniqExact(stakeholder_id) "
              "AS stakeholders FROM events FINAL WHERE type != 'account_profile' "
              "GROUP BY account_id ORDER BY engagements DESC LIMIT 5")
        _section("explore next")
        for q in NEXT_QUERIES:
            print(f'  radar sql "{q}"')
        print(f"\ndemo finished in {time.perf_counter() - started_at:.1f}s")
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
        if started_kafka:
            kafka_local.down(settings)
    return 0
