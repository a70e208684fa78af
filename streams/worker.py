"""``radar worker``: build the app, run it until stopped. It opens no database: what it makes
goes to Kafka, and ``radar store`` writes ClickHouse from there (SPEC section 11)."""

from __future__ import annotations

import fcntl
import gc
import os
import sys
import threading
from pathlib import Path
from typing import IO

from processors.erasure import Erased
from processors.rules import DEFAULT_RULES, Rules, RulesError, parse_rules
from streams.app import create_app
from streams.erasure import read_erasures
from streams.kafka_admin import create_if_missing, open_admin
from streams.metrics import Metrics
from streams.settings import Settings, SettingsError


def load_rules(settings: Settings) -> Rules:
    """The rules file named by RADAR_RULES, else the defaults; refused with a clear message."""
    if settings.rules is None:
        return DEFAULT_RULES
    try:
        text = settings.rules.read_text()
    except OSError as exc:
        raise RulesError(f"cannot read the rules file {settings.rules}: {exc.strerror}") from exc
    return parse_rules(text, source=str(settings.rules))


def ensure_rerouted_topic(settings: Settings) -> None:
    """The workers' rerouted topic (``processors.rerouting``), made before the first worker
    subscribes to it, with the state table's partition count: its partition p carries what
    partition p's owner is to apply. One with another count is refused."""
    topic = settings.rerouted_topic
    admin = open_admin(settings, "radar-rerouted", SettingsError, f"make {topic}")
    try:
        if create_if_missing(admin, topic, settings.topic_partitions):
            return
        described = admin.describe_topics([topic])
        partitions = len(described[0].get("partitions", [])) if described else 0
        if partitions and partitions != settings.topic_partitions:
            raise SettingsError(
                f"{topic} has {partitions} partitions and RADAR_TOPIC_PARTITIONS is "
                f"{settings.topic_partitions}: they must be equal (each partition carries "
                "what one partition's owner applies)")
    finally:
        admin.close()


SHUTDOWN_GRACE_S = 45.0
# Python's cyclic garbage collector runs its youngest generation every 700 allocations by
# default; decoding and applying a batch allocates millions of short-lived objects, few of them
# in cycles, and the collections cost ~10% of the worker (scripts/bench_ingest.py). Rarer
# collections keep cycles a little longer; the full collection stays regular.
GC_THRESHOLDS = (50_000, 20, 10)


def exit_after(seconds: float) -> threading.Timer:
    """A stop that does not finish in time ends the process (at-least-once makes this safe:
    whatever was not committed is read again). Faust's shutdown can wait for ever on a broker
    that went away first."""
    def _exit() -> None:
        print(f"radar worker: shutdown took longer than {seconds:g}s; exiting now",
              file=sys.stderr, flush=True)
        os._exit(1)

    timer = threading.Timer(seconds, _exit)
    timer.daemon = True
    timer.start()
    return timer


def hold_state_dir(state_dir: Path) -> IO[str]:
    """Lock the worker's state folder (Faust's RocksDB tables) for this process, or refuse to
    start: two workers on one folder crash at their first rebalance, on the lock of a
    partition's RocksDB directory. The lock goes with the process, however it ends."""
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = (state_dir / "worker.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise SettingsError(
            f"{state_dir} is in use by another radar worker ({holder}); give each worker on "
            "one machine its own RADAR_LOCAL_DIR (and RADAR_WEB_PORT)") from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}\n")
    lock.flush()
    return lock


def run_worker(settings: Settings) -> None:
    from streams.faust_internals import worker_class

    RadarWorker = worker_class(lambda: exit_after(SHUTDOWN_GRACE_S))

    rules = load_rules(settings)  # a bad rules file stops the worker before it starts
    metrics = Metrics()
    lock = hold_state_dir(settings.local / "faust" / settings.app_id)  # noqa: F841 (held)
    # every erasure so far, before any event is applied (streams.erasure)
    erased = Erased()
    erasures_from = read_erasures(settings, erased)
    ensure_rerouted_topic(settings)
    app = create_app(settings, metrics, rules, erased, erasures_from)
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()  # what start-up built lives as long as the worker: never scanned again
    worker = RadarWorker(app, loglevel=settings.log_level, redirect_stdouts=False)
    # the terminal spinner turns the root logger to DEBUG: every debug call of aiokafka and
    # Faust then builds a record, measured at ~18% of the event loop
    worker.spinner = None
    worker.execute_from_commandline()
