"""One delivery of radar notify against a real HTTP receiver on loopback (aiohttp): retried
after 503 with Retry-After, dead-lettered when a destination answers 500 for ever (without
holding another destination back), not retried on a 4xx, signed, with its idempotency key."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from processors.notify.messages import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    idempotency_key,
    signature,
)
from sinks.webhook import WebhookSender

pytestmark = pytest.mark.integration
SECRET = "0123456789abcdef-secret"


@asynccontextmanager
async def receiver(answers: Callable[[int], web.Response]
                   ) -> AsyncIterator[tuple[str, list[tuple[float, dict[str, str], bytes]]]]:
    """A real HTTP server on a free loopback port; ``answers(n)`` answers the n-th request
    (from 0). Yields its URL and what it received."""
    received: list[tuple[float, dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((time.monotonic(), dict(request.headers), await request.read()))
        return answers(len(received) - 1)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook", received
    finally:
        await runner.cleanup()


def body() -> bytes:
    return json.dumps({"signal_id": "s1", "type": "champion_left"}).encode()


def headers(destination: str, raw: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json",
            IDEMPOTENCY_HEADER: idempotency_key("s1", destination),
            SIGNATURE_HEADER: signature(SECRET, raw)}


def test_a_503_with_retry_after_is_retried_then_delivered_signed_and_keyed() -> None:
    async def run() -> None:
        def answers(n: int) -> web.Response:
            return web.Response(status=503, headers={"Retry-After": "1"}) if n == 0 \
                else web.Response(status=200)

        retried: list[str] = []
        async with receiver(answers) as (url, received), aiohttp.ClientSession() as session:
            sender = WebhookSender(session, on_retry=retried.append)
            raw = body()
            result = await sender.deliver("crm-hook", url, raw, headers("crm-hook", raw), 30)
        assert (result.outcome, result.attempts, result.status) == ("delivered", 2, 200)
        assert retried == ["crm-hook"]
        (first, h1, b1), (second, h2, b2) = received
        assert second - first >= 0.95  # Retry-After: 1 honoured
        assert b1 == b2 == raw and h1[IDEMPOTENCY_HEADER] == h2[IDEMPOTENCY_HEADER] == "s1:crm-hook"
        # the receiver checks the signature with the shared secret
        assert h2[SIGNATURE_HEADER] == signature(SECRET, b2)
        assert h2[SIGNATURE_HEADER] != signature("another-secret-0123456", b2)

    asyncio.run(run())


def test_a_destination_failing_for_ever_is_dead_lettered_and_holds_no_other_back() -> None:
    async def run() -> None:
        async with receiver(lambda n: web.Response(status=500)) as (bad, bad_got), \
                receiver(lambda n: web.Response(status=204)) as (good, good_got), \
                aiohttp.ClientSession() as session:
            sender = WebhookSender(session)
            raw = body()
            started = time.monotonic()
            failing = asyncio.ensure_future(
                sender.deliver("down", bad, raw, headers("down", raw), give_up_after=2.0))
            delivered = await sender.deliver("up", good, raw, headers("up", raw), 30)
            on_time = time.monotonic() - started
            result = await failing
        assert delivered.outcome == "delivered" and on_time < 1.0  # not behind the other one
        assert good_got and len(bad_got) >= 2
        assert (result.outcome, result.status) == ("dead_lettered", 500)
        assert result.attempts == len(bad_got) and "still failing after 2 s" in (result.error or "")

    asyncio.run(run())


def test_a_refusal_is_not_retried_and_an_unreachable_receiver_is() -> None:
    async def run() -> tuple[Any, Any, int]:
        async with receiver(lambda n: web.Response(status=404)) as (url, got), \
                aiohttp.ClientSession() as session:
            sender = WebhookSender(session)
            raw = body()
            refused = await sender.deliver("crm", url, raw, headers("crm", raw), 30)
            # a port nobody listens on: connection refused, retried until given up
            closed = url.rsplit(":", 1)[0] + ":9/hook"
            unreachable = await sender.deliver("crm", closed, raw, headers("crm", raw), 1.5)
        return refused, unreachable, len(got)

    refused, unreachable, requests = asyncio.run(run())
    assert (refused.outcome, refused.attempts, refused.status) == ("dead_lettered", 1, 404)
    assert requests == 1
    assert unreachable.outcome == "dead_lettered" and unreachable.status is None
    assert unreachable.attempts >= 2 and "ClientConnectorError" in (unreachable.error or "")
