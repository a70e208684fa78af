"""The mechanics of the perturbation harness (``scripts/perturb.py``): a world's events, the
producers that feed them to the broker (kafka-python as ``radar publish``, librdkafka through
confluent-kafka, or both), and one isolated installation on a broker — its topics, consumer
groups, embedded ClickHouse, local folder, web ports, its ``radar store`` and ``radar worker``
subprocesses (started and stopped with ``streams.launch``) — read back through the store as the
set of open signals once everything is processed and stored.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
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
from streams.launch import (  # noqa: E402
    LaunchError,
    committed_offsets,
    end_offsets,
    launch,
    metrics_url,
    stop,
    stored_topics,
)
from streams.settings import Settings, load_settings  # noqa: E402
from streams.store_client import (  # noqa: E402
    StoreRefused,
    StoreUnreachable,
    post_to_store,
    read_store_state,
)

# The one place that says which signals are open: the latest status of each id (a withdrawal
# replaces its signal, see sinks.schema).
OPEN_SIGNALS_SQL = ("SELECT signal_id, type, account_id, toString(occurred_at) FROM signals FINAL "
                    "WHERE status = 'open'")
EVENTS_SQL = "SELECT count() FROM events FINAL"
# every row the store wrote, before any merge: a message stored twice is two rows here (FINAL
# shows one of them), one lost is missing from both counts
EVENT_ROWS_SQL = "SELECT count(), uniqExact(event_id) FROM events"
SIGNAL_ROWS_SQL = "SELECT count(), uniqExact(signal_id) FROM signals"

START_TIMEOUT_S = 120.0  # for a worker or the store to answer /metrics
STOP_TIMEOUT_S = 15.0  # then SIGKILL: a run's results are read before it stops
SETTLE_SECONDS = 2.0  # the open signals must stay put this long after the store caught up
RESULT_TIMEOUT_S = 120.0  # for the store to catch up again while the result settles
QUERY_MARGIN_S = 30.0  # beyond a query's own time bound (RADAR_SQL_MAX_SECONDS)
GROUP_POLL_S = 0.5  # how often GroupWatch describes the workers' consumer group


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
    """What one run left in ClickHouse (through the store) and the last worker's metrics."""

    label: str
    signals: dict[str, Signal]  # the open signals by id
    events: int
    seconds: float
    late_events: float | None = None
    notes: list[str] = field(default_factory=list)
    # events without FINAL: rows written and distinct event ids (equal, and equal to the
    # events published, when nothing was stored twice nor lost)
    event_rows: int | None = None
    event_ids: int | None = None
    # signals rows and distinct ids: a worker that takes over partitions sends again the
    # signals of what was not committed yet (at least once; FINAL keeps one)
    signal_rows: int | None = None
    signal_ids: int | None = None
    # the sizes of the workers' group each time it was seen settled (GroupWatch), in order,
    # and what the harness did and the group went through (GroupWatch.timeline)
    group_sizes: list[int] = field(default_factory=list)
    group_timeline: list[str] = field(default_factory=list)


@dataclass
class Process:
    """One ``radar worker`` or ``radar store`` the stack started, with the settings it runs
    with (each worker answers on a web port of its own)."""

    command: str
    proc: subprocess.Popen[bytes]
    settings: Settings
    log: Path
    ended: bool = False  # stopped or killed on purpose: no longer expected to run

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    @property
    def name(self) -> str:
        return self.log.stem


def sum_metric(text: str, name: str) -> float | None:
    """The sum of a Prometheus text exposition's samples named ``name`` (any labels); None when
    there are none."""
    pattern = rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$"
    values = [float(m.group(1)) for m in re.finditer(pattern, text, re.M)]
    return sum(values) if values else None


# --- the workers' consumer group -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupView:
    """The workers' consumer group as its coordinator described it at ``t`` (monotonic
    seconds): its state and each member's input partitions (topic, partition)."""

    t: float
    state: str  # Stable, PreparingRebalance, CompletingRebalance, Empty, Dead
    members: tuple[tuple[str, frozenset[tuple[str, int]]], ...]  # by member id

    def settled(self, size: int, inputs: Sequence[str], partitions: int) -> bool:
        """Stable with ``size`` members that share every input partition, each exactly once."""
        if self.state != "Stable" or len(self.members) != size:
            return False
        assigned = [tp for _, tps in self.members for tp in tps]
        return len(assigned) == len(set(assigned)) and \
            set(assigned) == {(t, p) for t in inputs for p in range(partitions)}

    def owners(self) -> dict[int, str]:
        """partition number -> member id (the input topics are co-partitioned: one member
        reads a partition number on every input topic)."""
        return {p: member for member, tps in self.members for _, p in tps}


