"""A webhook receiver on loopback (aiohttp, in a thread of its own, so its caller stays
synchronous): where ``radar demo`` routes its alerts, what the latency benchmark times, and the
receiver of the integration tests of ``radar notify``. Every POST is recorded; each path
answers as it is told (200, 500 for ever, 503 with Retry-After a few times per key, slowly)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from processors.notify.messages import IDEMPOTENCY_HEADER


@dataclass(frozen=True)
class Received:
    at: float  # time.time()
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what it was answered

    @property
    def key(self) -> str:
        return self.headers.get(IDEMPOTENCY_HEADER, "")


@dataclass
class Behaviour:
    status: int = 200
    fail_first: int = 0  # per key, answer 503 with Retry-After this many times first
    retry_after: str = "1"
    delay_s: float = 0.0


@dataclass
class Receiver:
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def on(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def delivered(self, path: str) -> list[Received]:
        return [r for r in self.on(path) if r.status < 300]

    def counts(self, path: str) -> Counter[str]:
        """2xx answers per Idempotency-Key."""
        return Counter(r.key for r in self.delivered(path))

    def wait(self, until: Callable[[Receiver], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until(self):
                return
            time.sleep(0.05)
        raise AssertionError(f"{what}: not within {timeout:g} s; received "
                             f"{[(r.path, r.key, r.status) for r in self.received][-20:]}")

    async def answer(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        body = await request.read()
        behaviour = self.behaviours.get(path, Behaviour())
        if behaviour.delay_s:
            await asyncio.sleep(behaviour.delay_s)
        key = request.headers.get(IDEMPOTENCY_HEADER, "")
        with self._lock:
            seen = sum(1 for r in self.received if r.path == path and r.key == key)
        headers = {}
        if seen < behaviour.fail_first:
            status = 503
            headers["Retry-After"] = behaviour.retry_after
        else:
            status = behaviour.status
        with self._lock:
            self.received.append(Received(time.time(), path, dict(request.headers), body,
                                          status))
        return web.Response(status=status, headers=headers, text="ok" if status < 300 else "no")


class ReceiverThread:
    """Starts the receiver on a free loopback port; ``stop()`` ends it."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.runner: web.AppRunner | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/{path}", self.receiver.answer)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.receiver.port = self.runner.addresses[0][1]
        self.started.set()
        self.loop.run_forever()

    def start(self) -> Receiver:
        self.thread.start()
        if not self.started.wait(10):
            raise AssertionError("the test's HTTP receiver did not start")
        return self.receiver

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
