"""Perturbation harness (issue 11, SPEC section 9): the same world through the real stack under a
named perturbation, its open signal ids compared with those of an in-order replay.

    .venv/bin/python scripts/perturb.py [PERTURBATION ...] [--accounts 40 --days 120 --seed 7]
        [--port 28092] [--rate 500] [--json FILE|-] [--keep]

What one run is: a fresh installation on a local broker of the harness's own (``streams.kafka_local``
on ``--port``, its jars and data under a temporary folder) — fresh topics and consumer groups, a
real ``radar store`` subprocess with embedded ClickHouse in its own folder, started before the
first worker and running until the run ends, and real ``radar worker`` subprocesses (the signal
engine: Kafka in, Kafka out) — fed the world of ``radar simulate`` in some way, then left until
everything is processed and stored (``streams.launch.wait_until_stored``): the workers' group
has committed every input message (a worker commits a message once its dead letter, signals and
state are on Kafka), then the store's group every message of the inputs, dead letters, signals
and account states (the store commits after the insert). The open signal ids are then read from
ClickHouse through the store (:data:`OPEN_SIGNALS_SQL`, the one place that says what "open"
means) and compared with the reference's.

The reference is the in-order replay: ``radar publish`` the whole world, then start the store
and the worker.
Perturbations (the names the command line takes):

- ``replay``: the reference again, same settings: is the reference deterministic?
- ``replay-1000``: the reference with ``RADAR_BATCH_MAX_ROWS=1000`` (the minimum; default 5000):
  the same ids whatever the fetch and batch boundaries?
- ``live``: the worker first, then ``radar publish`` (what ``radar demo`` does); run
  ``--live-repeats`` times (3), each a row.
- ``slow-producer``: the worker first; a keyed producer at ``--rate`` events/s (500).
- ``skewed``: the worker first, at ``--rate``; ad impressions (``--skew-type``) held back and
  published in batches once the other types have advanced ``--skew-hours`` (20) of event time
  past the oldest held one: up to 20 h behind, as ad-platform reports arrive.
- ``topic-by-topic``: the worker first; each type's topic published whole, one after the other,
  ``--topic-gap`` seconds (5) apart: all within the 30 s idle time.
- ``no-keys``: publish then start, as the reference, but the events without a key (random
  partitions); ``account_profile`` keeps its key (its topic is compacted: the broker refuses a
  keyless message).
- ``librdkafka``: publish then start, as the reference, with confluent-kafka's producer and its
  default partitioner (``consistent_random``: CRC32 of the key), keyed by account id.
- ``mixed-partitioners``: publish then start, two clients at once: ad impressions and content
  interactions through librdkafka (CRC32), the other types through kafka-python (murmur2,
  Kafka's default), all keyed by account id, so an account's events are on two partitions.
- ``broker-outage``: the worker first, the world published at once; as soon as the worker has
  committed part of it (it is in the middle of its backlog) the broker is stopped for
  ``--outage-seconds`` (60; ``--outage-mode pause`` SIGSTOPs it instead), then started again.
- ``kill9``: the worker first, at ``--rate``; the worker is killed with SIGKILL at 1/3 and 2/3
  of the stream and restarted each time (the producer waits until the new worker commits); the
  store keeps running.

Several workers (issue 12): they share the partitions as one consumer group (the same
``RADAR_APP_ID``), each with its own web port and local folder (see ``perturb_stack.Stack``).
The workers' group is described every half second (``perturb_stack.GroupWatch``): each run's
notes say when the group settled, with which partitions on which member (m1, m2, ... in order
of appearance), and which partitions moved when.

- ``workers3``: three workers started one after the other, then ``radar publish`` at once (as
  ``live``).
- ``scale1to3to1``: one worker, at ``--rate``; at 1/3 of the stream two more start and the
  producer waits until the group has settled with three; at 2/3 those two are stopped with
  SIGTERM (they leave the group) and the producer waits until the first one holds every
  partition again.
- ``kill9of3``: three workers, settled, then at ``--rate``; at 1/2 of the stream the second one
  is killed with SIGKILL and the producer goes on. The group hands that worker's partitions to
  the two others only once its coordinator gives up on it: ``RADAR_SESSION_TIMEOUT_SECONDS``
  (60 s; ``--session-seconds``) after its last heartbeat. ``kill9`` waits that long too.
- ``no-keys3``: three workers, settled, then the world published without keys (as
  ``no-keys``): most events land on a partition that another worker owns than their account's,
  and reach their owner through the workers' rerouted topic.
- ``no-keys3-forming``: as ``no-keys3``, but the world is published while the group forms
  (the rebalances happen while events flow, which is when most of the faults of issue 12
  showed).

Pass = the same set of open signal ids and the same number of events stored as the reference;
for the several-worker runs also, without FINAL, as many rows in ``events`` as distinct event
ids, as many as the reference stored: no event lost or stored twice.
Prints one row per run (stdout), progress on stderr; ``--json`` for machines. Exit code 0 only
when every run matched, 1 when one did not, 2 when the harness itself failed. Everything it starts
(broker, stores, workers, temporary folders) is stopped and removed, on Ctrl-C too.

From Python (e.g. an integration test, with the session's broker)::

    sys.path.insert(0, str(REPO / "scripts"))
    from perturb import Harness, Options

    with Harness(Options(accounts=20, days=90), broker=broker_settings) as harness:
        [comparison] = harness.run("no-keys")
        assert comparison.matched, comparison.describe()
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from perturb_stack import (  # noqa: E402
    OPEN_SIGNALS_SQL,
    REPO,
    GroupView,
    GroupWatch,
    HarnessError,
    KafkaPythonProducer,
    LibrdkafkaProducer,
    MixedProducer,
    Producer,
    Record,
    RunResult,
    Signal,
    Stack,
    feed,
    load_world,
    radar_command,
    say_on_stderr,
)

from streams import kafka_local  # noqa: E402
from streams.launch import committed_offsets, end_offsets  # noqa: E402
from streams.settings import Settings, load_settings  # noqa: E402

__all__ = ["OPEN_SIGNALS_SQL", "PERTURBATIONS", "Comparison", "Harness", "HarnessError", "Options",
           "RunResult", "Signal", "run_perturbation"]

PERTURBATIONS: tuple[str, ...] = (
    "replay", "replay-1000", "live", "slow-producer", "skewed", "topic-by-topic", "no-keys",
    "librdkafka", "mixed-partitioners", "broker-outage", "kill9",
    "workers3", "scale1to3to1", "kill9of3", "no-keys3", "no-keys3-forming",
)
# runs whose ``events`` rows must be exact without FINAL too: only workers change in them (the
# store runs throughout, on a broker that stays up), so each event is stored once
SEVERAL_WORKERS = frozenset({"workers3", "scale1to3to1", "kill9of3", "no-keys3",
                             "no-keys3-forming"})
EXACT_ROWS = SEVERAL_WORKERS
GROUP_SETTLE_TIMEOUT_S = 120.0  # for the group to settle after workers start or stop
# after a SIGKILL: the session timeout (at most 60 s here) and then a rebalance
GROUP_EXPIRY_TIMEOUT_S = 240.0
# mixed-partitioners: the types a librdkafka client sends (web and ad sources); the rest go
# through kafka-python, whose partitioner is Kafka's default
LIBRDKAFKA_TYPES = frozenset({"ad_impression", "content_interaction"})
SKEWABLE_TYPES: tuple[str, ...] = ("ad_impression", "content_interaction", "outreach_reply",
                                   "role_change")
# the order topic-by-topic publishes the types in (profiles first, as a CRM export would be)
TOPIC_ORDER: tuple[str, ...] = (
    "account_profile", "ad_impression", "content_interaction", "outreach_reply", "role_change",
)
IDLE_SOURCE_SECONDS = 30.0  # SPEC section 9's default RADAR_IDLE_SOURCE_SECONDS
TYPES_SHOWN = 4


@dataclass(frozen=True)
class Options:
    accounts: int = 40
    days: int = 120
    seed: int = 7
    # the harness's own broker (controller on port + 1), below Linux's ephemeral range: the
    # outage stops it, and a client reconnecting meanwhile could take a port in that range
    port: int = 28092
    partitions: int = 6
    rate: float = 500.0  # events/s of the paced producers
    skew_hours: float = 20.0
    skew_type: str = "ad_impression"  # the type skewed holds back
    topic_gap: float = 5.0
    outage_seconds: float = 60.0
    outage_mode: str = "stop"  # stop: kafka_local.down/up; pause: SIGSTOP/SIGCONT
    kills: int = 2
    live_repeats: int = 3
    # the workers' RADAR_IDLE_SOURCE_SECONDS (None: its default, 30): a shorter one makes each
    # run shorter (a source that never delivers is waited for that long after start)
    idle_seconds: float | None = None
    # the workers' RADAR_SESSION_TIMEOUT_SECONDS (None: its default, 60): a killed worker's
    # partitions wait that long for the group to drop it
    session_seconds: float | None = None
    timeout: float = 600.0  # per run, for everything to be processed and stored
    keep: bool = False  # keep the temporary folder (worker and store logs, databases)
    # every worker of a run in one local folder (RADAR_LOCAL_DIR), as on one machine without
    # per-worker folders: see perturb_stack.Stack
    shared_local_dir: bool = False


# --- perturbed deliveries ----------------------------------------------------------------------


def skewed(records: Sequence[Record], held: str, lag: timedelta) -> list[Record]:
    """Events of type ``held`` held back and released in one batch once the others' event time
    has advanced ``lag`` past the oldest held one; the others in their own order."""
    out: list[Record] = []
    waiting: list[Record] = []
    others_time: datetime | None = None
    for r in records:
        if r.type == held:
            waiting.append(r)
            continue
        others_time = r.occurred_at if others_time is None else max(others_time, r.occurred_at)
        if waiting and others_time - waiting[0].occurred_at >= lag:
            out += waiting
            waiting = []
        out.append(r)
    return out + waiting


def by_topic(records: Sequence[Record]) -> list[list[Record]]:
    order = {t: i for i, t in enumerate(TOPIC_ORDER)}
    groups: list[list[Record]] = [[] for _ in TOPIC_ORDER]
    for r in records:
        groups[order[r.type]].append(r)
    return [g for g in groups if g]


# --- comparison -----------------------------------------------------------------------------


@dataclass
class Comparison:
    perturbation: str
    label: str
    reference: RunResult
    run: RunResult

    @property
    def missing(self) -> dict[str, Signal]:
        return {i: x for i, x in self.reference.signals.items() if i not in self.run.signals}

    @property
    def extra(self) -> dict[str, Signal]:
        return {i: x for i, x in self.run.signals.items() if i not in self.reference.signals}

    @property
    def rows_exact(self) -> bool:
        """Without FINAL, one row per event id and as many ids as the reference stored."""
        return self.run.event_rows == self.run.event_ids == self.reference.events

    @property
    def matched(self) -> bool:
        return not self.missing and not self.extra and self.run.events == self.reference.events \
            and (self.rows_exact or self.perturbation not in EXACT_ROWS)

    def by_type(self) -> list[tuple[str, int, int]]:
        """(type, missing, extra), the largest differences first."""
        missing = Counter(x.type for x in self.missing.values())
        extra = Counter(x.type for x in self.extra.values())
        types = set(missing) | set(extra)
        return sorted(((t, missing[t], extra[t]) for t in types),
                      key=lambda x: (-(x[1] + x[2]), x[0]))

    def describe(self) -> str:
        kinds = ", ".join(f"{t} -{m}/+{e}" for t, m, e in self.by_type()[:TYPES_SHOWN])
        more = len(self.by_type()) - TYPES_SHOWN
        return (f"{self.label}: {len(self.run.signals)} open signals against "
                f"{len(self.reference.signals)}, {len(self.missing)} missing, {len(self.extra)} "
                f"extra{' (' + kinds + (f', {more} more types' if more > 0 else '') + ')' if kinds else ''}; "
                f"events {self.run.events} against {self.reference.events} (without FINAL: "
                f"{self.run.event_rows} rows, {self.run.event_ids} ids)")

    def as_json(self) -> dict[str, Any]:
        return {
            "perturbation": self.perturbation, "label": self.label, "matched": self.matched,
            "open_reference": len(self.reference.signals), "open_run": len(self.run.signals),
            "missing": len(self.missing), "extra": len(self.extra),
            "by_type": {t: {"missing": m, "extra": e} for t, m, e in self.by_type()},
            "events_reference": self.reference.events, "events_run": self.run.events,
            "event_rows_run": self.run.event_rows, "event_ids_run": self.run.event_ids,
            "signal_rows_run": self.run.signal_rows, "signal_ids_run": self.run.signal_ids,
            "group_sizes": self.run.group_sizes, "group_timeline": self.run.group_timeline,
            "late_events": self.run.late_events, "seconds": round(self.run.seconds, 1),
            "notes": self.run.notes,
            "missing_ids": {i: x.as_json() for i, x in sorted(self.missing.items())},
            "extra_ids": {i: x.as_json() for i, x in sorted(self.extra.items())},
        }


HEADER = ("perturbation", "open ref", "open run", "missing", "extra", "events ref", "events run",
          "rows/ids", "late ignored", "seconds", "result", "by type (missing/extra)")


def table_rows(comparisons: Sequence[Comparison]) -> list[list[str]]:
    rows = []
    for c in comparisons:
        kinds = ", ".join(f"{t} -{m}/+{e}" for t, m, e in c.by_type()[:TYPES_SHOWN])
        if len(c.by_type()) > TYPES_SHOWN:
            kinds += ", ..."
        late = "-" if c.run.late_events is None else f"{c.run.late_events:,.0f}"
        rows.append([c.label, f"{len(c.reference.signals):,}", f"{len(c.run.signals):,}",
                     f"{len(c.missing):,}", f"{len(c.extra):,}", f"{c.reference.events:,}",
                     f"{c.run.events:,}", f"{_count(c.run.event_rows)}/{_count(c.run.event_ids)}",
                     late, f"{c.run.seconds:.0f}",
                     "match" if c.matched else "DIFFERS", kinds or "-"])
    return rows


def _count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def render_table(comparisons: Sequence[Comparison], markdown: bool = False) -> str:
    rows = [list(HEADER), *table_rows(comparisons)]
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(HEADER)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows[1:]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


# --- the harness ----------------------------------------------------------------------------


class Harness:
    """Owns a temporary folder, the broker (unless one is given) and the simulated world; runs
    perturbations against a reference computed once."""

    def __init__(self, options: Options | None = None, broker: Settings | None = None,
                 say: Callable[[str], None] = say_on_stderr) -> None:
        self.options = options or Options()
        self.say = say
        self._given_broker = broker
        self.broker: Settings | None = broker
        self.root: Path | None = None
        self.world: Path | None = None
        self.records: list[Record] = []
        self._reference: RunResult | None = None
        self._started_broker = False
        self._stacks: list[Stack] = []

    # lifecycle

    def __enter__(self) -> Harness:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def start(self) -> None:
        o = self.options
        self.root = Path(tempfile.mkdtemp(prefix="radar-perturb-"))
        if self.broker is None:
            self.broker = load_settings({
                "RADAR_KAFKA_PORT": str(o.port), "RADAR_KAFKA_CONTROLLER_PORT": str(o.port + 1),
                "RADAR_TOPIC_PARTITIONS": str(o.partitions),
                "RADAR_LOCAL_DIR": str(self.root / "broker"),
            })
            if kafka_local.port_answers(o.port):
                raise HarnessError(f"something already answers on port {o.port}: choose another "
                                   "with --port (the harness runs a broker of its own)")
            self.say(f"starting a broker on 127.0.0.1:{o.port} (data in {self.root / 'broker'})")
            self._started_broker = True
            kafka_local.up(self.broker, say=self.say)
        self.world = self.root / "world.jsonl"
        self.say(f"simulating {o.accounts} accounts over {o.days} days (seed {o.seed})")
        done = subprocess.run(
            radar_command("simulate", "--accounts", str(o.accounts), "--days", str(o.days),
                          "--seed", str(o.seed), "--out", str(self.world), "-q"),
            cwd=REPO, capture_output=True, text=True, check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("RADAR_")},
        )
        if done.returncode != 0:
            raise HarnessError(f"radar simulate failed:\n{done.stdout}{done.stderr}")
        self.say(done.stdout.strip())
        self.records = load_world(self.world)

    def close(self) -> None:
        for stack in self._stacks:
            stack.close(remove=False)
        self._stacks.clear()
        if self._started_broker and self.broker is not None:
            pid = kafka_local.read_pid(kafka_local.broker_paths(self.broker))
            if pid is not None:
                os.kill(pid, signal.SIGCONT)  # a paused broker must run to stop
            kafka_local.down(self.broker, say=lambda _: None)
            self._started_broker = False
        if self.root is not None and not self.options.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        elif self.root is not None:
            self.say(f"kept {self.root}")

    # runs

    @contextlib.contextmanager
    def _stack(self, label: str, extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
        assert self.broker is not None and self.root is not None, "the harness is not started"
        o = self.options
        chosen = {name: f"{value:g}" for name, value in (
            ("RADAR_IDLE_SOURCE_SECONDS", o.idle_seconds),
            ("RADAR_SESSION_TIMEOUT_SECONDS", o.session_seconds)) if value is not None}
        extra_env = {**chosen, **(extra_env or {})}
        stack = Stack(self.broker, self.root, label, extra_env,
                      shared_local_dir=self.options.shared_local_dir)
        self._stacks.append(stack)
        try:
            yield stack
        finally:
            stack.close(remove=not self.options.keep)
            self._stacks.remove(stack)

    def _replay(self, label: str, extra_env: dict[str, str] | None = None) -> RunResult:
        assert self.world is not None
        started = time.perf_counter()
        with self._stack(label, extra_env) as stack:
            stack.publish_file(self.world)
            stack.start_worker()
            stack.wait_processed(self.options.timeout)
            return stack.result(started)

    def reference(self) -> RunResult:
        if self._reference is None:
            self.say("reference: radar publish the whole world, then start the store and the "
                     "worker")
            self._reference = self._replay("reference")
            self.say(f"reference: {len(self._reference.signals):,} open signals, "
                     f"{self._reference.events:,} events, {self._reference.seconds:.0f}s")
        return self._reference

    def run(self, perturbation: str) -> list[Comparison]:
        """Run one named perturbation (``live`` as many times as ``live_repeats``) and compare
        each run with the reference."""
        if perturbation not in PERTURBATIONS:
            raise ValueError(f"unknown perturbation {perturbation!r}; known: {', '.join(PERTURBATIONS)}")
        reference = self.reference()
        repeats = self.options.live_repeats if perturbation == "live" else 1
        comparisons = []
        for n in range(1, repeats + 1):
            label = f"{perturbation}#{n}" if repeats > 1 else perturbation
            self.say(f"{label}: running")
            result = self._run_one(perturbation, label)
            comparison = Comparison(perturbation, label, reference, result)
            self.say(("match: " if comparison.matched else "DIFFERS: ") + comparison.describe())
            comparisons.append(comparison)
        return comparisons

    def _run_one(self, name: str, label: str) -> RunResult:
        if name == "replay":
            return self._replay(label)
        if name == "replay-1000":
            return self._replay(label, {"RADAR_BATCH_MAX_ROWS": "1000"})
        assert self.world is not None and self.broker is not None
        started = time.perf_counter()
        with self._stack(label) as stack:
            try:
                return self._perturbed(name, label, stack, started)
            except HarnessError as exc:
                if stack.group_watch is None:
                    raise
                raise HarnessError(f"{exc}\nthe workers' group, as seen:\n" +
                                   "\n".join(stack.group_watch.timeline())) from exc

    def _perturbed(self, name: str, label: str, stack: Stack, started: float) -> RunResult:
        o = self.options
        assert self.world is not None
        if name in ("no-keys", "librdkafka", "mixed-partitioners"):
            # the reference's order (publish, then start), another producer
            producer: Producer
            if name == "no-keys":
                producer = KafkaPythonProducer(stack.settings, keys="none")
            elif name == "librdkafka":
                producer = LibrdkafkaProducer(stack.settings)
            else:
                producer = MixedProducer(stack.settings, LIBRDKAFKA_TYPES)
                stack.notes.append(f"{', '.join(sorted(LIBRDKAFKA_TYPES))} through librdkafka "
                                   "(CRC32), the other types through kafka-python (murmur2)")
            try:
                feed(producer, self.records)
            finally:
                producer.close()
            stack.start_worker()
        elif name == "live":
            stack.start_worker()
            stack.publish_file(self.world)
        elif name in ("workers3", "no-keys3", "no-keys3-forming"):
            watch = stack.watch_group()
            first = time.monotonic()
            for _ in range(3):
                stack.start_worker()
            if name == "workers3":
                stack.publish_file(self.world)
                stack.notes.append("3 workers started one after the other, then radar publish")
            else:  # most events land on a partition another worker owns than their account's
                settle = name == "no-keys3"
                if settle:
                    watch.wait_settled(3, GROUP_SETTLE_TIMEOUT_S, stack.check_running)
                keyless = KafkaPythonProducer(stack.settings, keys="none")
                try:
                    feed(keyless, self.records)
                finally:
                    keyless.close()
                stack.notes.append("3 workers started one after the other, "
                                   f"{'settled, then' if settle else 'while'} the world "
                                   "published without keys")
            settled = watch.wait_settled(3, GROUP_SETTLE_TIMEOUT_S, stack.check_running)
            stack.notes.append(f"group settled {settled.t - first:.1f}s after the first worker "
                               f"was started: {watch.show(settled)}")
        else:
            if name in SEVERAL_WORKERS:
                stack.watch_group()
            stack.start_worker()
            producer = KafkaPythonProducer(stack.settings)
            try:
                self._paced(name, stack, producer)
            finally:
                producer.close()
        stack.wait_processed(o.timeout)
        result = stack.result(started)
        if stack.group_watch is not None:
            result.group_timeline = stack.group_watch.timeline()
            self.say(f"  {label}: the workers' group, as seen:\n    " +
                     "\n    ".join(result.group_timeline))
        return result

    def _paced(self, name: str, stack: Stack, producer: Producer) -> None:
        o = self.options
        records: list[Record] = self.records
        n = len(records)
        hooks: dict[int, Callable[[], None]] = {}
        rate: float | None = o.rate
        if name == "skewed":
            records = skewed(records, o.skew_type, timedelta(hours=o.skew_hours))
            stack.notes.append(f"{o.skew_type} up to {o.skew_hours:g} h behind, {o.rate:g}/s")
        elif name == "topic-by-topic":
            groups = by_topic(records)
            records = [r for g in groups for r in g]
            rate = None
            if o.topic_gap * (len(groups) - 1) >= IDLE_SOURCE_SECONDS:
                self.say(f"warning: {len(groups)} topics {o.topic_gap:g}s apart take longer than "
                         f"the {IDLE_SOURCE_SECONDS:g}s idle time")
            at = 0
            for g in groups[:-1]:
                at += len(g)
                hooks[at] = _sleeper(o.topic_gap)
            stack.notes.append(f"{len(groups)} topics one after the other, {o.topic_gap:g}s apart")
        elif name == "slow-producer":
            stack.notes.append(f"{o.rate:g} events/s")
        elif name == "broker-outage":
            # the whole world at once, then the outage as soon as the worker has committed
            # something: it is then in the middle of its backlog, events held for reordering
            feed(producer, records)
            committed = stack.wait_progress(0, o.timeout)
            stack.notes.append(f"broker {o.outage_mode} once the worker had committed "
                               f"{committed:,} of {n:,}")
            self._outage(stack)
            return
        elif name == "scale1to3to1":
            watch = stack.watch_group()
            watch.wait_settled(1, GROUP_SETTLE_TIMEOUT_S, stack.check_running)
            hooks[n // 3] = self._scale_up(stack, watch, n // 3)
            hooks[2 * n // 3] = self._scale_down(stack, watch, 2 * n // 3)
            stack.notes.append(f"1 worker, 2 more at event {n // 3:,}, those 2 stopped (SIGTERM) "
                               f"at event {2 * n // 3:,} of {n:,}, {o.rate:g}/s")
        elif name == "kill9of3":
            watch = stack.watch_group()
            for _ in range(2):  # the first was started with the stack's run
                stack.start_worker()
            settled = watch.wait_settled(3, GROUP_SETTLE_TIMEOUT_S, stack.check_running)
            stack.notes.append(f"3 workers settled {settled.t - watch.started:.1f}s after the "
                               f"first was started: {watch.show(settled)}")
            killed: list[tuple[float, dict[tuple[str, int], int]]] = []
            hooks[n // 2] = self._kill_one_of(stack, watch, n // 2, killed)
            stack.notes.append(f"worker-1 killed (SIGKILL) at event {n // 2:,} of {n:,}, "
                               f"{o.rate:g}/s, the producer going on")
            feed(producer, records, rate=rate, hooks=hooks)
            self._after_kill(stack, watch, killed)
            return
        elif name == "kill9":
            at_events = [n * k // (o.kills + 1) for k in range(1, o.kills + 1)]
            for at in at_events:
                hooks[at] = self._killer(stack, at)
            stack.notes.append(f"worker killed (SIGKILL) at events {', '.join(f'{a:,}' for a in at_events)}"
                               f" of {n:,}, {o.rate:g}/s")
        else:
            raise ValueError(name)
        feed(producer, records, rate=rate, hooks=hooks)

    def _outage(self, stack: Stack) -> None:
        o = self.options
        assert self.broker is not None
        paths = kafka_local.broker_paths(self.broker)
        if o.outage_mode == "pause":
            pid = kafka_local.read_pid(paths)
            if pid is None:
                raise HarnessError("the broker's pid is unknown: it cannot be paused")
            self.say(f"  {stack.label}: pausing the broker (SIGSTOP) for {o.outage_seconds:g}s")
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(o.outage_seconds)
            finally:
                os.kill(pid, signal.SIGCONT)
            stack.notes.append(f"broker paused for {o.outage_seconds:g}s")
            return
        self.say(f"  {stack.label}: stopping the broker for {o.outage_seconds:g}s")
        stopped = time.monotonic()
        kafka_local.down(self.broker, say=lambda _: None)
        try:
            time.sleep(max(0.0, o.outage_seconds - (time.monotonic() - stopped)))
        finally:
            self._restart_broker()
        stack.wait_leaders(120)
        down_for = time.monotonic() - stopped
        stack.notes.append(f"broker unreachable for {down_for:.0f}s (stop, wait, start)")
        self.say(f"  {stack.label}: broker back after {down_for:.0f}s")

    def _restart_broker(self, attempts: int = 30) -> None:
        """Start the stopped broker again. Its port may be taken for a while: a client
        reconnecting while it was down can be given the broker's port as its own when that port
        is in the ephemeral range (a TCP self-connection), until it gives up that connection.
        (Once, in CI, the port stayed taken for more than 30 s: the attempts now span 90 s.)"""
        assert self.broker is not None
        for attempt in range(1, attempts + 1):
            try:
                kafka_local.up(self.broker, say=lambda _: None)
                return
            except kafka_local.LocalKafkaError as exc:
                if attempt == attempts:
                    raise
                self.say(f"  the broker did not start again ({str(exc).splitlines()[0]}); "
                         f"retrying in 3 s")
                time.sleep(3)

    def _scale_up(self, stack: Stack, watch: GroupWatch, at: int) -> Callable[[], None]:
        def up() -> None:
            before = watch.latest()
            self.say(f"  {stack.label}: 2 more workers at event {at:,}")
            asked = time.monotonic()
            stack.start_worker()
            stack.start_worker()
            ready = time.monotonic()
            settled = watch.wait_settled(3, GROUP_SETTLE_TIMEOUT_S, stack.check_running)
            began = watch.first_change(asked)
            stack.notes.append(
                f"scale up: the 2 workers answered {ready - asked:.1f}s after the first was "
                f"started; the group began to rebalance at +{_since(began, asked)} and settled "
                f"at +{settled.t - asked:.1f}s ({watch.show(settled)}; moved: "
                f"{watch.moves(before, settled) if before else '?'})")

        return up

    def _scale_down(self, stack: Stack, watch: GroupWatch, at: int) -> Callable[[], None]:
        def down() -> None:
            before = watch.latest()
            leaving = stack.running_workers[1:]  # the two the scale up started
            self.say(f"  {stack.label}: SIGTERM {', '.join(p.name for p in leaving)} at event "
                     f"{at:,}")
            asked = time.monotonic()
            exits = stack.stop_workers(leaving, signal.SIGTERM)
            settled = watch.wait_settled(1, GROUP_SETTLE_TIMEOUT_S, stack.check_running)
            began = watch.first_change(asked)
            stopped = ", ".join(f"{p.name} exited {code} after {secs:.1f}s"
                                for p, (code, secs) in zip(leaving, exits, strict=True))
            stack.notes.append(
                f"scale down: {stopped}; "
                f"the group began to rebalance at +{_since(began, asked)} and settled at "
                f"+{settled.t - asked:.1f}s ({watch.show(settled)}; moved: "
                f"{watch.moves(before, settled) if before else '?'})")

        return down

    def _kill_one_of(self, stack: Stack, watch: GroupWatch, at: int,
                     killed: list[tuple[float, dict[tuple[str, int], int]]]
                     ) -> Callable[[], None]:
        def kill() -> None:
            victim = stack.running_workers[1]
            done = committed_offsets(stack.settings.kafka_bootstrap, stack.settings.app_id)
            self.say(f"  {stack.label}: kill -9 {victim.name} at event {at:,} "
                     f"({stack.committed():,} committed); the producer goes on")
            stack.kill_worker(victim)
            killed.append((time.monotonic(), done))

        return kill

    def _after_kill(self, stack: Stack, watch: GroupWatch,
                    killed: list[tuple[float, dict[tuple[str, int], int]]]) -> None:
        """Once the producer is done: how long the group took to give the killed worker's
        partitions to the others, and those to commit there again."""
        if not killed:
            raise HarnessError("the worker was not killed: the stream ended before the hook")
        at, done_then = killed[0]
        before = next((v for v in reversed(watch.history()) if v.t < at), None)
        self.say(f"  {stack.label}: waiting for the group to drop the killed worker "
                 f"(session timeout)")
        settled = watch.wait_settled(2, GROUP_EXPIRY_TIMEOUT_S, stack.check_running)
        began = watch.first_change(at)
        if before is None or began is None:
            raise HarnessError("the group was not seen before and after the kill")
        gone = {m for m, _ in before.members} - {m for m, _ in settled.members}
        moved = sorted({p for m, tps in before.members if m in gone for _, p in tps})
        tps = [(t, p) for t in stack.settings.topics.inputs for p in moved]
        rebalance = (f"kill -9: the group began to rebalance at +{began.t - at:.1f}s (the "
                     f"session timeout), settled at +{settled.t - at:.1f}s "
                     f"({watch.show(settled)}; moved: {watch.moves(before, settled)})")
        self.say(f"  {stack.label}: {rebalance}")
        # the new owners go on from the killed worker's last commit on those partitions
        resumed: float | None = None
        deadline = time.monotonic() + self.options.timeout
        while True:
            stack.check_running()
            now_done = committed_offsets(stack.settings.kafka_bootstrap, stack.settings.app_id)
            ends = stack._end_offsets(list(stack.settings.topics.inputs), deadline)
            if resumed is None and any(now_done.get(tp, -1) > done_then.get(tp, -1) for tp in tps):
                resumed = time.monotonic()
            if all(now_done.get(tp, -1) >= ends.get(tp, 0) for tp in tps):
                caught_up = time.monotonic()
                break
            if time.monotonic() > deadline:
                stuck = ", ".join(
                    f"{t.rsplit('.', 1)[-1]}:{p} {max(now_done.get((t, p), 0), 0)}/{ends[(t, p)]}"
                    f" (at the kill {max(done_then.get((t, p), 0), 0)})"
                    for t, p in tps if now_done.get((t, p), -1) < ends.get((t, p), 0))
                raise HarnessError(f"{rebalance}; partitions {moved} were not committed to their "
                                   f"end {self.options.timeout:.0f}s after that (topic:partition "
                                   f"committed/end: {stuck}):\n{stack.logs()}")
            time.sleep(0.3)
        left = sum(max(0, ends[tp] - max(done_then.get(tp, 0), 0)) for tp in tps)
        stack.notes.append(
            f"{rebalance}; partitions {moved} had {left:,} message(s) not committed by the "
            f"killed worker; commits there resumed at +{_since_t(resumed, at)} and reached "
            f"their end at +{caught_up - at:.1f}s")

    def _killer(self, stack: Stack, at: int) -> Callable[[], None]:
        def kill() -> None:
            committed = stack.committed()
            self.say(f"  {stack.label}: kill -9 the worker at event {at:,} ({committed:,} "
                     "committed), then restart it")
            stack.kill_worker()
            stack.start_worker()
            # the producer waits until the new worker has its partitions and commits again,
            # so that the next kill hits a worker at work
            waited = time.monotonic()
            published = sum(end_offsets(stack.settings.kafka_bootstrap,
                                        stack.settings.topics.inputs).values())
            if committed < published:
                stack.wait_progress(committed, self.options.timeout)
            stack.notes.append(f"killed at event {at:,} with {committed:,} committed; the new "
                               f"worker committed again after {time.monotonic() - waited:.0f}s")

        return kill


def _since(view: GroupView | None, t: float) -> str:
    return "?" if view is None else f"{view.t - t:.1f}s"


def _since_t(when: float | None, t: float) -> str:
    return "- (nothing was left to commit)" if when is None else f"{when - t:.1f}s"


def _sleeper(seconds: float) -> Callable[[], None]:
    return lambda: time.sleep(seconds)


def run_perturbation(name: str, options: Options | None = None,
                     broker: Settings | None = None) -> list[Comparison]:
    """One named perturbation against a fresh reference, on a broker of its own unless given."""
    with Harness(options, broker) as harness:
        return harness.run(name)


# --- command line ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> tuple[list[str], Options, argparse.Namespace]:
    d = Options()
    p = argparse.ArgumentParser(description=" ".join((__doc__ or "").split("\n\n")[0].split()),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("perturbations", nargs="*", metavar="PERTURBATION", default=argparse.SUPPRESS,
                   help=f"any of {', '.join(PERTURBATIONS)}; all when none is named")
    p.add_argument("--accounts", type=int, default=d.accounts)
    p.add_argument("--days", type=int, default=d.days)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--port", type=int, default=d.port,
                   help="the harness's own broker (controller on port + 1)")
    p.add_argument("--partitions", type=int, default=d.partitions)
    p.add_argument("--rate", type=float, default=d.rate,
                   help="events/s of the paced producers (slow-producer, skewed, outage, kill9)")
    p.add_argument("--skew-hours", type=float, default=d.skew_hours)
    p.add_argument("--skew-type", choices=SKEWABLE_TYPES, default=d.skew_type,
                   help="the event type skewed holds back")
    p.add_argument("--topic-gap", type=float, default=d.topic_gap,
                   help="seconds between two topics in topic-by-topic")
    p.add_argument("--outage-seconds", type=float, default=d.outage_seconds)
    p.add_argument("--outage-mode", choices=("stop", "pause"), default=d.outage_mode)
    p.add_argument("--kills", type=int, default=d.kills)
    p.add_argument("--live-repeats", type=int, default=d.live_repeats)
    p.add_argument("--idle-seconds", type=float, default=d.idle_seconds,
                   help="the workers' RADAR_IDLE_SOURCE_SECONDS (default: the worker's, 30)")
    p.add_argument("--session-seconds", type=float, default=d.session_seconds,
                   help="the workers' RADAR_SESSION_TIMEOUT_SECONDS (default: the worker's, 60)")
    p.add_argument("--timeout", type=float, default=d.timeout,
                   help="seconds a run may take to process and store everything")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-': stdout)")
    p.add_argument("--markdown", action="store_true", help="print the table as markdown")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, data)")
    p.add_argument("--shared-local-dir", action="store_true",
                   help="every worker of a run in one RADAR_LOCAL_DIR (default: one each; "
                        "the second worker then refuses to start)")
    args = p.parse_args(argv)
    names = getattr(args, "perturbations", None) or list(PERTURBATIONS)
    unknown = [n for n in names if n not in PERTURBATIONS]
    if unknown:
        p.error(f"unknown perturbation(s) {', '.join(unknown)}; known: {', '.join(PERTURBATIONS)}")
    options = replace(d, accounts=args.accounts, days=args.days, seed=args.seed, port=args.port,
                      partitions=args.partitions, rate=args.rate, skew_hours=args.skew_hours,
                      skew_type=args.skew_type,
                      topic_gap=args.topic_gap, outage_seconds=args.outage_seconds,
                      outage_mode=args.outage_mode, kills=args.kills,
                      live_repeats=args.live_repeats, idle_seconds=args.idle_seconds,
                      session_seconds=args.session_seconds,
                      timeout=args.timeout, keep=args.keep,
                      shared_local_dir=args.shared_local_dir)
    return names, options, args


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    names, options, args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started ignoring it
    comparisons: list[Comparison] = []
    failure: str | None = None
    reference: RunResult | None = None
    events_in_world = 0
    try:
        with Harness(options) as harness:
            events_in_world = len(harness.records)
            reference = harness.reference()
            for name in names:
                try:
                    comparisons += harness.run(name)
                except HarnessError as exc:
                    failure = f"{name}: {exc}"
                    say_on_stderr(f"{name} could not be run: {exc}")
    except KeyboardInterrupt:
        say_on_stderr("interrupted: everything the harness started is stopped")
        return 130
    except HarnessError as exc:
        say_on_stderr(f"the harness failed: {exc}")
        return 2
    assert reference is not None
    print(f"world: {options.accounts} accounts x {options.days} days, seed {options.seed}; "
          f"reference (publish, then start the store and the worker): "
          f"{len(reference.signals):,} open signals, "
          f"{reference.events:,} events stored, {reference.seconds:.0f}s")
    print(render_table(comparisons, markdown=args.markdown))
    for c in comparisons:
        if c.run.notes:
            print(f"  {c.label}: {'; '.join(c.run.notes)}")
    matched = all(c.matched for c in comparisons) and failure is None
    print(f"{sum(c.matched for c in comparisons)} of {len(comparisons)} run(s) matched the reference"
          + (f"; not run: {failure}" if failure else ""))
    if args.json:
        doc = {
            "world": {"accounts": options.accounts, "days": options.days, "seed": options.seed,
                      "events": events_in_world},
            "reference": {"open": len(reference.signals), "events": reference.events,
                          "seconds": round(reference.seconds, 1),
                          "by_type": dict(sorted(Counter(
                              x.type for x in reference.signals.values()).items())),
                          # the whole set, to compare references of two runs (or two commits)
                          "signals": {i: x.as_json() for i, x in sorted(reference.signals.items())}},
            "results": [c.as_json() for c in comparisons],
            "matched": matched, "error": failure,
        }
        text = json.dumps(doc, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    if failure is not None:
        return 2
    return 0 if matched else 1


if __name__ == "__main__":
    sys.exit(main())
