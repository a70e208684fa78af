"""``radar demo``: the main job end to end on the embedded defaults.

Start the local Kafka if nothing answers on its port, start ``radar store`` (unless one runs),
a worker and ``radar notify`` routed to a local receiver (``tools.demo_notify``), simulate a
world (``radar simulate``, a few malformed lines included), stream it through with a progress
bar while alerts print as they fire, wait until every message is processed and everything it
made is stored, then summarise: events and dead letters, signals by type, tiers, the top
at-risk and expansion-ready accounts with their evidence, a few alerts as the people they
reached read them with what became of every delivery, and the signals' precision, recall and
lead time against the world's ground truth. Stops what it started; the data stays queryable
with ``radar sql``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from processors.notify.messages import summary
from streams import kafka_local
from streams.launch import (
    LaunchError,
    launch,
    metrics_url,
    stop,
    wait_until_committed,
    wait_until_stored,
)
from streams.publish import publish_file
from streams.query import render_table, run_query
from streams.settings import Settings
from streams.store_client import read_store_state
from tools.demo_notify import DemoNotify

WAIT_TIMEOUT_S = 300.0
MAX_ALERTS_SHOWN = 40
NO_NEW_ALERTS = (
    "  (a world streamed before alerts nothing new: its events are judged and its alerts\n"
    "  delivered once. To start afresh, remove the worker's state, the database and the\n"
    "  broker's data: rm -r {local}/faust {local}/clickhouse {local}/kafka)")
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


def _start(command: str, settings: Settings, extra: dict[str, str] | None = None
           ) -> subprocess.Popen[bytes]:
    log_path = settings.local / f"demo-{command}.log"
    print(f"starting radar {command} (log: {log_path}) ...")
    # the demo publishes every source itself, in event-time order: its sources are idle
    # seconds after the last line, not after a real producer's half minute
    env = {**os.environ, "RADAR_SIGNALS": "true",
           "RADAR_IDLE_SOURCE_SECONDS": os.environ.get("RADAR_IDLE_SOURCE_SECONDS", "5"),
           **(extra or {})}
    try:
        return launch(command, settings, log_path, env)
    except LaunchError as exc:
        raise DemoError(str(exc)) from exc


def describe_alert(signal: dict[str, Any]) -> str:
    """One line a revenue team can act on: when, which account, who, and why."""
    ev = signal.get("evidence") or {}
    kind = signal.get("type", "?")
    day = str(signal.get("occurred_at", ""))[:10]
    if signal.get("status") == "withdrawn":  # the same alert again: a later event broke it
        broke = (ev.get("withdrawn_by") or {}).get("event_id", "?")
        return f"  WITHDRAWN {day} {kind:<15} {signal.get('account_id', '?'):<14} " \
            f"event {broke} arrived late and proved it premature"
    return f"  ALERT {day} {kind:<19} {signal.get('account_id', '?'):<14} {summary(signal)}"


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
        from tools.simulate import simulate

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
    started: list[subprocess.Popen[bytes]] = []
    tail: AlertTail | None = None
    notify: DemoNotify | None = None
    try:
        if read_store_state(settings) is None:
            started.append(_start("store", settings))
        else:
            print("using the store that is already running")
        started.append(_start("worker", settings))
        # alerts to people: radar notify, routed to a local receiver (Slack and a CRM hook)
        notify = DemoNotify(settings)
        notify_settings = settings.model_copy(update={"notify_config": notify.path})
        started.append(_start("notify", notify_settings, notify.env()))
        _section("streaming: alerts print as they fire")
        tail = AlertTail(settings, tqdm.write)
        tail.start()
        summary = publish_file(str(path), bootstrap=settings.kafka_bootstrap,
                               topics=settings.topics, show_progress=sys.stderr.isatty())
        with tqdm(desc="processed", unit="msg", disable=not sys.stderr.isatty(),
                  leave=False) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            try:
                wait_until_stored(settings, on_progress=progress)
                # every signal judged and its deliveries recorded by the notifier, and the
                # record stored in ClickHouse (alert_deliveries)
                wait_until_committed(settings, settings.notify_group, [settings.topics.signals])
                wait_until_committed(settings, settings.store_group,
                                     [settings.topics.notify_deliveries])
            except LaunchError as exc:
                raise DemoError(str(exc)) from exc
        time.sleep(0.5)  # the last alerts on their way to the tail
        tail.close()
        print(summary.render())
        print(f"{tail.seen} alert(s) fired while streaming")
        if not tail.seen:
            print(NO_NEW_ALERTS.format(local=settings.local))
        _summary(settings, since)
        _section("alerts delivered to people (radar notify -> a local receiver)")
        print(notify.report(metrics_url(notify_settings, "notify")))
        _show(settings, "alert deliveries as stored (ClickHouse alert_deliveries)",
              "SELECT destination, message, outcome, count() AS deliveries, "
              "uniqExact(owner) AS owners FROM alert_deliveries FINAL "
              f"WHERE recorded_at >= toDateTime64('{since:%Y-%m-%d %H:%M:%S}', 3, 'UTC') "
              "GROUP BY destination, message, outcome ORDER BY destination, message, outcome")
        if labels is not None:
            from tools.evaluate import CHART_FILE, REPORT_FILE, render_text, run_evaluation

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
        for proc in reversed(started):  # the worker first: the store stores what it sent
            stop(proc)
        if notify is not None:
            notify.close()
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
