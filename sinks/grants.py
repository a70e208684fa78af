"""ClickHouse users of a server deployment (SPEC section 12): a writer for the worker, an
analyst for people and Grafana.

One description, two forms: SQL statements (``radar db init --print-grants`` prints them,
``radar db init --create-users`` runs them as an administrator) and a ``users.d`` XML file for a
server configured by files (docker-compose mounts ``deploy/clickhouse/users.d/radar-users.xml``,
which is :func:`users_xml` written out; a unit test holds the file to it).

The writer also runs the schema init (``radar db init`` and the worker at start create the tables
and set their TTL), so it holds the DDL that needs and nothing more: it cannot drop or truncate a
table, manage users, or read another database. The analyst reads the radar database and nothing
else, under a ``readonly = 1`` profile bounded like ``radar sql`` (RADAR_SQL_MAX_*).
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs, urlparse

WRITER = "radar_writer"
ANALYST = "radar_analyst"
ANALYST_PROFILE = "radar_analyst"

# What the writer may do in the radar database, each for a reason.
WRITER_PRIVILEGES: tuple[str, ...] = (
    "SELECT",  # the already-stored check before each insert, the schema init's checks
    "INSERT",  # the batches, radar_schema
    "CREATE TABLE",  # the schema init: CREATE TABLE IF NOT EXISTS
    "CREATE VIEW", "DROP VIEW",  # the schema init: CREATE OR REPLACE VIEW (replacing drops)
    "ALTER TTL",  # retention: MODIFY TTL / REMOVE TTL (RADAR_EVENTS_TTL_DAYS)
    # radar erase (SPEC section 12): deletes a person's or an account's rows, and rewrites
    # the signals and account states that only mention them (sinks/erasure.py)
    "ALTER DELETE", "ALTER UPDATE",
)
ANALYST_PRIVILEGES: tuple[str, ...] = ("SELECT",)


@dataclass(frozen=True, slots=True)
class RadarUser:
    name: str
    privileges: tuple[str, ...]
    # the environment variable holding its password (docker-compose, --create-users); it is
    # not a RADAR_* setting: radar itself never logs in as this user with it
    password_var: str
    profile: str | None = None


USERS: tuple[RadarUser, ...] = (
    RadarUser(WRITER, WRITER_PRIVILEGES, "CLICKHOUSE_WRITER_PASSWORD"),
    RadarUser(ANALYST, ANALYST_PRIVILEGES, "CLICKHOUSE_ANALYST_PASSWORD", ANALYST_PROFILE),
)


@dataclass(frozen=True, slots=True)
class QueryBounds:
    """One analyst query's bounds (RADAR_SQL_MAX_SECONDS, _ROWS, _MEMORY_BYTES)."""

    max_seconds: float
    max_rows: int
    max_memory_bytes: int


@dataclass(frozen=True, slots=True)
class ProfileSetting:
    name: str
    value: int | float | str
    # False: fixed (CONST). True: a client may lower it per query, even in readonly mode
    # (MAX value CHANGEABLE_IN_READONLY)
    lowerable: bool = False


def analyst_profile(bounds: QueryBounds) -> tuple[ProfileSetting, ...]:
    seconds = int(bounds.max_seconds) if bounds.max_seconds.is_integer() else bounds.max_seconds
    return (
        ProfileSetting("readonly", 1),
        # Grafana's ClickHouse plugin sends max_execution_time with every query (its query
        # timeout + 5 s): under readonly = 1 that is refused unless it may change, up to the bound
        ProfileSetting("max_execution_time", seconds, lowerable=True),
        ProfileSetting("timeout_overflow_mode", "throw"),
        ProfileSetting("max_result_rows", bounds.max_rows),
        ProfileSetting("result_overflow_mode", "throw"),
        ProfileSetting("max_memory_usage", bounds.max_memory_bytes),
    )


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def identifier(name: str) -> str:
    """``name`` as a ClickHouse identifier: bare when it can be, else back-quoted."""
    if _IDENTIFIER.fullmatch(name):
        return name
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def literal(value: int | float | str) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value)


def dsn_database(dsn: str) -> str | None:
    """The database a server DSN names (``default`` when it names none); None for chDB."""
    if dsn.startswith("chdb:"):
        return None
    parsed = urlparse(dsn)
    named = parse_qs(parsed.query).get("database")
    if named:
        return named[0]
    return parsed.path.strip("/").split("/")[0] or "default"


def password_hash(password: str) -> str:
    """What ``IDENTIFIED WITH sha256_hash BY`` takes: the password never leaves this process."""
    return hashlib.sha256(password.encode()).hexdigest()


class UsersError(RuntimeError):
    """Users cannot be created; the message names no password and no hash."""


class Commands(Protocol):
    def command(self, cmd: str) -> object: ...


def password_hashes(environ: Mapping[str, str]) -> dict[str, str]:
    """Each user's password hash, from its variable in ``environ`` (both must be set)."""
    missing = [u.password_var for u in USERS if not environ.get(u.password_var)]
    if missing:
        raise UsersError(f"--create-users needs {' and '.join(missing)} (the passwords of "
                         f"{', '.join(u.name for u in USERS)})")
    return {u.name: password_hash(environ[u.password_var]) for u in USERS}


