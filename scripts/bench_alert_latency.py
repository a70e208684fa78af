"""Alert latency: champion leaves -> alert on ``radar.alerts`` (and, with ``--notify``, ->
the webhook of ``radar notify`` received), under light load or while a world streams.

    .venv/bin/python scripts/bench_alert_latency.py [--alerts 50] [--notify]
        [--load FILE --load-rate 5000]

Starts a worker on fresh topics (the local broker is started if needed), seeds accounts whose
champion is known, then publishes one ``role_change = left`` at a time and measures, with a
consumer on the alerts topic, the time from the producer's send to the alert arriving. Prints
p50/p90/p99/max. The same run times a raw produce -> consume round trip on a plain topic as the
baseline. With ``--notify``, ``radar notify`` runs too, routing every alert to a webhook on a
local receiver (``tools.local_receiver``) (the measured accounts' only: they have an owner of
their own, so the loaded world's alerts do not queue at the receiver), and the time from the
send to the webhook received is measured for the same departures (SPEC section 10: p99 <=
1 s), as is what the notifier adds after the alert was seen on Kafka.

With ``--load``, the lines of FILE (e.g. the default world of ``radar simulate``) stream to the
input topics at ``--load-rate`` events/s from before the first departure until the last, each
re-dated to the moment it is sent and keyed by its account (the world's own accounts, apart
from the measured ones): live traffic on every source, as in production. (A world replayed
with its own dates would be history: a departure dated now waits, by design, until every
source's event time has passed it.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kafka import KafkaConsumer, KafkaProducer  # noqa: E402

from streams import kafka_local  # noqa: E402
from streams.launch import launch  # noqa: E402
from streams.settings import Settings, load_settings  # noqa: E402
from tools.local_receiver import Receiver, ReceiverThread  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def stream_live(settings: Settings, lines: list[bytes], rate: float, going: threading.Event,
                streamed: list[int]) -> None:
    """The lines, over and over, each re-dated to now, at ``rate`` events/s while ``going``."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5, acks=1)
    topics = settings.topics
    started = time.perf_counter()
    sent = 0
    try:
        while going.is_set():
            for line in lines:
                if not going.is_set():
                    break
                event = json.loads(line)
                event["occurred_at"] = datetime.now(UTC).isoformat()
                event["event_id"] = f"{event['event_id']}-{sent}"
                producer.send(topics.for_type(str(event["type"])),
                              key=str(event["account_id"]).encode(),
                              value=json.dumps(event).encode())
                sent += 1
                ahead = sent / rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
        producer.flush()
    finally:
        producer.close()
        streamed[0] = sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=50)
    parser.add_argument("--load", type=Path, default=None,
                        help="stream this JSONL world, re-dated to now, while measuring")
    parser.add_argument("--load-rate", type=float, default=5000.0,
                        help="events/s of --load (5000)")
    parser.add_argument("--notify", action="store_true",
                        help="also run radar notify and time the webhook received")
    args = parser.parse_args()
    base = load_settings()
    started = kafka_local.ensure_running(base)
    try:
        measure(args, base)
    finally:
        if started:  # stop what this started (a broker that was running stays)
            kafka_local.down(base, say=lambda _: None)


