"""The ClickHouse users of a server deployment (SPEC section 12): the SQL ``radar db init
--print-grants`` prints, the users.d file docker-compose mounts, and what each user can and
cannot do, tried on a real embedded ClickHouse.

chDB has no server to log in to: every query runs as its user ``default``. So a test gives
``default`` the writer's (or the analyst's) grants and profile, exactly as ``users_xml`` writes
them, in a ``config.xml`` the engine reads from its working directory when it starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from test_dashboard import clickhouse_queries

from processors.ingest import AcceptedEvent, RawMessage
from schemas.dead_letter import DeadLetter
from schemas.events import AdImpression
from schemas.signals import Signal
from sinks import grants
from sinks.clickhouse import ClickHouseWriter, init_schema, open_client
from sinks.grants import ANALYST, USERS, WRITER, QueryBounds, grant_statements, grants_script
from sinks.schema import STATEMENTS
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]
USERS_FILE = REPO / "deploy/clickhouse/users.d/radar-users.xml"
DEFAULTS = Settings()
BOUNDS = QueryBounds(DEFAULTS.sql_max_seconds, DEFAULTS.sql_max_rows, DEFAULTS.sql_max_memory_bytes)
PASSWORDS = {"CLICKHOUSE_WRITER_PASSWORD": "w-secret-Pa55", "CLICKHOUSE_ANALYST_PASSWORD": "a-secret-Pa55"}


def user(name: str) -> grants.RadarUser:
    return next(u for u in USERS if u.name == name)


def statements(script: str) -> list[str]:
    return [line.removesuffix(";") for line in script.splitlines() if not line.startswith("--")]


@contextmanager
def embedded(path: Path) -> Iterator[Client]:
    client = open_client(f"chdb://{path}")
    try:
        yield client
    finally:
        client.close()


# -- the printed SQL --------------------------------------------------------------------------------

def test_every_printed_statement_parses_with_clickhouses_own_parser(tmp_path: Path) -> None:
    printed = statements(grants_script("radar", BOUNDS))
    hashed = grant_statements("radar-prod", BOUNDS, {u.name: "ab" * 32 for u in USERS})
    assert len(printed) == len(hashed) == 5
    with embedded(tmp_path / "db") as client:
        def parse(sql: str) -> str:
            quoted = sql.replace("\\", "\\\\").replace("'", "\\'")
            return str(client.query(f"SELECT formatQuery('{quoted}')").result_rows[0][0])

        for sql in printed + hashed:
            formatted = parse(sql)
            assert formatted.split()[:2] == sql.split()[:2], (sql, formatted)
        # the parser does refuse what is wrong (an unknown privilege, two statements in one)
        for broken in ("GRANT SELEKT ON radar.* TO radar_analyst", f"{printed[-1]}; {printed[-1]}"):
            with pytest.raises(Exception, match="Syntax error"):
                parse(broken)
    assert any("ON `radar-prod`.* TO radar_writer" in s for s in hashed)


def test_the_analyst_only_reads_under_a_readonly_profile_with_the_sql_bounds() -> None:
    script = grants_script("radar", QueryBounds(12.5, 500, 64 * 1024**2))
    assert "GRANT SELECT ON radar.* TO radar_analyst;" in script
    assert ("CREATE SETTINGS PROFILE OR REPLACE radar_analyst SETTINGS readonly = 1 CONST, "
            "max_execution_time = 12.5 MAX 12.5 CHANGEABLE_IN_READONLY, "
            "timeout_overflow_mode = 'throw' CONST, max_result_rows = 500 CONST, "
            "result_overflow_mode = 'throw' CONST, max_memory_usage = 67108864 CONST;") in script
    assert re.search(r"CREATE USER OR REPLACE radar_analyst .* SETTINGS PROFILE radar_analyst;",
                     script)
    writer_grant = next(s for s in statements(script) if s.endswith("TO radar_writer"))
    assert writer_grant.startswith("GRANT SELECT, INSERT, ")
    for power in ("DROP TABLE", "TRUNCATE", "ACCESS", "ALL", "SYSTEM", "*.*", "FILE", "URL"):
        assert power not in writer_grant.replace("radar.*", ""), power


def test_printed_grants_carry_placeholders_not_passwords(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """Printed, not run: no database is reached (the DSN's server does not exist)."""
    from streams.cli import main

    for name in [n for n in os.environ if n.startswith("RADAR_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RADAR_CLICKHOUSE_DSN", "http://admin:adm1n-pw@127.0.0.1:9/warehouse")
    for var, password in PASSWORDS.items():
        monkeypatch.setenv(var, password)
    assert main(["db", "init", "--print-grants"]) == 0
    printed = capsys.readouterr().out
    assert "ON warehouse.* TO radar_analyst;" in printed  # the DSN's database
    for secret in [*PASSWORDS.values(), "adm1n-pw"]:
        assert secret not in printed
        assert grants.password_hash(secret) not in printed
    # envsubst fills every ${...}: the only ones are the two hash placeholders
    assert set(re.findall(r"\$\{?\w*\}?", printed)) == {
        "${CLICKHOUSE_WRITER_PASSWORD_SHA256}", "${CLICKHOUSE_ANALYST_PASSWORD_SHA256}"}
    assert "$" not in "".join(line for line in printed.splitlines() if line.startswith("--"))


# -- radar db init --create-users (a server is an outside service: a fake one records) --------------

class FakeServer:
    def __init__(self) -> None:
        self.commands: list[str] = []

    def command(self, sql: str) -> None:
        self.commands.append(sql)

    def query(self, sql: str) -> Any:
        return dataclasses.make_dataclass("Result", ["result_rows"])([])

    def close(self) -> None:
        pass


def run_db_init(monkeypatch: pytest.MonkeyPatch, dsn: str, *flags: str,
                env: dict[str, str] | None = None) -> tuple[int, FakeServer]:
    import sinks.clickhouse
    from streams.cli import main

    for name in [n for n in os.environ if n.startswith("RADAR_")] + list(PASSWORDS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RADAR_CLICKHOUSE_DSN", dsn)
    for var, value in (env or {}).items():
        monkeypatch.setenv(var, value)
    server = FakeServer()
    monkeypatch.setattr(sinks.clickhouse, "open_client", lambda _dsn: server)
    return main(["db", "init", *flags]), server


def test_create_users_runs_the_statements_with_hashed_passwords_and_prints_neither(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    code, server = run_db_init(monkeypatch, "https://admin:adm1n-pw@ch.example:8443/radar",
                               "--create-users", env=PASSWORDS)
    assert code == 0
    created = [c for c in server.commands if c.startswith(("CREATE USER", "CREATE SETTINGS", "GRANT"))]
    hashes = {u.name: grants.password_hash(PASSWORDS[u.password_var]) for u in USERS}
    assert created == grant_statements("radar", BOUNDS, hashes)
    assert server.commands.index(created[0]) > server.commands.index(STATEMENTS[0])  # schema first
    out = capsys.readouterr()
    for secret in [*PASSWORDS.values(), *hashes.values(), "adm1n-pw"]:
        assert secret not in out.out + out.err
    assert "users ready for database radar: radar_writer" in out.out


def test_create_users_refuses_without_both_passwords_or_on_embedded_clickhouse(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    code, server = run_db_init(monkeypatch, "http://admin:pw@127.0.0.1:9/radar", "--create-users",
                               env={"CLICKHOUSE_WRITER_PASSWORD": "only-one"})
    assert (code, server.commands) == (2, [])  # refused before anything is sent
    assert "needs CLICKHOUSE_ANALYST_PASSWORD" in capsys.readouterr().err
    code, server = run_db_init(monkeypatch, f"chdb://{tmp_path / 'db'}", "--create-users",
                               env=PASSWORDS)
    assert (code, server.commands) == (2, [])
    assert "embedded ClickHouse has no users" in capsys.readouterr().err


def test_a_refused_statement_is_reported_without_the_hash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A server's error may quote the statement: the hash is blanked out of the message."""
    writer_hash = grants.password_hash(PASSWORDS["CLICKHOUSE_WRITER_PASSWORD"])

    def refuse_users(sql: str) -> None:
        if sql.startswith("CREATE USER"):
            raise RuntimeError(f"Code: 497. Not enough privileges for: {sql}")

    import sinks.clickhouse
    from streams.cli import main

    for name in [n for n in os.environ if n.startswith("RADAR_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RADAR_CLICKHOUSE_DSN", "http://writer:pw@127.0.0.1:9/radar")
    for var, value in PASSWORDS.items():
        monkeypatch.setenv(var, value)
    server = FakeServer()
    server.command = refuse_users  # type: ignore[method-assign]
    monkeypatch.setattr(sinks.clickhouse, "open_client", lambda _dsn: server)
    assert main(["db", "init", "--create-users"]) == 2
    err = capsys.readouterr().err
    assert "CREATE USER OR ... was refused: Code: 497. Not enough privileges for: CREATE USER" in err
    assert "BY '***'" in err and writer_hash not in err
    code, server = run_db_init(monkeypatch, "http://admin:pw@127.0.0.1:9/radar", env=PASSWORDS)
    assert code == 0 and not [c for c in server.commands if "USER" in c]  # opt-in only


# -- the users.d file of docker-compose -------------------------------------------------------------

def test_the_compose_users_file_is_what_grants_py_writes() -> None:
    """Edit sinks/grants.py and rewrite the file with users_xml, never the file alone."""
    assert USERS_FILE.read_text() == grants.users_xml("radar", BOUNDS)


def test_the_users_file_names_its_passwords_by_environment_variable_only() -> None:
    root = ET.fromstring(USERS_FILE.read_text())
    users = root.find("users")
    assert users is not None
    assert {u.tag for u in users} == {WRITER, ANALYST}
    for entry in users:
        passwords = [e for e in entry if e.tag.startswith("password")]
        assert [(p.tag, p.text, p.get("from_env")) for p in passwords] == [
            ("password", None, user(entry.tag).password_var)]
        assert "access_management" not in {e.tag for e in entry}
    limit = root.find("profiles/radar_analyst/constraints/max_execution_time")
    assert limit is not None and limit.findtext("max") == "30"
    assert limit.find("changeable_in_readonly") is not None


# -- what each user can do, on embedded ClickHouse -------------------------------------------------

def as_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """From here on, chDB engines started in this test run as ``name`` of the compose users
    file. chDB cannot load ``changeable_in_readonly`` (clickhouse-local does not read
    settings_constraints_replace_previous), so that one line is left out: max_execution_time
    then cannot be changed at all."""
    config = tmp_path / f"as-{name}"
    config.mkdir()
    root = ET.fromstring(USERS_FILE.read_text())
    users, profiles = root.find("users"), root.find("profiles")
    assert users is not None and profiles is not None
    for entry in list(users):
        if entry.tag == name:
            entry.tag = "default"
        else:
            users.remove(entry)
    ET.SubElement(profiles, "default")
    for parent in root.iter():
        for child in [c for c in parent if c.tag == "changeable_in_readonly"]:
            parent.remove(child)
    (config / "users.xml").write_text(ET.tostring(root, encoding="unicode"))
    (config / "config.xml").write_text("<clickhouse><users_config>users.xml</users_config></clickhouse>")
    # the password comes from the environment: unset, it is empty, and chDB logs in without one
    monkeypatch.delenv(user(name).password_var, raising=False)
    monkeypatch.chdir(config)


@contextmanager
def radar_database(path: Path) -> Iterator[Client]:
    """The compose database ``radar`` (chDB's own ``default`` also reads files by name, which
    makes creating a view there ask for READ ON FILE)."""
    client = clickhouse_connect.get_client(dsn=f"chdb://{path}", database="radar")
    try:
        yield client
    finally:
        client.close()


def refused(client: Client, sql: str) -> str:
    """The error ClickHouse gives for ``sql``; fails the test if it is allowed."""
    try:
        client.command(sql)
    except Exception as exc:  # noqa: BLE001 - the refusal is the point
        return str(exc)
    raise AssertionError(f"allowed: {sql}")


def prepare(path: Path, schema: bool = True) -> None:
    """As the unrestricted user (an administrator): the database, the schema with 20 events,
    and another database with a secret."""
    with embedded(path) as client:
        client.command("CREATE DATABASE radar")
        client.command("CREATE DATABASE other")
        client.command("CREATE TABLE other.secret (s String) ENGINE = MergeTree ORDER BY s")
    if schema:
        with radar_database(path) as client:
            init_schema(client)
            client.command("INSERT INTO events (event_id, type, occurred_at, account_id) "
                           "SELECT toString(number), 'ad_impression', now64(3), 'acct-1' "
                           "FROM numbers(20)")


def test_the_writer_runs_the_schema_init_and_the_worker_and_nothing_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "db"
    prepare(path, schema=False)  # the writer cannot create the database: an administrator does
    as_user(tmp_path, monkeypatch, WRITER)
    with radar_database(path) as client:
        assert "CREATE DATABASE" in refused(client, "CREATE DATABASE elsewhere")
        for days in (30, 30, 7, None):  # the schema init: create, keep, change and remove the TTL
            assert "weekly_engagement" in init_schema(client, days)
        # radar erase: mutations run to completion, deleting and rewriting (sinks/erasure.py)
        erase = {"mutations_sync": 2}
        client.command("ALTER TABLE events DELETE WHERE stakeholder_id = 'p-erased'", settings=erase)
        client.command("ALTER TABLE account_state UPDATE champions = arrayFilter("
                       "c -> c != 'p-erased', champions) WHERE has(champions, 'p-erased')",
                       settings=erase)
        assert "DROP TABLE" in refused(client, "DROP TABLE signals")
        assert "TRUNCATE" in refused(client, "TRUNCATE TABLE events")
        assert "ALTER ADD COLUMN" in refused(client, "ALTER TABLE events ADD COLUMN extra String")
        assert "SELECT ON other.secret" in refused(client, "SELECT * FROM other.secret")
        assert "CREATE USER" in refused(client, "CREATE USER intruder")
        assert "SYSTEM" in refused(client, "SYSTEM DROP MARK CACHE")
        assert "READ ON FILE" in refused(client, "SELECT * FROM file('x.csv', CSV, 's String')")
        # the worker's writes, with its settings (dedup tokens, JSON input), as the writer
        writer = ClickHouseWriter(f"chdb://{path}")
        writer._client = client  # noqa: SLF001 - the writer's own client cannot name a database
        at = datetime.now(UTC)
        stored = asyncio.run(writer.write_events([AcceptedEvent(
            AdImpression(event_id="w1", type="ad_impression", schema_version=1, occurred_at=at,
                         account_id="acct-1", stakeholder_id="p1", campaign_id="c",
                         creative_id="cr", channel="linkedin"),
            RawMessage("radar.ad-impressions", 0, 1, None, b""))]))
        letters = asyncio.run(writer.write_dead_letters([(DeadLetter(
            "dl1", "radar.accounts", 0, 2, None, b"{", "malformed_json", "x"), at)]))
        signals = asyncio.run(writer.write_signals([Signal(
            signal_id="s" * 32, account_id="acct-1", type="pricing_page_visit",
            category="expansion", severity="high", occurred_at=at, detected_at=at,
            rule_version="v1", evidence={"event_ids": ["w1"]})]))
        writer._client = None  # noqa: SLF001 - closed by the with block
        writer.close_blocking()
        assert (stored.written, letters.written, signals.written) == (1, 1, 1)


def test_the_analyst_reads_every_table_and_panel_and_cannot_write_or_lift_its_bounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "db"
    prepare(path)
    as_user(tmp_path, monkeypatch, ANALYST)
    with radar_database(path) as client:
        settings = client.query("SELECT getSetting('readonly'), getSetting('max_result_rows'), "
                                "getSetting('result_overflow_mode'), "
                                "getSetting('max_execution_time')").result_rows
        assert settings == [(1, BOUNDS.max_rows, "throw", BOUNDS.max_seconds)]
        assert client.query("SELECT count() FROM events").result_rows == [(20,)]
        for relation in ("dead_letters", "signals", "account_state", "at_risk_accounts",
                         "expansion_candidates", "single_threaded_accounts", "continuity_gaps",
                         "weekly_engagement", "radar_schema"):
            client.query(f"SELECT * FROM {relation} LIMIT 1")
        panels = [sql for _, sql in clickhouse_queries() if "$" not in sql]
        assert panels
        for sql in panels:  # Grafana reads as the analyst
            client.query(sql)
        too_many = f"SELECT number FROM numbers({BOUNDS.max_rows + 1})"
        assert "TOO_MANY_ROWS" in refused(client, too_many)
        assert "readonly" in refused(client, f"{too_many} SETTINGS max_result_rows = 0")
        assert "readonly" in refused(client, "SELECT 1 SETTINGS readonly = 0")
        for write in ("INSERT INTO events (event_id) VALUES ('x')",
                      "ALTER TABLE events DELETE WHERE 1", "DROP TABLE events",
                      "CREATE TABLE t (a Int8) ENGINE = Memory", "CREATE DATABASE elsewhere"):
            assert re.search(r"ACCESS_DENIED|READONLY", refused(client, write)), write
        assert "SELECT ON other.secret" in refused(client, "SELECT * FROM other.secret")
        assert "READ ON FILE" in refused(client, "SELECT * FROM file('x.csv', CSV, 's String')")
        assert "READ ON URL" in refused(
            client, "SELECT * FROM url('http://127.0.0.1:9/', CSV, 's String')")