class GroupWatch:
    """Describes the workers' consumer group every GROUP_POLL_S in a thread of its own and
    keeps each change (``views``), so that a run can say when a rebalance started and settled
    and which partitions moved; ``mark`` puts what the harness did on the same clock."""

    def __init__(self, settings: Settings) -> None:
        self.bootstrap = settings.kafka_bootstrap
        self.group = settings.app_id
        self.inputs = list(settings.topics.inputs)
        self.partitions = settings.topic_partitions
        self.started = time.monotonic()
        self.views: list[GroupView] = []
        self.marks: list[tuple[float, str]] = []
        self.names: dict[str, str] = {}  # member id -> m1, m2, ... in order of appearance
        self.errors = 0
        self._lock = threading.RLock()  # show() names members under it (timeline)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="group-watch", daemon=True)
        self._thread.start()

    def _describe(self, admin: Any) -> GroupView:
        described = admin.describe_groups([self.group])[self.group]
        wanted = set(self.inputs)
        members = []
        for m in described.get("members") or ():
            assignment = m.get("member_assignment")
            tps: set[tuple[str, int]] = set()
            if isinstance(assignment, dict):
                for entry in assignment.get("assigned_partitions") or ():
                    if entry["topic"] in wanted:
                        tps.update((entry["topic"], int(p)) for p in entry["partitions"])
            members.append((str(m["member_id"]), frozenset(tps)))
        return GroupView(time.monotonic(), str(described.get("group_state")),
                         tuple(sorted(members)))

    def _run(self) -> None:
        from kafka.admin import KafkaAdminClient

        admin: Any = None
        while not self._stop.is_set():
            try:
                if admin is None:
                    admin = KafkaAdminClient(bootstrap_servers=self.bootstrap.split(","),
                                             client_id="radar-perturb-watch",
                                             request_timeout_ms=5000)
                view: GroupView | None = self._describe(admin)
            except Exception:  # noqa: BLE001 - a broker or coordinator not answering: try again
                self.errors += 1
                view = None
                if admin is not None:
                    with contextlib.suppress(Exception):
                        admin.close()
                    admin = None
            if view is not None:
                with self._lock:
                    last = self.views[-1] if self.views else None
                    if last is None or (last.state, last.members) != (view.state, view.members):
                        self.views.append(view)
                        for member, _ in view.members:
                            self.names.setdefault(member, f"m{len(self.names) + 1}")
            self._stop.wait(GROUP_POLL_S)
        if admin is not None:
            with contextlib.suppress(Exception):
                admin.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def mark(self, what: str) -> float:
        now = time.monotonic()
        with self._lock:
            self.marks.append((now, what))
        return now

    def latest(self) -> GroupView | None:
        with self._lock:
            return self.views[-1] if self.views else None

    def history(self) -> list[GroupView]:
        with self._lock:
            return list(self.views)

    def is_settled(self, view: GroupView, size: int) -> bool:
        return view.settled(size, self.inputs, self.partitions)

    def wait_settled(self, size: int, timeout: float,
                     alive: Callable[[], None] = lambda: None) -> GroupView:
        """Until the group is stable with ``size`` members sharing every input partition;
        ``alive`` raises when a process the run needs has died."""
        deadline = time.monotonic() + timeout
        while True:
            view = self.latest()
            if view is not None and self.is_settled(view, size):
                return view
            alive()
            if time.monotonic() > deadline:
                raise HarnessError(f"the workers' group did not settle with {size} member(s) "
                                   f"in {timeout:.0f}s; last seen: {self.show(view)}")
            time.sleep(GROUP_POLL_S / 2)

    def first_change(self, after: float) -> GroupView | None:
        """The first view recorded after ``after`` (the start of a rebalance, say)."""
        return next((v for v in self.history() if v.t > after), None)

    def name(self, member: str) -> str:
        with self._lock:
            return self.names.get(member, member[-6:])

    def show(self, view: GroupView | None) -> str:
        """``Stable: m1 [0, 1], m2 [2, 3]`` (partition numbers of the input topics)."""
        if view is None:
            return "nothing (the group was never described)"
        parts = []
        for member, tps in view.members:
            numbers = sorted({p for _, p in tps})
            parts.append(f"{self.name(member)} {numbers}")
        return f"{view.state}: {', '.join(parts) or 'no members'}"

    def moves(self, before: GroupView, after: GroupView) -> str:
        """Which partitions changed owner between two views: ``4, 5 m3 -> m1``."""
        old, new = before.owners(), after.owners()
        moved: dict[tuple[str, str], list[int]] = {}
        for p in sorted(set(old) | set(new)):
            if old.get(p) != new.get(p):
                key = (self.name(old[p]) if p in old else "-",
                       self.name(new[p]) if p in new else "-")
                moved.setdefault(key, []).append(p)
        return "; ".join(f"{', '.join(map(str, ps))} {a} -> {b}" for (a, b), ps in moved.items()) \
            or "none"

    def timeline(self) -> list[str]:
        """What the harness did and every state the group went through, in order, in seconds
        since the watch began."""
        with self._lock:
            items = [(t, f"harness: {what}") for t, what in self.marks] + \
                [(v.t, "group " + self.show(v)) for v in self.views]
        return [f"+{t - self.started:.1f}s {line}" for t, line in sorted(items)]

    def sizes(self) -> list[int]:
        """The group's size each time it was seen settled, consecutive repeats once."""
        sizes: list[int] = []
        for v in self.history():
            if v.state == "Stable" and v.members and self.is_settled(v, len(v.members)) \
                    and (not sizes or sizes[-1] != len(v.members)):
                sizes.append(len(v.members))
        return sizes


