"""Web views. The worker's: ``/metrics`` for Prometheus. The store's (it holds the database):
``/metrics``, ``/sql`` for analysts and ``/erase`` for ``radar erase``; the last two answer only
with the /sql token when one is set (and a process that listens beyond loopback has one:
``streams.store_client.check_web_exposure``)."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

import faust
from aiohttp import web
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sinks.analyst import AnalystQueries, QueryFailed
from sinks.readonly import NotReadOnly
from streams.erasure import Eraser, handle_erase_request
from streams.metrics import Metrics
from streams.settings import Settings

log = logging.getLogger(__name__)
# how often a running /sql query looks whether its client is still there
DISCONNECT_POLL_S = 0.25
UNAUTHORIZED = {"error": "send Authorization: Bearer $RADAR_SQL_TOKEN", "kind": "unauthorized"}


def authorized(settings: Settings, header: str | None) -> bool:
    """Whether a request may run: with a token configured, it must carry it as
    ``Authorization: Bearer <token>`` (compared in constant time)."""
    if settings.sql_token is None:
        return True  # only possible on loopback: the store refuses anything else
    expected = f"Bearer {settings.sql_token.get_secret_value()}".encode()
    return hmac.compare_digest((header or "").encode(), expected)


async def until_disconnected(request: web.Request) -> None:
    """Returns once the client of ``request`` has hung up."""
    transport = request.transport
    while transport is not None and not transport.is_closing():
        await asyncio.sleep(DISCONNECT_POLL_S)


def add_metrics_view(app: faust.App, metrics: Metrics) -> None:
    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            # aiohttp refuses a charset in content_type=, so the header is set as it is
            return self.bytes(generate_latest(metrics.registry),
                              headers={"Content-Type": CONTENT_TYPE_LATEST})


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body, default=str).encode(), status=status,
                        content_type="application/json")


def metrics_web_app(metrics: Metrics) -> web.Application:
    """``/metrics`` alone (``radar notify``'s web server)."""
    async def metrics_view(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    return app


def store_web_app(settings: Settings, metrics: Metrics, analyst: AnalystQueries,
                  eraser: Eraser) -> web.Application:
    async def metrics_view(request: web.Request) -> web.Response:
        # aiohttp refuses a charset in content_type=, so the header is set as it is
        return web.Response(body=generate_latest(metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def sql_view(request: web.Request) -> web.Response:
        """Analyst queries through the store, which holds the embedded database open: judged,
        bounded and run beside the inserts (sinks.analyst); a client that hangs up cancels its
        query."""
        if not authorized(settings, request.headers.get("Authorization")):
            return _json(UNAUTHORIZED, status=401)
        try:
            body = json.loads(await request.text())
            sql = str(body["sql"])
        except (ValueError, KeyError, TypeError):
            return _json({"error": 'send {"sql": "SELECT ..."}', "kind": "bad_request"}, 400)
        query = asyncio.ensure_future(analyst.run(sql))
        gone = asyncio.ensure_future(until_disconnected(request))
        try:
            await asyncio.wait({query, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not query.done():
            query.cancel()  # the client hung up: the query is killed, not left to run
            log.info("/sql: the client hung up; its query was cancelled")
            return _json({"error": "client gone", "kind": "cancelled"}, status=499)
        try:
            columns, rows = query.result()
        except NotReadOnly as exc:
            return _json({"error": str(exc), "kind": "not_read_only"}, status=400)
        except QueryFailed as exc:
            return _json({"error": str(exc), "kind": "query_failed"}, status=400)
        return _json({"columns": columns, "rows": rows})

    async def erase_view(request: web.Request) -> web.Response:
        """``radar erase`` through the store that holds the database (streams.erasure)."""
        if not authorized(settings, request.headers.get("Authorization")):
            return _json(UNAUTHORIZED, status=401)
        try:
            kind, subject_id = handle_erase_request(json.loads(await request.text()))
        except ValueError as exc:
            return _json({"error": str(exc), "kind": "bad_request"}, status=400)
        removed = await eraser.erase(kind, subject_id)
        log.warning("erased a %s: %s", kind, removed)  # the id is not logged
        return _json({"removed": removed})

    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    app.router.add_post("/sql", sql_view)
    app.router.add_post("/erase", erase_view)
    return app
