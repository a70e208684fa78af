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

    def start_worker(self, timeout: float = 60) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"worker-{len(self.workers)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"], env=self.full_env(), cwd=REPO,
            stdout=log, stderr=subprocess.STDOUT,
        )
        self.workers.append(proc)
        url = f"http://127.0.0.1:{self.env['RADAR_WEB_PORT']}/metrics"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"worker exited with {proc.returncode}:\n{self.worker_log()}")
            try:
                with urllib.request.urlopen(url, timeout=1):
                    return proc
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"worker did not serve /metrics in {timeout}s:\n{self.worker_log()}")

    def worker_log(self) -> str:
        logs = sorted(self.tmp.glob("worker-*.log"))
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in logs)

    def stop_worker(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
        proc.send_signal(sig)
        return proc.wait(timeout=60)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.env['RADAR_WEB_PORT']}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            return str(r.read().decode())

    def sql(self, query: str) -> list[Sequence[Any]]:
        return run_query(self.settings, query)[1]

    def scalar(self, query: str) -> Any:
        return self.sql(query)[0][0]

    def wait_caught_up(self, timeout: float = 120) -> None:
        """Until the worker's group committed every input message: all of it is processed
        and stored (the worker commits only after that)."""
        from streams.demo import wait_until_committed

        wait_until_committed(self.settings, self.settings.topics.inputs, timeout=timeout)

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
            "RADAR_BATCH_MAX_ROWS": "1000",
            "RADAR_LOG_LEVEL": "info",
        },
        tmp=tmp_path,
    )
    kafka_local.create_topics(env.settings, say=lambda _: None)
    yield env
    for proc in env.workers:
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
