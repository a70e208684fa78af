"""Finding and asking the running ``radar store`` (no Faust here: ``radar sql`` and ``radar
erase`` import this).

With embedded ClickHouse the store holds the database open, so it leaves a small state file
next to it saying where its web server answers; ``radar sql`` and ``radar erase`` read that to
go through it.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from sinks.analyst import QueryLimits
from streams.settings import Settings, SettingsError


def store_state_file(settings: Settings) -> Path | None:
    """Where the store holding the embedded database announces itself (None for a server DSN)."""
    if not settings.embedded:
        return None
    db = Path(settings.dsn.removeprefix("chdb://"))
    return db.with_name(db.name + ".store.json")


def read_store_state(settings: Settings) -> dict[str, Any] | None:
    """The running store's state, or None when no live store holds the database."""
    path = store_state_file(settings)
    if path is None or not path.exists():
        return None
    try:
        state: dict[str, Any] = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


class StoreRefused(RuntimeError):
    """The store answered with an error; the message is its own."""


class StoreUnreachable(RuntimeError):
    """Nothing answered at the worker's address."""


def post_to_store(url: str, path: str, body: dict[str, Any], token: str | None,
                   timeout: float) -> dict[str, Any]:
    """POST ``body`` as JSON to the worker's ``path`` (with the /sql token when there is one);
    returns the JSON answer."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{url}{path}", data=json.dumps(body).encode(),
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", str(exc))
        except ValueError:
            message = str(exc)
        raise StoreRefused(message) from exc
    except urllib.error.URLError as exc:
        raise StoreUnreachable(f"the store at {url} did not answer: {exc.reason}") from exc


def query_limits(settings: Settings) -> QueryLimits:
    return QueryLimits(settings.sql_max_seconds, settings.sql_max_rows,
                       settings.sql_max_memory_bytes)


def check_web_exposure(settings: Settings) -> None:
    """A store that answers beyond loopback answers /sql only with a token: without one it
    does not start."""
    if not settings.web_on_loopback and settings.sql_token is None:
        raise SettingsError(
            f"RADAR_WEB_HOST={settings.web_host} is reachable from other machines, so /sql needs "
            "a token: set RADAR_SQL_TOKEN (at least 16 characters; clients send it as "
            "'Authorization: Bearer <token>'), or bind RADAR_WEB_HOST=127.0.0.1")