def create_users(client: Commands, database: str, bounds: QueryBounds,
                 hashes: Mapping[str, str]) -> None:
    """Run :func:`grant_statements` (as an administrator). A refusal is reported with the
    hashes blanked out: a server's error may quote the statement."""
    for statement in grant_statements(database, bounds, hashes):
        try:
            client.command(statement)
        except Exception as exc:  # noqa: BLE001 - any refusal, reported without secrets
            text = str(exc)
            for digest in hashes.values():
                text = text.replace(digest, "***")
            raise UsersError(f"{' '.join(statement.split()[:3])} ... was refused: {text}") from None


def placeholder(user: RadarUser) -> str:
    """The stand-in for a password hash in printed statements, for ``envsubst`` to fill. Left
    unfilled (or filled with nothing) it is not a SHA-256 hex digest, and ClickHouse refuses the
    statement instead of creating a user with a known password."""
    return "${" + user.password_var + "_SHA256}"


def grant_statements(database: str, bounds: QueryBounds, hashes: Mapping[str, str]) -> list[str]:
    """The profile, both users and their grants; ``hashes`` maps each user to its password's
    SHA-256 hex digest (or a placeholder). Running them again replaces users, grants and
    profile with the same (``OR REPLACE``): extra grants given to these two by hand are lost."""
    db = identifier(database)
    profile = ", ".join(_sql_setting(s) for s in analyst_profile(bounds))
    statements = [f"CREATE SETTINGS PROFILE OR REPLACE {identifier(ANALYST_PROFILE)} "
                  f"SETTINGS {profile}"]
    for user in USERS:
        create = (f"CREATE USER OR REPLACE {identifier(user.name)} IDENTIFIED WITH sha256_hash "
                  f"BY {literal(hashes[user.name])} DEFAULT DATABASE {db}")
        if user.profile is not None:
            create += f" SETTINGS PROFILE {identifier(user.profile)}"
        statements += [create, f"{grant(user, database)} TO {identifier(user.name)}"]
    return statements


def grant(user: RadarUser, database: str) -> str:
    return f"GRANT {', '.join(user.privileges)} ON {identifier(database)}.*"


def _sql_setting(setting: ProfileSetting) -> str:
    value = literal(setting.value)
    if setting.lowerable:
        return f"{setting.name} = {value} MAX {value} CHANGEABLE_IN_READONLY"
    return f"{setting.name} = {value} CONST"


def grants_script(database: str, bounds: QueryBounds) -> str:
    """What ``radar db init --print-grants`` prints: statements with password placeholders.
    No ``$`` outside the placeholders: ``envsubst`` would put a password into a comment."""
    hashes = {user.name: placeholder(user) for user in USERS}
    lines = [
        f"-- Account Radar users of the ClickHouse database {identifier(database)}: "
        f"{WRITER} (the worker and radar db init) and {ANALYST} (people, Grafana).",
        "-- Run as an administrator after filling the two password hashes with envsubst (README,",
        "-- Users and grants). Unfilled, they are not SHA-256 digests and ClickHouse refuses them.",
        "-- The profile's CHANGEABLE_IN_READONLY needs the server setting",
        "-- access_control_improvements.settings_constraints_replace_previous = true.",
    ]
    lines += [f"{statement};" for statement in grant_statements(database, bounds, hashes)]
    return "\n".join(lines)


def users_xml(database: str, bounds: QueryBounds, users: Iterable[RadarUser] = USERS) -> str:
    """The same users as a ``users.d`` file; passwords come from the server's environment
    (``from_env``), the grants are the SQL ones."""
    root = ET.Element("clickhouse")
    root.append(ET.Comment(" Written by users_xml of sinks/grants.py: change that, then this file "
                           "(tests/unit/test_grants.py compares them). "))
    profiles = ET.SubElement(root, "profiles")
    profile = ET.SubElement(profiles, ANALYST_PROFILE)
    constraints = ET.Element("constraints")
    for setting in analyst_profile(bounds):
        ET.SubElement(profile, setting.name).text = str(setting.value)
        constraint = ET.SubElement(constraints, setting.name)
        if setting.lowerable:
            ET.SubElement(constraint, "max").text = str(setting.value)
            ET.SubElement(constraint, "changeable_in_readonly")
        else:
            ET.SubElement(constraint, "const")
    profile.append(constraints)
    users_element = ET.SubElement(root, "users")
    for user in users:
        entry = ET.SubElement(users_element, user.name)
        ET.SubElement(entry, "password", from_env=user.password_var)
        ET.SubElement(ET.SubElement(entry, "networks"), "ip").text = "::/0"
        if user.profile is not None:
            ET.SubElement(entry, "profile").text = user.profile
        ET.SubElement(ET.SubElement(entry, "grants"), "query").text = grant(user, database)
    ET.indent(root, space="    ")
    return ET.tostring(root, encoding="unicode") + "\n"
