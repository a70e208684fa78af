"""Analyst SQL through a running store (``/sql``) and ``radar sql``: it reads and nothing else,
it is bounded, a client that hangs up cancels its query, a heavy query does not hold ingestion
up, and /sql beyond loopback needs a token (SPEC section 12)."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from tests.integration.conftest import RadarEnv, encode, event

pytestmark = pytest.mark.integration
HEAVY = "SELECT sum(cityHash64(number)) AS heavy FROM numbers(1e11)"
TOKEN = "test-token-0123456789abcdef"


def post_sql(radar: RadarEnv, sql: str, token: str | None = None,
             timeout: float = 60) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{radar.env['RADAR_STORE_PORT']}/sql",
        data=json.dumps({"sql": sql}).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def heavy_running(radar: RadarEnv) -> int:
    return int(radar.scalar(
        "SELECT count() FROM system.processes WHERE query LIKE '%cityHash64%' "
        "AND query NOT LIKE '%system.processes%'"))


OUTFILE_FORMS = ["", " TRUNCATE", " APPEND", " AND STDOUT"]


@pytest.mark.parametrize("path", ["cli", "http"])
def test_into_outfile_writes_nothing_through_either_path(radar: RadarEnv, path: str) -> None:
    radar.start_store()
    target = radar.tmp / "new.tsv"
    existing = radar.tmp / "existing.tsv"
    existing.write_text("kept\n")
    for form in OUTFILE_FORMS:
        for file in (target, existing):
            sql = f"SELECT * FROM events INTO OUTFILE '{file}'{form}"
            if path == "cli":
                refused = radar.run("sql", sql)
                assert refused.returncode == 2, (sql, refused.stdout)
                assert "INTO OUTFILE is not allowed" in refused.stderr
            else:
                status, body = post_sql(radar, sql)
                assert (status, body["kind"]) == (400, "not_read_only"), (sql, body)
    assert not target.exists()
    assert existing.read_text() == "kept\n"
    assert sorted(p.name for p in radar.tmp.glob("*.tsv")) == ["existing.tsv"]


@pytest.mark.parametrize("sql", [
    "SELECT file('{secret}')", "SELECT * FROM file('{secret}', 'LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')", "SET readonly = 0",
    "SELECT * FROM events SETTINGS readonly = 0", "SELECT name FROM system.users",
])
def test_files_urls_and_settings_stay_out_of_reach_over_http(radar: RadarEnv, sql: str) -> None:
    secret = radar.tmp / "secret.txt"
    secret.write_text("s3cr3t-value\n")
    radar.start_store()
    status, body = post_sql(radar, sql.format(secret=secret))
    assert status == 400
    assert "s3cr3t" not in json.dumps(body)


def test_bounds_apply_through_the_store(radar: RadarEnv) -> None:
    radar.env.update({"RADAR_SQL_MAX_ROWS": "5", "RADAR_SQL_MAX_SECONDS": "2"})
    radar.start_store()
    assert post_sql(radar, "SELECT * FROM numbers(5)")[0] == 200
    status, body = post_sql(radar, "SELECT * FROM numbers(6)")
    assert status == 400 and "RADAR_SQL_MAX_ROWS" in body["error"]
    status, body = post_sql(radar, HEAVY)
    assert status == 400 and "RADAR_SQL_MAX_SECONDS" in body["error"]
    cli = radar.run("sql", "SELECT * FROM numbers(6)")
    assert cli.returncode == 2 and "RADAR_SQL_MAX_ROWS" in cli.stderr


def test_a_client_that_hangs_up_cancels_its_query(radar: RadarEnv) -> None:
    radar.env["RADAR_SQL_MAX_SECONDS"] = "600"
    radar.start_store()
    body = json.dumps({"sql": HEAVY}).encode()
    with socket.create_connection(("127.0.0.1", int(radar.env["RADAR_STORE_PORT"]))) as client:
        client.sendall(b"POST /sql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        deadline = time.monotonic() + 30
        while heavy_running(radar) == 0:
            assert time.monotonic() < deadline, "the query never started"
            time.sleep(0.1)
    # the client is gone: the query stops long before its 600 s bound
    deadline = time.monotonic() + 30
    while heavy_running(radar):
        assert time.monotonic() < deadline, "the query went on after its client left"
        time.sleep(0.2)


def test_events_are_stored_while_a_heavy_query_runs(radar: RadarEnv) -> None:
    # the query runs until this bound (the events are stored within seconds of its start)
    radar.env["RADAR_SQL_MAX_SECONDS"] = "45"
    radar.start()
    answers: list[tuple[int, dict[str, Any]]] = []
    asking = threading.Thread(target=lambda: answers.append(post_sql(radar, HEAVY, timeout=180)))
    asking.start()
    deadline = time.monotonic() + 30
    while heavy_running(radar) == 0:
        assert time.monotonic() < deadline, "the query never started"
        time.sleep(0.1)
    producer = KafkaProducer(bootstrap_servers=radar.env["RADAR_KAFKA_BOOTSTRAP"], acks="all")
    for i in range(40):
        e = event(i)
        producer.send(radar.settings.topics.for_type(e["type"]), value=encode(e))
    producer.close()
    radar.wait_for("SELECT count() FROM events", lambda n: n == 40, timeout=60)
    assert heavy_running(radar) == 1, "the events were stored only after the query ended"
    asking.join(timeout=200)
    assert len(answers) == 1  # answered (the sum, or its time bound), after the events


def test_a_store_beyond_loopback_without_a_token_does_not_start(radar: RadarEnv) -> None:
    radar.env["RADAR_WEB_HOST"] = "0.0.0.0"
    started = radar.run("store", timeout=60)
    assert started.returncode == 2
    assert "RADAR_SQL_TOKEN" in started.stderr
    assert not Path(radar.env["RADAR_CLICKHOUSE_DSN"].removeprefix("chdb://")).exists()


def test_sql_beyond_loopback_answers_only_with_the_token(radar: RadarEnv) -> None:
    radar.env.update({"RADAR_WEB_HOST": "0.0.0.0", "RADAR_SQL_TOKEN": TOKEN})
    radar.start_store()
    assert post_sql(radar, "SELECT 1")[0] == 401
    assert post_sql(radar, "SELECT 1", token=TOKEN[:-1] + "X")[0] == 401
    assert post_sql(radar, "SELECT 1", token=TOKEN) == (200, {"columns": ["1"], "rows": [[1]]})
    assert "radar_rows_written" in radar.metrics("store")  # Prometheus needs no token
    cli = radar.run("sql", "SELECT 41 + 1 AS n", "--format", "tsv")
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.split() == ["n", "42"]
    radar.env["RADAR_SQL_TOKEN"] = "another-token-0123456789"
    refused = radar.run("sql", "SELECT 1")
    assert refused.returncode == 2
    assert "RADAR_SQL_TOKEN" in refused.stderr
    assert TOKEN not in refused.stderr + refused.stdout
    assert "another-token" not in refused.stderr + refused.stdout