def measure(args: argparse.Namespace, base: Settings) -> None:
    n = args.alerts
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
    def send(kind: str, body: dict[str, object]) -> None:
        event = {"event_id": uuid.uuid4().hex, "type": kind, "schema_version": 1,
                 "occurred_at": datetime.now(UTC).isoformat(), **body}
        producer.send(topics.for_type(kind), key=str(body["account_id"]).encode(),
                      value=json.dumps(event).encode())

    for i in range(n):
        send("account_profile", {"account_id": f"a{i}", "name": "A", "sector": "s", "tier": 1,
                                 "renewal_date": "2027-06-01", "arr": 1.0,
                                 "champion_ids": [f"c{i}"], "owner": "bench@example.com"})
    producer.flush()

    procs = [launch("worker", settings, tmp / "worker.log", {**os.environ, **env}, cwd=REPO)]
    receiver: ReceiverThread | None = None
    if args.notify:
        receiver = ReceiverThread(Receiver())
        port = receiver.start().port
        config = tmp / "notify.toml"
        config.write_text(f'[[destination]]\nname = "hook"\nkind = "webhook"\n'
                          f'url = "http://127.0.0.1:{port}/hook"\n[[route]]\n'
                          'destination = "hook"\nowners = ["bench@example.com"]\n')
        env_n = {**os.environ, **env, "RADAR_NOTIFY_CONFIG": str(config),
                 "RADAR_NOTIFY_PORT": "6099"}
        procs.append(launch("notify", load_settings(env_n), tmp / "notify.log", env_n, cwd=REPO))
        while True:  # steady state: the notifier holds the signals' partitions
            with urllib.request.urlopen("http://127.0.0.1:6099/metrics", timeout=5) as page:
                if "radar_notify_partitions 0.0" not in page.read().decode():
                    break
            time.sleep(0.2)
    try:
        consumer = KafkaConsumer(topics.alerts, bootstrap_servers=settings.kafka_bootstrap,
                                 auto_offset_reset="latest", fetch_max_wait_ms=10)
        consumer.poll(timeout_ms=2000)  # join and position at the end
        # steady state: the sources that deliver nothing (all but accounts and role changes)
        # turn idle after RADAR_IDLE_SOURCE_SECONDS and stop holding event time back; until
        # then the profiles, and any departure, wait for them (SPEC section 9)
        time.sleep(settings.idle_source_seconds + 3)
        loading = threading.Event()
        streamed = [0]
        load: threading.Thread | None = None
        if args.load is not None:
            lines = [line for line in args.load.read_bytes().splitlines() if line.strip()]
            load = threading.Thread(target=stream_live, daemon=True,
                                    args=(settings, lines, args.load_rate, loading, streamed))
            loading.set()
            load.start()
            time.sleep(3)  # the stream under way on every source before the first departure
        latencies: list[float] = []
        alerted_at: dict[str, float] = {}
        sent_at: dict[str, float] = {}
        for i in range(n):
            sent_at[f"a{i}"] = time.time()
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
                alerted_at[f"a{i}"] = sent_at[f"a{i}"] + latencies[-1]
            else:
                print(f"  departure {i}: no alert within 10 s")
            time.sleep(0.1)  # light load: one departure at a time

        if load is not None:
            loading.clear()
            load.join()
            print(f"load: {streamed[0]:,} events streamed at up to {args.load_rate:,.0f}/s "
                  "while measuring")
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
        hooked: list[float] = []
        added: list[float] = []  # what the notifier adds: webhook received - alert on Kafka
        if receiver is not None:
            deadline = time.monotonic() + 10
            while len(receiver.receiver.delivered("hook")) < n and time.monotonic() < deadline:
                time.sleep(0.1)
            for r in receiver.receiver.delivered("hook"):
                account = json.loads(r.body)["account_id"]
                if account in sent_at:
                    hooked.append(r.at - sent_at[account])
                if account in alerted_at:
                    added.append(r.at - alerted_at[account])
            print(f"webhooks received: {len(hooked)}/{n}")
        for name, values in (("champion_left -> alert", latencies),
                             ("champion_left -> webhook", hooked),
                             ("alert seen -> webhook", added), ("raw round trip", raw)):
            if values:
                print(f"  {name:<24} p50 {pct(values, .5) * 1000:7.1f} ms   "
                      f"p90 {pct(values, .9) * 1000:7.1f} ms   p99 {pct(values, .99) * 1000:7.1f} ms"
                      f"   max {max(values) * 1000:7.1f} ms   mean {statistics.mean(values) * 1000:.1f}")
        if latencies and raw:
            print(f"  ratio p50 alert/raw: {pct(latencies, .5) / pct(raw, .5):.1f}")
        if hooked and raw:
            print(f"  ratio p50 webhook/raw: {pct(hooked, .5) / pct(raw, .5):.1f}   "
                  f"p99 webhook <= 1 s: {'yes' if pct(hooked, .99) <= 1.0 else 'NO'}")
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        if receiver is not None:
            receiver.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
