"""Integration fixtures: a real local Kafka broker (KRaft) and real embedded ClickHouse.

The broker runs for the whole session on its own port, started by the project's own
``streams.kafka_local``, with its jars and data in the session's temporary folder. Each test gets
its own topic prefix, consumer group, embedded database, local folder and web port, so tests
never see each other's data nor the checkout's ``.local``. If the broker cannot start (a broker
left running on the port by an earlier session, say), the tests fail; nothing is skipped.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from streams import kafka_local
from streams.launch import LaunchError, launch, metrics_url, wait_until_stored
from streams.query import run_query
from streams.settings import Settings, load_settings

# below Linux's ephemeral range (32768-60999): while a test stops the broker, a client that
# reconnects to a port in that range can be given that very port as its own (a TCP
# self-connection) and the broker cannot listen there again ("Address already in use")
BROKER_PORT = int(os.environ.get("RADAR_TEST_KAFKA_PORT", "29092"))
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A fresh cluster for every session, its jars and data under the session's own temporary
    folder (the jars come from Maven's local cache after the first time)."""
    settings = load_settings({"RADAR_KAFKA_PORT": str(BROKER_PORT),
                              "RADAR_KAFKA_CONTROLLER_PORT": str(BROKER_PORT + 1),
                              "RADAR_LOCAL_DIR": str(tmp_path_factory.mktemp("radar-local"))})
    kafka_local.up(settings)
    yield settings
    kafka_local.down(settings)


@dataclass
class RadarEnv:
    """One isolated Account Radar installation on the shared test broker."""

    env: dict[str, str]
    tmp: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    stores: list[subprocess.Popen[bytes]] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return load_settings(self.env)

    def run(self, *args: str, input: bytes | None = None, timeout: float = 120) -> \
            subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streams.cli", *args], env=self.full_env(), cwd=REPO,
            input=input.decode() if input is not None else None, capture_output=True, text=True,
            timeout=timeout,
        )

    def full_env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
        return {**base, **self.env}

    def _launch(self, command: str, timeout: float) -> subprocess.Popen[bytes]:
        n = sum(1 for p in self.tmp.glob(f"{command}-*.log"))
        try:
            proc = launch(command, self.settings, self.tmp / f"{command}-{n}.log",
                          self.full_env(), cwd=REPO, timeout=timeout)
        except LaunchError as exc:
            raise AssertionError(f"{exc}\n{self.worker_log()}") from exc
        self.processes.append(proc)
        return proc

    def start_worker(self, timeout: float = 60) -> subprocess.Popen[bytes]:
        """``radar worker``: the engine alone (Kafka in, Kafka out)."""
        proc = self._launch("worker", timeout)
        self.workers.append(proc)
        return proc

    def start_store(self, timeout: float = 60) -> subprocess.Popen[bytes]:
        """``radar store``: ClickHouse from the topics; it answers ``radar sql``."""
        proc = self._launch("store", timeout)
        self.stores.append(proc)
        return proc

    def start(self) -> subprocess.Popen[bytes]:
        """The pipeline as a user runs it: a store (unless one runs) and a worker; returns
        the worker."""
        if not any(p.poll() is None for p in self.stores):
            self.start_store()
        return self.start_worker()

    def worker_log(self) -> str:
        logs = sorted(self.tmp.glob("worker-*.log")) + sorted(self.tmp.glob("store-*.log"))
        return "\n".join(f"== {p.name}\n" + p.read_text(errors="replace")[-4000:]
                         for p in logs)

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
        proc.send_signal(sig)
        return proc.wait(timeout=60)

    def metrics(self, command: str = "worker") -> str:
        """The worker's /metrics (or the store's)."""
        with urllib.request.urlopen(metrics_url(self.settings, command), timeout=5) as r:
            return str(r.read().decode())

    def sql(self, query: str) -> list[Sequence[Any]]:
        return run_query(self.settings, query)[1]

    def scalar(self, query: str) -> Any:
        return self.sql(query)[0][0]

    def wait_caught_up(self, timeout: float = 120) -> None:
        """Until every input message is processed by the workers and all they made of it is
        stored (streams.launch)."""
        wait_until_stored(self.settings, timeout=timeout)

    def wait_for(self, query: str, until: Callable[[Any], bool], timeout: float = 90) -> Any:
        deadline = time.monotonic() + timeout
        value: Any = None
        while time.monotonic() < deadline:
            value = self.scalar(query)
            if until(value):
                return value
            time.sleep(0.25)
        raise AssertionError(f"{query!r} stayed at {value!r} for {timeout}s\n{self.worker_log()}")


@pytest.fixture
def radar(broker: Settings, tmp_path: Path) -> Iterator[RadarEnv]:
    tag = uuid.uuid4().hex[:8]
    env = RadarEnv(
        env={
            "RADAR_KAFKA_BOOTSTRAP": f"127.0.0.1:{BROKER_PORT}",
            "RADAR_KAFKA_PORT": str(BROKER_PORT),
            "RADAR_KAFKA_CONTROLLER_PORT": str(BROKER_PORT + 1),
            "RADAR_TOPIC_PREFIX": f"t{tag}",
            "RADAR_APP_ID": f"radar-test-{tag}",
            "RADAR_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'clickhouse'}",
            # the worker's state store (RocksDB) and anything else local: under the test's own
            # folder, never the checkout's .local
            "RADAR_LOCAL_DIR": str(tmp_path / "local"),
            # tests publish every source themselves: idle after a few seconds, not half a minute
            "RADAR_IDLE_SOURCE_SECONDS": "3",
            "RADAR_WEB_PORT": str(free_port()),
            "RADAR_STORE_PORT": str(free_port()),
            "RADAR_NOTIFY_PORT": str(free_port()),
            "RADAR_BATCH_MAX_ROWS": "1000",
            "RADAR_LOG_LEVEL": "info",
        },
        tmp=tmp_path,
    )
    kafka_local.create_topics(env.settings, say=lambda _: None)
    yield env
    for proc in env.processes:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def event(n: int, kind: str = "ad_impression", account: str | None = None,
          **overrides: Any) -> dict[str, Any]:
    """A valid event of ``kind`` (``n`` makes the ids unique)."""
    base: dict[str, Any] = {
        "event_id": f"ev-{n}", "type": kind, "schema_version": 1,
        "occurred_at": "2026-03-01T10:00:00+00:00", "account_id": account or f"acct-{n % 17}",
    }
    fields: dict[str, dict[str, Any]] = {
        "ad_impression": {"stakeholder_id": f"p-{n % 5}", "campaign_id": "c1",
                          "creative_id": "cr1", "channel": "linkedin", "clicked": n % 7 == 0},
        "outreach_reply": {"stakeholder_id": f"p-{n % 5}", "sequence_id": "s1",
                           "channel": "email", "reply_kind": "reply"},
        "content_interaction": {"stakeholder_id": f"p-{n % 5}", "content_id": "post-1",
                                "action": "like", "public": True},
        "role_change": {"stakeholder_id": f"p-{n % 5}", "change": "joined", "title": "CFO",
                        "function": "financial", "seniority": "c_level"},
        "account_profile": {"name": "Proxima", "sector": "industrial", "tier": 1,
                            "renewal_date": "2026-07-01", "arr": 120000.0,
                            "champion_ids": ["p-1"]},
    }
    return {**base, **fields[kind], **overrides}


def encode(obj: Any) -> bytes:
    return json.dumps(obj).encode()
