"""Alert latency under light load: champion leaves -> alert on ``radar.alerts``.

    .venv/bin/python scripts/bench_alert_latency.py [--alerts 50]

Starts a worker on fresh topics and a fresh embedded database (the local broker is started if
needed), seeds accounts whose champion is known, then publishes one ``role_change = left`` at a
time and measures, with a consumer on the alerts topic, the time from the producer's send to
the alert arriving. Prints p50/p90/p99/max. The same run times a raw produce -> consume round
trip on a plain topic as the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kafka import KafkaConsumer, KafkaProducer  # noqa: E402

from streams import kafka_local  # noqa: E402
from streams.settings import load_settings  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=50)
    n = parser.parse_args().alerts
    base = load_settings()
    kafka_local.ensure_running(base)
    tag = uuid.uuid4().hex[:6]
    tmp = Path(tempfile.mkdtemp(prefix="radar-latency-"))
    env = {"RADAR_KAFKA_BOOTSTRAP": base.kafka_bootstrap, "RADAR_KAFKA_PORT": str(base.kafka_port),
           "RADAR_TOPIC_PREFIX": f"lat{tag}", "RADAR_APP_ID": f"radar-lat-{tag}",
           "RADAR_CLICKHOUSE_DSN": f"chdb://{tmp / 'ch'}", "RADAR_WEB_PORT": "6098",
           "RADAR_SIGNALS": "true"}
    settings = load_settings(env)
    kafka_local.create_topics(settings, say=lambda _: None)
    topics = settings.topics
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=0, acks=1)
    now = datetime.now(UTC).isoformat()

    def send(kind: str, body: dict[str, object]) -> None:
        event = {"event_id": uuid.uuid4().hex, "type": kind, "schema_version": 1,
                 "occurred_at": now, **body}
        producer.send(topics.for_type(kind), key=str(body["account_id"]).encode(),
                      value=json.dumps(event).encode())

    for i in range(n):
        send("account_profile", {"account_id": f"a{i}", "name": "A", "sector": "s", "tier": 1,
                                 "renewal_date": "2027-06-01", "arr": 1.0,
                                 "champion_ids": [f"c{i}"]})
    producer.flush()

    log = (tmp / "worker.log").open("wb")
    worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], cwd=REPO,
                              env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{settings.web_url}/metrics", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        consumer = KafkaConsumer(topics.alerts, bootstrap_servers=settings.kafka_bootstrap,
                                 auto_offset_reset="latest", fetch_max_wait_ms=10)
        consumer.poll(timeout_ms=2000)  # join and position at the end
        # steady state: the sources that deliver nothing (all but accounts and role changes)
        # turn idle after RADAR_IDLE_SOURCE_SECONDS and stop holding event time back; until
        # then the profiles, and any departure, wait for them (SPEC section 9)
        time.sleep(settings.idle_source_seconds + 3)
        latencies: list[float] = []
        for i in range(n):
            sent = time.perf_counter()
            send("role_change", {"account_id": f"a{i}", "stakeholder_id": f"c{i}",
                                 "change": "left", "title": "VP", "function": "commercial",
                                 "seniority": "vp", "buying_role": "champion"})
            producer.flush()
            got = False
            while not got and time.perf_counter() - sent < 10:
                for records in consumer.poll(timeout_ms=50).values():
                    got = got or any(json.loads(r.value)["account_id"] == f"a{i}"
                                     for r in records)
            if got:
                latencies.append(time.perf_counter() - sent)
            time.sleep(0.1)  # light load: one departure at a time

        # baseline: the same produce -> consume round trip without the worker in between
        raw: list[float] = []
        probe = KafkaConsumer(topics.signals, bootstrap_servers=settings.kafka_bootstrap,
                              auto_offset_reset="latest", fetch_max_wait_ms=10)
        probe.poll(timeout_ms=2000)
        for _ in range(n):
            sent = time.perf_counter()
            producer.send(topics.signals, key=b"probe", value=b'{"account_id": "probe"}')
            producer.flush()
            got = False
            while not got and time.perf_counter() - sent < 10:
                got = any(probe.poll(timeout_ms=50).values())
            if got:
                raw.append(time.perf_counter() - sent)
        print(f"alerts received: {len(latencies)}/{n}")
        for name, values in (("champion_left -> alert", latencies), ("raw round trip", raw)):
            if values:
                print(f"  {name:<24} p50 {pct(values, .5) * 1000:7.1f} ms   "
                      f"p90 {pct(values, .9) * 1000:7.1f} ms   p99 {pct(values, .99) * 1000:7.1f} ms"
                      f"   max {max(values) * 1000:7.1f} ms   mean {statistics.mean(values) * 1000:.1f}")
        if latencies and raw:
            print(f"  ratio p50 alert/raw: {pct(latencies, .5) / pct(raw, .5):.1f}")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
