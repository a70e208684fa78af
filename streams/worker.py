"""``radar worker``: open the database, build the app, run it until stopped.

With embedded ClickHouse the worker holds the database open, so it leaves a small state file
next to it saying where its web server answers; ``radar sql`` reads that to query through it.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from processors.erasure import Erased
from processors.rules import DEFAULT_RULES, Rules, RulesError, parse_rules
from sinks.analyst import AnalystQueries, QueryLimits
from sinks.clickhouse import ClickHouseWriter
from streams.app import create_app
from streams.erasure import read_erasures
from streams.metrics import Metrics
from streams.settings import Settings, SettingsError


def worker_state_file(settings: Settings) -> Path | None:
    """Where a worker holding the embedded database announces itself (None for a server DSN)."""
    if not settings.embedded:
        return None
    db = Path(settings.dsn.removeprefix("chdb://"))
    return db.with_name(db.name + ".worker.json")


def read_worker_state(settings: Settings) -> dict[str, Any] | None:
    """The running worker's state, or None when no live worker holds the database."""
    path = worker_state_file(settings)
    if path is None or not path.exists():
        return None
    try:
        state: dict[str, Any] = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


class WorkerRefused(RuntimeError):
    """The worker answered with an error; the message is its own."""


class WorkerUnreachable(RuntimeError):
    """Nothing answered at the worker's address."""


def post_to_worker(url: str, path: str, body: dict[str, Any], token: str | None,
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
        raise WorkerRefused(message) from exc
    except urllib.error.URLError as exc:
        raise WorkerUnreachable(f"the worker at {url} did not answer: {exc.reason}") from exc


def query_limits(settings: Settings) -> QueryLimits:
    return QueryLimits(settings.sql_max_seconds, settings.sql_max_rows,
                       settings.sql_max_memory_bytes)


def check_web_exposure(settings: Settings) -> None:
    """A worker that answers beyond loopback answers /sql only with a token: without one it
    does not start."""
    if not settings.web_on_loopback and settings.sql_token is None:
        raise SettingsError(
            f"RADAR_WEB_HOST={settings.web_host} is reachable from other machines, so /sql needs "
            "a token: set RADAR_SQL_TOKEN (at least 16 characters; clients send it as "
            "'Authorization: Bearer <token>'), or bind RADAR_WEB_HOST=127.0.0.1")


def load_rules(settings: Settings) -> Rules:
    """The rules file named by RADAR_RULES, else the defaults; refused with a clear message."""
    if settings.rules is None:
        return DEFAULT_RULES
    try:
        text = settings.rules.read_text()
    except OSError as exc:
        raise RulesError(f"cannot read the rules file {settings.rules}: {exc.strerror}") from exc
    return parse_rules(text, source=str(settings.rules))


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


def run_worker(settings: Settings) -> None:
    from faust import Worker

    class RadarWorker(Worker):
        def _schedule_shutdown(self, signal: Any) -> None:
            exit_after(SHUTDOWN_GRACE_S)
            super()._schedule_shutdown(signal)

    check_web_exposure(settings)
    rules = load_rules(settings)  # a bad rules file stops the worker before it starts
    writer = ClickHouseWriter(settings.dsn, events_ttl_days=settings.events_ttl_days)
    writer.open_blocking()  # fail fast, with a clear message, before Kafka is touched
    analyst = AnalystQueries(settings.dsn, query_limits(settings))
    metrics = Metrics()
    (settings.local / "faust" / settings.app_id).mkdir(parents=True, exist_ok=True)
    # every erasure so far, before any event is applied (streams.erasure)
    erased = Erased()
    erasures_from = read_erasures(settings, erased)
    app = create_app(settings, writer, metrics, rules, analyst, erased, erasures_from)
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()  # what start-up built lives as long as the worker: never scanned again
    state = worker_state_file(settings)
    if state is not None:
        state.write_text(json.dumps({"pid": os.getpid(), "url": settings.web_url}))
    try:
        worker = RadarWorker(app, loglevel=settings.log_level, redirect_stdouts=False)
        # the terminal spinner turns the root logger to DEBUG: every debug call of aiokafka
        # and Faust then builds a record, measured at ~18% of the event loop
        worker.spinner = None
        worker.execute_from_commandline()
    finally:
        if state is not None:
            try:
                if json.loads(state.read_text()).get("pid") == os.getpid():
                    state.unlink()
            except (OSError, ValueError):
                pass
        analyst.close()
        writer.close_blocking()
