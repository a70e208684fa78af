"""``radar demo``: the main job end to end on the embedded defaults.

Start the local Kafka if nothing answers on its port, start a worker, simulate a world
(``radar simulate``, a few malformed lines included), stream it through with a progress bar
while alerts print as they fire, wait until every message is stored and its offset committed,
then summarise: events and dead letters, signals by type, tiers, the top at-risk and
expansion-ready accounts with their evidence, and the signals' precision, recall and lead time
against the world's ground truth. Stops what it started; the data stays queryable with
``radar sql``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streams import kafka_local
from streams.publish import publish_file
from streams.query import render_table, run_query
from streams.settings import Settings
from streams.worker import read_worker_state

WAIT_TIMEOUT_S = 300.0
MAX_ALERTS_SHOWN = 40
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
    # the demo publishes every source itself, in event-time order: its sources are idle
    # seconds after the last line, not after a real producer's half minute
    env = {**os.environ, "RADAR_SIGNALS": "true",
           "RADAR_IDLE_SOURCE_SECONDS": os.environ.get("RADAR_IDLE_SOURCE_SECONDS", "5")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"], stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, env=env,
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


def describe_alert(signal: dict[str, Any]) -> str:
    """One line a revenue team can act on: when, which account, who, and why."""
    ev = signal.get("evidence") or {}
    who = signal.get("stakeholder_id") or "-"
    kind = signal.get("type", "?")
    if kind == "champion_left":
        role = ", ".join(str(x) for x in (ev.get("title"), ev.get("function")) if x)
        renewal = ev.get("renewal_in_days")
        why = f"champion {who} ({role}) left" + \
            (f"; renewal in {renewal} days" if renewal is not None else "")
    elif kind == "succession_overdue":
        why = f"{ev.get('threshold_days', 30)} days after {who} left, nobody who joined since " \
            "has been reached"
    elif ev.get("reasons"):
        why = "; ".join(str(r) for r in ev["reasons"])
    else:
        why = kind.replace("_", " ")
    day = str(signal.get("occurred_at", ""))[:10]
    if signal.get("status") == "withdrawn":  # the same alert again: a later event broke it
        broke = (ev.get("withdrawn_by") or {}).get("event_id", "?")
        return f"  WITHDRAWN {day} {kind:<15} {signal.get('account_id', '?'):<14} " \
            f"event {broke} arrived late and proved it premature"
    return f"  ALERT {day} {kind:<19} {signal.get('account_id', '?'):<14} {why}"


class AlertTail(threading.Thread):
    """Prints alerts from the alerts topic as they arrive (from the moment it starts)."""

    def __init__(self, settings: Settings, write: Callable[[str], None],
                 limit: int = MAX_ALERTS_SHOWN) -> None:
        super().__init__(name="alert-tail", daemon=True)
        from kafka import KafkaConsumer, TopicPartition

        self.write = write
        self.limit = limit
        self.seen = 0
        self.stop = threading.Event()
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","),
                                      client_id="radar-demo-alerts", enable_auto_commit=False)
        topic = settings.topics.alerts
        tps = [TopicPartition(topic, p)
               for p in sorted(self.consumer.partitions_for_topic(topic) or ())]
        self.consumer.assign(tps)
        self.consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the end now: alerts from earlier runs are not shown
            self.consumer.position(tp)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                for records in self.consumer.poll(timeout_ms=200).values():
                    for record in records:
                        self._show(record.value)
        finally:
            self.consumer.close()

    def _show(self, value: bytes) -> None:
        self.seen += 1
        if self.seen <= self.limit:
            try:
                self.write(describe_alert(json.loads(value)))
            except ValueError:
                self.write(f"  ALERT (unreadable) {value[:80]!r}")
        elif self.seen == self.limit + 1:
            self.write("  ... more alerts: all of them are in radar.alerts and the signals table")

    def close(self) -> None:
        self.stop.set()
        self.join(timeout=5)


def _section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)))


def _show(settings: Settings, title: str, sql: str) -> None:
    _section(title)
    columns, rows = run_query(settings, sql)
    print(render_table(columns, rows))


@dataclass(frozen=True)
class DemoWorld:
    accounts: int = 200
    days: int = 365
    seed: int = 7
    bad_rate: float = 0.001


def run_demo(settings: Settings, world: DemoWorld | None = None,
             sample: str | None = None) -> int:
    """The world is simulated unless ``sample`` names a JSONL file to stream instead."""
    from tqdm import tqdm

    world = world or DemoWorld()
    started_at = time.perf_counter()
    settings.local.mkdir(parents=True, exist_ok=True)
    labels: Path | None = None
    if sample is not None:
        path = Path(sample)
        if not path.is_file():
            raise DemoError(f"no events file at {path}")
    else:
        from streams.simulate import simulate

        out = settings.local / "demo"
        out.mkdir(parents=True, exist_ok=True)
        path, labels = out / "world.jsonl", out / "world.labels.jsonl"
        _section(f"simulating {world.accounts} accounts over {world.days} days "
                 f"(seed {world.seed})")
        sim = simulate(accounts=world.accounts, days=world.days, seed=world.seed, out=path,
                       labels=labels, bad_rate=world.bad_rate,
                       show_progress=sys.stderr.isatty())
        print(sim.render())
    # dead letters accumulate over runs (each publication is a new message); show this run's
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)

    _section("starting")
    started_kafka = kafka_local.ensure_running(settings)
    worker: subprocess.Popen[bytes] | None = None
    tail: AlertTail | None = None
    if read_worker_state(settings) is None:
        log_path = settings.local / "demo-worker.log"
        print(f"starting the worker (log: {log_path}) ...")
        worker = _start_worker(settings, log_path)
    else:
        print("using the worker that is already running")
    try:
        _section("streaming: alerts print as they fire")
        tail = AlertTail(settings, tqdm.write)
        tail.start()
        summary = publish_file(str(path), bootstrap=settings.kafka_bootstrap,
                               topics=settings.topics, show_progress=sys.stderr.isatty())
        topics = settings.topics
        with tqdm(desc="processed", unit="msg", disable=not sys.stderr.isatty(),
                  leave=False) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            wait_until_committed(settings, topics.inputs, on_progress=progress)
            # refused messages reach the dead-letter topic before their offsets are committed
            wait_until_committed(settings, [topics.dead_letters], on_progress=progress)
        time.sleep(0.5)  # the last alerts on their way to the tail
        tail.close()
        print(summary.render())
        print(f"{tail.seen} alert(s) fired while streaming")
        _summary(settings, since)
        if labels is not None:
            from streams.evaluate import CHART_FILE, REPORT_FILE, render_text, run_evaluation

            _section("signal quality against the simulated ground truth")
            report_dir = settings.local / "reports"
            report = run_evaluation(settings, labels, report_dir, 180)
            print(render_text(report))
            print(f"\nreport: {report_dir / REPORT_FILE}\nchart:  {report_dir / CHART_FILE}")
        _section("explore next")
        for q in NEXT_QUERIES:
            print(f'  radar sql "{q}"')
        print(f"\ndemo finished in {time.perf_counter() - started_at:.1f}s")
    finally:
        if tail is not None and tail.is_alive():
            tail.close()
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
        if started_kafka:
            kafka_local.down(settings)
    return 0


def _summary(settings: Settings, since: datetime) -> None:
    _show(settings, "events stored, by type",
          "SELECT type, count() AS events, uniqExact(account_id) AS accounts, "
          "min(occurred_at) AS first, max(occurred_at) AS last "
          "FROM events FINAL GROUP BY type ORDER BY type")
    _show(settings, "dead letters this run: refused messages, kept with the reason",
          "SELECT error_class, count() AS messages, any(source_topic) AS example_topic, "
          "substring(any(reason), 1, 60) AS example_reason "
          f"FROM dead_letters FINAL WHERE failed_at >= toDateTime64('{since:%Y-%m-%d %H:%M:%S}', "
          "3, 'UTC') GROUP BY error_class ORDER BY messages DESC")
    _show(settings, "signals by type",
          "SELECT category, type, severity, count() AS signals, "
          "uniqExact(account_id) AS accounts FROM signals FINAL WHERE status = 'open' "
          "GROUP BY category, type, severity ORDER BY category, signals DESC")
    _show(settings, "accounts by tier",
          "SELECT tier, count() AS accounts FROM account_state FINAL GROUP BY tier "
          "ORDER BY tier")
    _show(settings, "top at-risk accounts and why",
          "SELECT account_id, name, round(arr) AS arr, renewal_date, "
          "arrayStringConcat(tier_reasons, '; ') AS why, "
          "arrayStringConcat(churn_signals, ', ') AS churn_signals "
          "FROM at_risk_accounts ORDER BY arr DESC, account_id LIMIT 5")
    _show(settings, "top expansion-ready accounts and why",
          "SELECT account_id, name, round(arr) AS arr, engaged_30d, "
          "arrayStringConcat(tier_reasons, '; ') AS why, "
          "arrayStringConcat(expansion_signals, ', ') AS expansion_signals "
          "FROM expansion_candidates ORDER BY arr DESC, account_id LIMIT 5")