class Stack:
    """One isolated installation on the harness's broker: its topics, consumer groups, embedded
    database, local folder and web ports, the ``radar store`` that writes the database and the
    ``radar worker`` processes it started (one or several at a time, sharing the partitions as
    one consumer group).

    Each worker running at once has a local folder of its own (``RADAR_LOCAL_DIR``: Faust's
    RocksDB tables live there), as each container has in compose and as Faust's documentation
    asks of workers on one machine: two workers on one folder used to crash at the first
    rebalance, on the lock of a partition's RocksDB directory (``IO error: While lock file:
    .../accounts-state-5.db/LOCK``); a worker now refuses to start on a folder another one
    holds (streams.worker.hold_state_dir). A worker started after one has ended takes over that
    one's folder (a restart finds its RocksDB files). ``shared_local_dir`` gives every worker
    the same folder, to see that refusal."""

    def __init__(self, broker: Settings, root: Path, label: str,
                 extra_env: dict[str, str] | None = None, shared_local_dir: bool = False) -> None:
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
            "RADAR_STORE_PORT": str(free_port()),
            # each worker gets a port of its own when it starts (start_worker)
            "RADAR_WEB_PORT": str(free_port()),
            **(extra_env or {}),
        }
        self.settings = load_settings(self.env)
        self.store: Process | None = None
        self.worker_processes: list[Process] = []
        self.notes: list[str] = []
        self.shared_local_dir = shared_local_dir
        self.group_watch: GroupWatch | None = None
        kafka_local.create_topics(self.settings, say=lambda _: None)

    def full_env(self, env: dict[str, str] | None = None) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
        return {**base, **(env or self.env)}

    @property
    def workers(self) -> list[subprocess.Popen[bytes]]:
        return [p.proc for p in self.worker_processes]

    @property
    def worker(self) -> subprocess.Popen[bytes] | None:
        return self.worker_processes[-1].proc if self.worker_processes else None

    @property
    def running_workers(self) -> list[Process]:
        """The workers started and not ended on purpose (running, unless one died)."""
        return [p for p in self.worker_processes if not p.ended]

    def watch_group(self) -> GroupWatch:
        """Start describing the workers' consumer group (GroupWatch); once per stack."""
        if self.group_watch is None:
            self.group_watch = GroupWatch(self.settings)
        return self.group_watch

    def logs(self, chars: int = 3000) -> str:
        """The tails of every worker's and store's log."""
        logs = sorted(self.dir.glob("worker-*.log")) + sorted(self.dir.glob("store-*.log"))
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in logs)

    def worker_log(self, chars: int = 3000) -> str:
        return self.logs(chars)

    def _launch(self, command: str, env: dict[str, str], count: int) -> Process:
        settings = load_settings(env)
        log = self.dir / f"{command}-{count}.log"
        try:
            proc = launch(command, settings, log, self.full_env(env), cwd=REPO,
                          timeout=START_TIMEOUT_S)
        except LaunchError as exc:
            raise HarnessError(f"{exc}\n{self.logs()}") from exc
        return Process(command, proc, settings, log)

    def start_store(self) -> Process:
        """``radar store`` for the stack (it holds the embedded database and answers /sql)."""
        if self.store is not None and self.store.running:
            raise HarnessError("the stack's store is already running")
        count = len(list(self.dir.glob("store-*.log")))
        self.store = self._launch("store", self.env, count)
        return self.store

    def stop_store(self, sig: int = signal.SIGTERM) -> int:
        """Stop the store (SIGKILL: as a crash would); returns its exit code."""
        if self.store is None or not self.store.running:
            raise HarnessError("no running store to stop")
        return stop(self.store.proc, sig, timeout=STOP_TIMEOUT_S)

    def start_worker(self) -> subprocess.Popen[bytes]:
        """A ``radar worker`` on a web port and in a local folder of its own (see the class);
        the stack's store is started first if it has none running yet (it then keeps running
        across worker kills and restarts)."""
        if self.store is None:
            self.start_store()
        env = {**self.env, "RADAR_WEB_PORT": str(free_port()),
               "RADAR_LOCAL_DIR": str(self._worker_local_dir())}
        process = self._launch("worker", env, len(self.worker_processes))
        self.worker_processes.append(process)
        if self.group_watch is not None:
            self.group_watch.mark(f"{process.name} started (pid {process.proc.pid})")
        return process.proc

    def _worker_local_dir(self) -> Path:
        """The stack's own folder for the first worker (and every worker when shared), else
        the first of local-1, local-2, ... that no running worker uses."""
        if self.shared_local_dir:
            return Path(self.env["RADAR_LOCAL_DIR"])
        busy = {p.settings.local for p in self.worker_processes if p.running}
        slot = 0
        while True:
            folder = Path(self.env["RADAR_LOCAL_DIR"]) if slot == 0 else self.dir / f"local-{slot}"
            if folder not in busy:
                return folder
            slot += 1

    def kill_worker(self, process: Process | None = None) -> None:
        """SIGKILL ``process`` (by default the last worker started that still runs)."""
        if process is None:
            running = [p for p in self.running_workers if p.running]
            process = running[-1] if running else None
        if process is None or not process.running:
            raise HarnessError("no running worker to kill")
        process.ended = True
        if self.group_watch is not None:
            self.group_watch.mark(f"{process.name} killed (SIGKILL)")
        stop(process.proc, signal.SIGKILL, timeout=30)

    def stop_workers(self, processes: Sequence[Process], sig: int = signal.SIGTERM
                     ) -> list[tuple[int, float]]:
        """Signal every one of ``processes`` at once, then wait for each (SIGKILL after
        STOP_TIMEOUT_S); returns each one's exit code and seconds to exit."""
        for p in processes:
            if not p.running:
                raise HarnessError(f"{p.name} is not running (exit {p.proc.returncode}):\n"
                                   f"{self.logs()}")
        signalled = time.monotonic()
        for p in processes:
            p.ended = True
            p.proc.send_signal(sig)
        if self.group_watch is not None:
            self.group_watch.mark(f"{', '.join(p.name for p in processes)} sent "
                                  f"{signal.Signals(sig).name}")
        done = []
        for p in processes:
            code = stop(p.proc, sig, timeout=STOP_TIMEOUT_S)
            done.append((code, time.monotonic() - signalled))
        return done

    def publish_file(self, path: Path) -> None:
        done = subprocess.run(radar_command("publish", str(path), "-q"), env=self.full_env(),
                              cwd=REPO, capture_output=True, text=True, check=False, timeout=600)
        if done.returncode != 0:
            raise HarnessError(f"radar publish exited with {done.returncode}:\n{done.stdout}"
                               f"{done.stderr}")

    def check_running(self, worker: bool = True) -> None:
        """The store (and every worker not ended on purpose) must still run: a process that
        died is a failed run, said with its exit code and the logs' tails."""
        processes = [self.store] + (self.running_workers if worker else [])
        if worker and not self.running_workers:
            raise HarnessError(f"no worker was started:\n{self.logs()}")
        for p in processes:
            if p is None:
                raise HarnessError("no store was started")
            if not p.running:
                raise HarnessError(f"radar {p.command} is not running (exit "
                                   f"{p.proc.returncode}):\n{self.logs()}")

    def _end_offsets(self, topics: list[str], deadline: float) -> dict[tuple[str, int], int]:
        from kafka.errors import KafkaError

        while True:  # a broker just resumed may answer metadata without brokers for a moment
            try:
                return end_offsets(self.settings.kafka_bootstrap, topics)
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def _wait_committed(self, group: str, who: str, ends: dict[tuple[str, int], int],
                        deadline: float, timeout: float) -> None:
        """Until ``group`` has committed up to ``ends``, the stack's processes alive."""
        from kafka.errors import KafkaError

        last_report = time.monotonic()
        while True:
            self.check_running()
            try:
                done = committed_offsets(self.settings.kafka_bootstrap, group)
            except KafkaError:
                done = {}
            behind = sum(max(0, end - max(done.get(tp, 0), 0)) for tp, end in ends.items())
            if behind == 0:
                return
            now = time.monotonic()
            if now > deadline:
                stuck = ", ".join(f"{t.rsplit('.', 1)[-1]}:{p} {max(done.get((t, p), 0), 0)}/{end}"
                                  for (t, p), end in sorted(ends.items())
                                  if end > max(done.get((t, p), 0), 0))
                raise HarnessError(f"{who} still had {behind} message(s) to commit after "
                                   f"{timeout:.0f}s (topic:partition committed/end: {stuck})"
                                   f":\n{self.logs()}")
            if now - last_report > 15:
                say_on_stderr(f"  {self.label}: {who}: {behind:,} message(s) not committed yet")
                last_report = now
            time.sleep(0.3)

    def wait_stored_once(self, deadline: float, timeout: float) -> dict[tuple[str, int], int]:
        """Until the store's group has committed every message now on the topics it reads;
        returns those end offsets."""
        ends = self._end_offsets(stored_topics(self.settings), deadline)
        self._wait_committed(self.settings.store_group, "the store", ends, deadline, timeout)
        return ends

    def wait_processed(self, timeout: float) -> None:
        """Caught up, as ``streams.launch.wait_until_stored`` says: the workers' group has
        committed every message now on the input topics (a worker commits a message once its
        dead letter, signals and state are on Kafka), then the store's group every message of
        the inputs, dead letters, signals and account states (it commits after the insert)."""
        deadline = time.monotonic() + timeout
        inputs = self._end_offsets(self.settings.topics.inputs, deadline)
        self._wait_committed(self.settings.app_id, "the worker", inputs, deadline, timeout)
        self.wait_stored_once(deadline, timeout)

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
            self.check_running()
            if time.monotonic() > deadline:
                raise HarnessError(f"the worker committed nothing more in {timeout:.0f}s:\n"
                                   f"{self.logs()}")
            time.sleep(0.2)
        return done

    def wait_leaders(self, timeout: float) -> None:
        """Until every partition of the topics the stack reads has a leader (after a broker
        restart)."""
        from kafka.admin import KafkaAdminClient
        from kafka.errors import KafkaError

        topics = stored_topics(self.settings)
        deadline = time.monotonic() + timeout
        while True:
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap.split(","),
                                         client_id="radar-perturb", request_timeout_ms=5000)
                try:
                    described = admin.describe_topics(topics)
                finally:
                    admin.close()
                ready = len(described) == len(topics) and all(
                    t.get("error_code", 0) == 0 and t.get("partitions") and all(
                        p.get("error_code", 0) == 0 and p.get("leader_id", -1) >= 0
                        for p in t["partitions"])
                    for t in described)
            except KafkaError:
                ready = False
            if ready:
                return
            if time.monotonic() > deadline:
                raise HarnessError(f"the stack's topics had no leaders {timeout:.0f}s after the "
                                   "broker came back")
            time.sleep(0.5)

    def query(self, sql: str) -> list[Sequence[Any]]:
        """Through the running store, which holds the embedded database: never opened here."""
        state = read_store_state(self.settings)
        if state is None:
            raise HarnessError(f"no running store to query:\n{self.logs()}")
        try:
            answer = post_to_store(str(state["url"]), "/sql", {"sql": sql}, None,
                                   self.settings.sql_max_seconds + QUERY_MARGIN_S)
        except (StoreRefused, StoreUnreachable) as exc:
            raise HarnessError(f"the store did not answer {sql!r}: {exc}") from exc
        return [list(r) for r in answer["rows"]]

    def metrics(self, command: str, process: Process | None = None) -> str | None:
        """The /metrics text of a worker (``worker``: the engine's counters: late,
        redelivered, rerouted, held events, idle releases; by default the last one started
        that is not ended) or of the store (``store``: rows written, inserts, the lag of the
        topics it stores); None when it does not answer."""
        if command == "store":
            settings = self.store.settings if self.store is not None else self.settings
        elif process is not None:
            settings = process.settings
        elif self.running_workers:
            settings = self.running_workers[-1].settings
        else:
            return None
        try:
            with urllib.request.urlopen(metrics_url(settings, command), timeout=5) as r:
                return str(r.read().decode())
        except OSError:
            return None

    def metric(self, command: str, name: str) -> float | None:
        """A store metric, or the sum of a worker metric over the workers still running (a
        killed or stopped worker's counts went with it); None when none answers."""
        if command == "store":
            text = self.metrics(command)
            return None if text is None else sum_metric(text, name)
        values = [v for p in self.running_workers
                  if (text := self.metrics(command, p)) is not None
                  and (v := sum_metric(text, name)) is not None]
        return sum(values) if values else None

    def late_events(self) -> float | None:
        return self.metric("worker", "radar_late_events_total")

    def result(self, started: float) -> RunResult:
        """The open signals once they stay put for SETTLE_SECONDS: the store has committed
        everything on its topics, twice that long apart, with the same end offsets and the same
        open signals each time (a worker may still emit after its last commit of an input)."""
        deadline = time.monotonic() + RESULT_TIMEOUT_S
        ends = self.wait_stored_once(deadline, RESULT_TIMEOUT_S)
        rows = self.query(OPEN_SIGNALS_SQL)
        while True:
            time.sleep(SETTLE_SECONDS)
            again_ends = self.wait_stored_once(deadline, RESULT_TIMEOUT_S)
            again = self.query(OPEN_SIGNALS_SQL)
            if again_ends == ends and sorted(map(tuple, again)) == sorted(map(tuple, rows)):
                break
            ends, rows = again_ends, again
        events = int(self.query(EVENTS_SQL)[0][0])
        event_rows, event_ids = (int(v) for v in self.query(EVENT_ROWS_SQL)[0])
        signal_rows, signal_ids = (int(v) for v in self.query(SIGNAL_ROWS_SQL)[0])
        signals = {str(r[0]): Signal(str(r[1]), str(r[2]), str(r[3])) for r in again}
        return RunResult(self.label, signals, events,
                         time.perf_counter() - started, self.late_events(), list(self.notes),
                         event_rows=event_rows, event_ids=event_ids, signal_rows=signal_rows,
                         signal_ids=signal_ids,
                         group_sizes=self.group_watch.sizes() if self.group_watch else [])

    def close(self, remove: bool) -> None:
        """The workers first (the store stores what they sent), then the store."""
        if self.group_watch is not None:
            self.group_watch.stop()
        for p in self.worker_processes:
            if p.running:
                stop(p.proc, signal.SIGTERM, timeout=STOP_TIMEOUT_S)
        if self.store is not None and self.store.running:
            stop(self.store.proc, signal.SIGTERM, timeout=STOP_TIMEOUT_S)
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)
