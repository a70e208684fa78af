"""The mechanics of the perturbation harness (``scripts/perturb.py``): a world's events, the
producers that feed them to the broker (kafka-python as ``radar publish``, librdkafka through
confluent-kafka, or both), and one isolated installation on a broker — its topics, consumer
group, embedded ClickHouse, local folder, web port and ``radar worker`` subprocesses — read back
as the set of open signals once the worker has committed everything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from streams import kafka_local  # noqa: E402
from streams.demo import committed_offsets, end_offsets  # noqa: E402
from streams.query import run_query  # noqa: E402
from streams.settings import Settings, load_settings  # noqa: E402
from streams.worker import read_worker_state  # noqa: E402

# The one place that says which signals are open: the latest status of each id (a withdrawal
# replaces its signal, see sinks.schema).
OPEN_SIGNALS_SQL = ("SELECT signal_id, type, account_id, toString(occurred_at) FROM signals FINAL "
                    "WHERE status = 'open'")
EVENTS_SQL = "SELECT count() FROM events FINAL"

WORKER_START_TIMEOUT_S = 120.0
WORKER_STOP_TIMEOUT_S = 15.0  # then SIGKILL: a run's results are read before it stops
SETTLE_SECONDS = 2.0  # the signal count must stay put this long after the last commit


def say_on_stderr(message: str) -> None:
    print(f"[perturb {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class HarnessError(RuntimeError):
    """The harness could not carry out a run (not a mismatch: the stack failed)."""


# --- the world ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    type: str
    account_id: str
    occurred_at: datetime
    value: bytes


def load_world(path: Path) -> list[Record]:
    records = []
    for lineno, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            records.append(Record(str(event["type"]), str(event["account_id"]),
                                  datetime.fromisoformat(str(event["occurred_at"])), line))
        except (ValueError, KeyError, TypeError) as exc:
            raise HarnessError(f"{path}:{lineno} is not an event the harness can route: {exc}") \
                from exc
    return records


# --- producers ------------------------------------------------------------------------------


class Producer:
    """Sends records to their type's topic; ``keys``: "account" (the account id) or "none"
    (no key, except on the compacted profiles topic, which refuses keyless messages)."""

    def __init__(self, settings: Settings, keys: str = "account") -> None:
        self.topics = settings.topics
        self.keys = keys

    def key(self, r: Record) -> bytes | None:
        if self.keys == "none" and r.type != "account_profile":
            return None
        return r.account_id.encode()

    def topic(self, r: Record) -> str:
        topic = self.topics.for_type(r.type)
        if topic is None:
            raise HarnessError(f"no topic for type {r.type!r}")
        return topic

    def send(self, r: Record) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class KafkaPythonProducer(Producer):
    """kafka-python, as ``radar publish``: murmur2 of the key (Kafka's Java default), a random
    partition for a keyless message."""

    def __init__(self, settings: Settings, keys: str = "account") -> None:
        from kafka import KafkaProducer

        super().__init__(settings, keys)
        self._errors: list[BaseException] = []
        self._producer = KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap.split(","), client_id="radar-perturb",
            # retries: as many as fit in the delivery timeout (kafka-python's default), so a
            # broker that is electing leaders after a restart is waited for
            acks="all", linger_ms=5, enable_idempotence=False,
            max_in_flight_requests_per_connection=1,  # a retry never reorders a partition
        )

    def send(self, r: Record) -> None:
        future = self._producer.send(self.topic(r), key=self.key(r), value=r.value)
        future.add_errback(self._errors.append)

    def flush(self) -> None:
        self._producer.flush()
        if self._errors:
            raise HarnessError(f"the broker refused {len(self._errors)} message(s): {self._errors[0]}")

    def close(self) -> None:
        self._producer.close()


class LibrdkafkaProducer(Producer):
    """confluent-kafka (librdkafka), a client no one here wrote, with its default partitioner
    ``consistent_random``: CRC32 of the key, so an account lands on another partition than
    Kafka's Java default would put it."""

    def __init__(self, settings: Settings, keys: str = "account") -> None:
        from confluent_kafka import Producer as RdProducer

        super().__init__(settings, keys)
        self._errors: list[str] = []
        self._producer = RdProducer({
            "bootstrap.servers": settings.kafka_bootstrap, "client.id": "radar-perturb-rdkafka",
            "partitioner": "consistent_random", "acks": "all", "linger.ms": 5,
            "enable.idempotence": False, "max.in.flight.requests.per.connection": 1,
        })

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            self._errors.append(str(error))

    def send(self, r: Record) -> None:
        while True:
            try:
                self._producer.produce(self.topic(r), value=r.value, key=self.key(r),
                                       on_delivery=self._delivered)
                break
            except BufferError:  # the local queue is full: let deliveries drain
                self._producer.poll(0.1)
        self._producer.poll(0)

    def flush(self) -> None:
        left = self._producer.flush(60)
        if left or self._errors:
            raise HarnessError(f"librdkafka: {left} message(s) undelivered, "
                               f"{len(self._errors)} refused {self._errors[:1]}")

    def close(self) -> None:
        self.flush()


class MixedProducer(Producer):
    """Two clients on one set of topics, as when sources have their own connectors: the web
    and ad sources (``via_librdkafka`` types) through librdkafka's default partitioner, the CRM
    and outreach ones through kafka-python (Kafka's default), all keyed by account id."""

    def __init__(self, settings: Settings, via_librdkafka: frozenset[str]) -> None:
        super().__init__(settings)
        self.via_librdkafka = via_librdkafka
        self._java = KafkaPythonProducer(settings)
        self._rd = LibrdkafkaProducer(settings)

    def send(self, r: Record) -> None:
        (self._rd if r.type in self.via_librdkafka else self._java).send(r)

    def flush(self) -> None:
        self._java.flush()
        self._rd.flush()

    def close(self) -> None:
        try:
            self._java.close()
        finally:
            self._rd.close()


def feed(producer: Producer, records: Sequence[Record], *, rate: float | None = None,
         hooks: dict[int, Callable[[], None]] | None = None) -> None:
    """Send ``records`` in order, at most ``rate`` per second (None: as fast as possible).
    ``hooks[i]`` runs before record ``i`` is sent, once everything before it is on the broker."""
    hooks = hooks or {}
    started = time.monotonic()
    for i, r in enumerate(records):
        if i in hooks:
            producer.flush()
            hooks[i]()
            started = time.monotonic() - (i / rate if rate else 0.0)  # the pause is not made up
        if rate:
            ahead = started + i / rate - time.monotonic()
            if ahead > 0.005:
                time.sleep(ahead)
        producer.send(r)
    producer.flush()


# --- one installation -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def radar_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "streams.cli", *args]


@dataclass(frozen=True, slots=True)
class Signal:
    type: str
    account_id: str
    occurred_at: str

    def as_json(self) -> dict[str, str]:
        return {"type": self.type, "account_id": self.account_id, "occurred_at": self.occurred_at}


@dataclass
class RunResult:
    """What one run left in ClickHouse and the worker's metrics."""

    label: str
    signals: dict[str, Signal]  # the open signals by id
    events: int
    seconds: float
    late_events: float | None = None
    notes: list[str] = field(default_factory=list)


class Stack:
    """One isolated installation on the harness's broker: its topics, consumer group, embedded
    database, local folder and web port, and the workers it started."""

    def __init__(self, broker: Settings, root: Path, label: str,
                 extra_env: dict[str, str] | None = None) -> None:
        tag = uuid.uuid4().hex[:8]
        self.label = label
        self.dir = root / f"run-{label}-{tag}"
        self.dir.mkdir(parents=True)
        port = broker.kafka_port
        self.env = {
            "RADAR_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
            "RADAR_KAFKA_PORT": str(port),
            "RADAR_KAFKA_CONTROLLER_PORT": str(broker.controller_port),
            "RADAR_TOPIC_PREFIX": f"p{tag}",
            "RADAR_TOPIC_PARTITIONS": str(broker.topic_partitions),
            "RADAR_APP_ID": f"radar-perturb-{tag}",
            "RADAR_CLICKHOUSE_DSN": f"chdb://{self.dir / 'clickhouse'}",
            "RADAR_LOCAL_DIR": str(self.dir / "local"),
            "RADAR_WEB_PORT": str(free_port()),
            **(extra_env or {}),
        }
        self.settings = load_settings(self.env)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.notes: list[str] = []
        kafka_local.create_topics(self.settings, say=lambda _: None)

    def full_env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
        return {**base, **self.env}

    @property
    def worker(self) -> subprocess.Popen[bytes] | None:
        return self.workers[-1] if self.workers else None

    def worker_log(self, chars: int = 3000) -> str:
        logs = sorted(self.dir.glob("worker-*.log"))
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in logs)

    def start_worker(self) -> subprocess.Popen[bytes]:
        with (self.dir / f"worker-{len(self.workers)}.log").open("wb") as log:
            proc = subprocess.Popen(
                radar_command("worker"), env=self.full_env(), cwd=REPO, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the harness, which stops it
            )
        self.workers.append(proc)
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise HarnessError(f"the worker exited with {proc.returncode}:\n{self.worker_log()}")
            try:
                with urllib.request.urlopen(f"{self.settings.web_url}/metrics", timeout=1):
                    return proc
            except OSError:
                time.sleep(0.2)
        raise HarnessError(f"the worker did not serve /metrics in {WORKER_START_TIMEOUT_S:.0f}s")

    def kill_worker(self) -> None:
        proc = self.worker
        if proc is None or proc.poll() is not None:
            raise HarnessError("no running worker to kill")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def publish_file(self, path: Path) -> None:
        done = subprocess.run(radar_command("publish", str(path), "-q"), env=self.full_env(),
                              cwd=REPO, capture_output=True, text=True, check=False, timeout=600)
        if done.returncode != 0:
            raise HarnessError(f"radar publish exited with {done.returncode}:\n{done.stdout}"
                               f"{done.stderr}")

    def wait_processed(self, timeout: float) -> None:
        """Until the worker's group has committed every message now on the input topics (the
        worker commits only after rows, signals and states are stored)."""
        from kafka.errors import KafkaError

        bootstrap = self.settings.kafka_bootstrap
        inputs = self.settings.topics.inputs
        deadline = time.monotonic() + timeout
        while True:  # a broker just resumed may answer metadata without brokers for a moment
            try:
                ends = end_offsets(bootstrap, inputs)
                break
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        last_report = 0.0
        while True:
            proc = self.worker
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise HarnessError(f"the worker is not running (exit {code}):\n{self.worker_log()}")
            try:
                done = committed_offsets(bootstrap, self.settings.app_id)
            except KafkaError:
                done = {}
            behind = sum(max(0, end - max(done.get(tp, 0), 0)) for tp, end in ends.items())
            if behind == 0:
                return
            now = time.monotonic()
            if now > deadline:
                raise HarnessError(f"the worker still had {behind} message(s) to commit after "
                                   f"{timeout:.0f}s:\n{self.worker_log()}")
            if now - last_report > 15:
                say_on_stderr(f"  {self.label}: {behind:,} message(s) not committed yet")
                last_report = now
            time.sleep(0.5)

    def committed(self) -> int:
        """Input messages the worker's group has committed so far (0 while unknown)."""
        from kafka.errors import KafkaError

        try:
            done = committed_offsets(self.settings.kafka_bootstrap, self.settings.app_id)
        except KafkaError:
            return 0
        inputs = set(self.settings.topics.inputs)
        return sum(max(0, off) for (topic, _), off in done.items() if topic in inputs)

    def wait_progress(self, beyond: int, timeout: float) -> int:
        """Until the group has committed more than ``beyond`` messages (a restarted worker has
        its partitions and works); returns the count."""
        deadline = time.monotonic() + timeout
        while (done := self.committed()) <= beyond:
            proc = self.worker
            if proc is None or proc.poll() is not None:
                raise HarnessError(f"the worker is not running:\n{self.worker_log()}")
            if time.monotonic() > deadline:
                raise HarnessError(f"the worker committed nothing more in {timeout:.0f}s:\n"
                                   f"{self.worker_log()}")
            time.sleep(0.2)
        return done

    def wait_leaders(self, timeout: float) -> None:
        """Until every partition of the input topics has a leader (after a broker restart)."""
        from kafka.admin import KafkaAdminClient
        from kafka.errors import KafkaError

        deadline = time.monotonic() + timeout
        while True:
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap.split(","),
                                         client_id="radar-perturb", request_timeout_ms=5000)
                try:
                    described = admin.describe_topics(self.settings.topics.inputs)
                finally:
                    admin.close()
                ready = len(described) == len(self.settings.topics.inputs) and all(
                    t.get("error_code", 0) == 0 and t.get("partitions") and all(
                        p.get("error_code", 0) == 0 and p.get("leader_id", -1) >= 0
                        for p in t["partitions"])
                    for t in described)
            except KafkaError:
                ready = False
            if ready:
                return
            if time.monotonic() > deadline:
                raise HarnessError(f"the input topics had no leaders {timeout:.0f}s after the "
                                   "broker came back")
            time.sleep(0.5)

    def query(self, sql: str) -> list[Sequence[Any]]:
        # through the running worker (it holds the embedded database): never opened here
        if read_worker_state(self.settings) is None:
            raise HarnessError("no running worker to query")
        return run_query(self.settings, sql)[1]

    def late_events(self) -> float | None:
        try:
            with urllib.request.urlopen(f"{self.settings.web_url}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return None
        values = [float(m.group(1)) for m in
                  re.finditer(r"^radar_late_events_total(?:\{[^}]*\})? (\S+)$", text, re.M)]
        return sum(values) if values else None

    def result(self, started: float) -> RunResult:
        """The open signals once their count stays put for SETTLE_SECONDS."""
        rows = self.query(OPEN_SIGNALS_SQL)
        while True:
            time.sleep(SETTLE_SECONDS)
            again = self.query(OPEN_SIGNALS_SQL)
            if len(again) == len(rows):
                break
            rows = again
        events = int(self.query(EVENTS_SQL)[0][0])
        signals = {str(r[0]): Signal(str(r[1]), str(r[2]), str(r[3])) for r in again}
        return RunResult(self.label, signals, events,
                         time.perf_counter() - started, self.late_events(), list(self.notes))

    def close(self, remove: bool) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=WORKER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)
