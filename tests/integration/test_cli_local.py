"""`radar kafka` and `radar db` as a user meets them: clear errors, idempotent set-up."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from streams.settings import Settings, load_settings
from tests.integration.conftest import REPO, free_port

pytestmark = pytest.mark.integration


def radar(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=REPO,
                          env={**base, **env}, capture_output=True, text=True, timeout=120)


def test_kafka_up_refuses_a_port_that_is_taken(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = radar("kafka", "up", env={"RADAR_KAFKA_PORT": str(port),
                                           "RADAR_KAFKA_CONTROLLER_PORT": str(free_port())})
    assert result.returncode == 2
    assert f"port {port} (the broker port) is taken" in result.stderr


def test_kafka_up_says_what_to_install_when_java_is_missing() -> None:
    port = free_port()
    result = radar("kafka", "up", env={"RADAR_KAFKA_PORT": str(port), "PATH": "/nonexistent"})
    assert result.returncode == 2
    assert "`java` was not found on PATH" in result.stderr


def test_kafka_up_says_what_to_install_when_maven_is_missing(tmp_path: Path) -> None:
    only_java = tmp_path / "bin"
    only_java.mkdir()
    java = shutil.which("java")
    assert java is not None
    (only_java / "java").symlink_to(java)
    # both ports free (the controller's would be the broker's + 1, which may be taken)
    env = {"RADAR_KAFKA_PORT": str(free_port()), "RADAR_KAFKA_CONTROLLER_PORT": str(free_port()),
           "PATH": str(only_java), "RADAR_LOCAL_DIR": str(tmp_path / "local")}  # no cached jars
    result = radar("kafka", "up", env=env)
    assert result.returncode == 2
    assert "`mvn` was not found on PATH" in result.stderr


def test_kafka_status_and_down_leave_brokers_they_did_not_start_alone() -> None:
    port = free_port()
    env = {"RADAR_KAFKA_PORT": str(port)}
    status = radar("kafka", "status", env=env)
    assert status.returncode == 1
    assert "not started by radar" in status.stdout
    down = radar("kafka", "down", env=env)
    assert down.returncode == 0
    assert "no Kafka started by radar is running" in down.stdout


def test_running_broker_reports_its_pid(broker: Settings) -> None:
    result = radar("kafka", "status", env={"RADAR_KAFKA_PORT": str(broker.kafka_port),
                                           "RADAR_LOCAL_DIR": str(broker.local)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "running, pid" in result.stdout and "answering" in result.stdout


def test_db_init_is_idempotent(tmp_path: Path) -> None:
    env = {"RADAR_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'db'}"}
    first = radar("db", "init", env=env)
    second = radar("db", "init", env=env)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    for table in ("events", "dead_letters", "radar_schema"):
        assert table in second.stdout
    columns = radar("sql", "DESCRIBE TABLE events", "--format", "tsv", env=env)
    assert "event_id\tString" in columns.stdout
    assert load_settings(env).embedded
