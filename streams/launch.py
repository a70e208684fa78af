"""Starting the pipeline's processes (``radar worker``, ``radar store``) as a user would, and
knowing when they are done: for ``radar demo``, the perturbation harness and the integration
tests alike.

A process is up once its web server answers ``/metrics``. Everything is processed when the
workers' group has committed every input message (a worker commits a message once its effects
are on Kafka), and stored when the store's group has committed every message of the topics it
reads (it commits after the insert).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from streams.settings import Settings

START_TIMEOUT_S = 90.0
WAIT_TIMEOUT_S = 300.0


class LaunchError(RuntimeError):
    """A process did not start, or did not get through its work in time."""


def metrics_url(settings: Settings, command: str) -> str:
    base = {"store": settings.store_url, "notify": settings.notify_url}.get(command,
                                                                         settings.web_url)
    return f"{base}/metrics"


def launch(command: str, settings: Settings, log_path: Path, env: Mapping[str, str],
           cwd: Path | None = None, timeout: float = START_TIMEOUT_S) -> subprocess.Popen[bytes]:
    """``radar <command>`` with ``env`` as its whole environment, its output in ``log_path``;
    returns once it answers ``/metrics`` (the settings say where: they must match ``env``)."""
    log = log_path.open("ab")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "streams.cli", command], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(env), cwd=cwd)
    finally:
        log.close()  # the child has its own copy
    url = metrics_url(settings, command)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise LaunchError(f"radar {command} exited with code {proc.returncode}; log "
                              f"tail:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise LaunchError(f"radar {command} did not answer {url} within {timeout:.0f}s; see "
                      f"{log_path}")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    """Stop ``proc`` (killed if it does not stop in time); returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def end_offsets(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), client_id="radar-launch")
    try:
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        return {(tp.topic, tp.partition): off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets; empty while a new broker is still electing a coordinator."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import CoordinatorNotAvailableError, NotCoordinatorError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="radar-launch")
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    except (CoordinatorNotAvailableError, NotCoordinatorError):
        return {}
    finally:
        admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


def wait_until_committed(settings: Settings, group: str, topics: list[str],
                         timeout: float = WAIT_TIMEOUT_S,
                         on_progress: Callable[[int, int], None] | None = None) -> None:
    """Block until ``group`` has committed every message now on ``topics``."""
    bootstrap = settings.kafka_bootstrap
    ends = end_offsets(bootstrap, topics)
    target = sum(ends.values())
    deadline = time.monotonic() + timeout
    while True:
        done = committed_offsets(bootstrap, group)
        behind = sum(max(0, end - max(done.get(tp, 0), 0)) for tp, end in ends.items())
        if on_progress is not None:
            on_progress(target - behind, target)
        if behind == 0:
            return
        if time.monotonic() > deadline:
            raise LaunchError(f"{group} still had {behind} message(s) of {', '.join(topics)} "
                              f"to commit after {timeout:.0f}s")
        time.sleep(0.3)


def stored_topics(settings: Settings) -> list[str]:
    topics = settings.topics
    return [*topics.inputs, topics.dead_letters, topics.signals, topics.account_state,
            topics.notify_deliveries]


def wait_until_stored(settings: Settings, timeout: float = WAIT_TIMEOUT_S,
                      on_progress: Callable[[int, int], None] | None = None) -> None:
    """Block until every input message now on Kafka is processed by the workers, and all they
    made of it (dead letters, signals, account states) is in ClickHouse."""
    deadline = time.monotonic() + timeout
    wait_until_committed(settings, settings.app_id, settings.topics.inputs, timeout,
                         on_progress)
    left = max(1.0, deadline - time.monotonic())
    wait_until_committed(settings, settings.store_group, stored_topics(settings), left)
