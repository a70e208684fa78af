"""Failing start-ups print why, and never a secret: DSN passwords in either place and the /sql
token stay out of everything the commands print (SPEC section 12)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import REPO, free_port

pytestmark = pytest.mark.integration
PASSWORD = "pw-Zq81xKv3"
TOKEN = "tok-Hh47Lm0aPp29Rr"


def run(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
    full = {**base, "RADAR_LOCAL_DIR": str(tmp_path / "local"),
            "RADAR_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
            "RADAR_WEB_PORT": str(free_port()), "RADAR_STORE_PORT": str(free_port()), **env}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], env=full, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def dsns() -> list[str]:
    port = free_port()  # nothing listens there: the database cannot be reached
    return [f"http://radar:{PASSWORD}@127.0.0.1:{port}/radar",
            f"http://127.0.0.1:{port}/radar?user=radar&password={PASSWORD}",
            f"http://radar:{PASSWORD.replace('Z', '%5A')}@127.0.0.1:{port}/radar"]


@pytest.mark.parametrize("dsn", dsns(), ids=["user-part", "query-string", "percent-encoded"])
@pytest.mark.parametrize("command", [("store",), ("db", "init"), ("sql", "SELECT 1"),
                                     ("evaluate", "--labels", "missing.jsonl")])
def test_a_start_up_against_an_unreachable_database_shows_no_password(
        tmp_path: Path, dsn: str, command: tuple[str, ...]) -> None:
    result = run(tmp_path, {"RADAR_CLICKHOUSE_DSN": dsn, "RADAR_SQL_TOKEN": TOKEN,
                            "RADAR_LOG_LEVEL": "debug"}, *command)
    printed = result.stdout + result.stderr

    assert result.returncode != 0
    assert "127.0.0.1" in printed or "missing.jsonl" in printed, printed  # it says why
    for secret in (PASSWORD, PASSWORD.replace("Z", "%5A"), TOKEN):
        assert secret not in printed, printed


def test_a_token_that_is_too_short_is_refused_without_being_shown(tmp_path: Path) -> None:
    result = run(tmp_path, {"RADAR_WEB_HOST": "0.0.0.0", "RADAR_SQL_TOKEN": "short-tok"},
                 "store")

    assert result.returncode == 2
    assert "RADAR_SQL_TOKEN" in result.stderr
    assert "short-tok" not in result.stdout + result.stderr
