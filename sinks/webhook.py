"""One delivery to one destination of ``radar notify`` (SPEC section 10): an HTTP POST of a
JSON body, retried with backoff on connection errors, 429 and 5xx (``Retry-After`` honoured,
in seconds or as a date), given up after ``give_up_after`` (then dead-lettered by the caller).
Any other answer (a 4xx: a wrong URL, a receiver that refuses the body) is not retried: it
will not get better. The retrying is tenacity's; the clock and the sleep are handed in.

A delivery can be abandoned (its signal's partition went to another notifier): it stops
waiting at once, but an attempt already sent is awaited, so its answer is known and recorded,
and the other notifier does not send it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_before_delay,
    wait_exponential_jitter,
)

ATTEMPT_TIMEOUT_S = 10.0  # one POST, connect to last byte
BACKOFF = wait_exponential_jitter(multiplier=0.5, max=60.0, jitter=0.5)
RETRY_AFTER_MAX_S = 3600.0  # a receiver asking for more is waited for this long at most


@dataclass(frozen=True)
class DeliveryResult:
    # abandoned: stopped before a 2xx because ``abandon`` was set; nothing to record
    outcome: Literal["delivered", "dead_lettered", "abandoned"]
    attempts: int
    status: int | None  # the last HTTP status, None when no answer came
    error: str | None = None  # why it was given up


class _Retryable(Exception):
    def __init__(self, why: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(why)
        self.status = status
        self.retry_after = retry_after


class _Abandoned(Exception):
    pass


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}: not retried")
        self.status = status


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date; None if absent or
    unreadable (the backoff applies)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_MAX_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), RETRY_AFTER_MAX_S)


def _wait(state: RetryCallState) -> float:
    """The receiver's ``Retry-After`` when it gave one, else exponential backoff with jitter."""
    error = state.outcome.exception() if state.outcome is not None else None
    if isinstance(error, _Retryable) and error.retry_after is not None:
        return error.retry_after
    return float(BACKOFF(state))


class WebhookSender:
    """POSTs bodies for one process; ``deliver`` never raises for a failed delivery."""

    def __init__(self, session: aiohttp.ClientSession,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 on_retry: Callable[[str], None] | None = None) -> None:
        """``on_retry(destination)``: called before each retry (for the retried counter)."""
        self.session = session
        self.sleep = sleep
        self.now = now
        self.on_retry = on_retry

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        try:
            async with self.session.post(
                    url, data=body, headers=dict(headers),
                    timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT_S)) as response:
                await response.read()
                status = response.status
                if status < 300:
                    return status
                if status == 429 or status >= 500:
                    raise _Retryable(f"HTTP {status}", status, retry_after_seconds(
                        response.headers.get("Retry-After"), self.now()))
                raise _Refused(status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}".strip(": ")) from exc

    async def deliver(self, destination: str, url: str, body: bytes,
                      headers: Mapping[str, str], give_up_after: float, *,
                      abandon: asyncio.Event | None = None,
                      gate: asyncio.Semaphore | None = None) -> DeliveryResult:
        """POST ``body`` until a 2xx, a refusal, ``give_up_after`` seconds, or ``abandon`` is
        set (an attempt under way is finished first). ``gate`` bounds the attempts under way
        to one destination (a backlog does not open a connection per alert)."""
        attempts = 0

        async def sleep(seconds: float) -> None:
            if abandon is None:
                await self.sleep(seconds)
                return
            racing = [asyncio.ensure_future(abandon.wait()),
                      asyncio.ensure_future(self.sleep(seconds))]
            try:
                await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in racing:
                    task.cancel()

        async def attempt_once() -> int:
            if abandon is not None and abandon.is_set():
                raise _Abandoned()
            if gate is None:
                return await self._post(url, body, headers)
            async with gate:
                if abandon is not None and abandon.is_set():
                    raise _Abandoned()
                return await self._post(url, body, headers)

        def retried(_: RetryCallState) -> None:
            if self.on_retry is not None:
                self.on_retry(destination)

        retrying = AsyncRetrying(
            stop=stop_before_delay(give_up_after), wait=_wait, sleep=sleep,
            retry=retry_if_exception_type(_Retryable), before_sleep=retried, reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    status = await attempt_once()
        except _Abandoned:
            return DeliveryResult("abandoned", attempts - 1, None)
        except _Retryable as exc:
            return DeliveryResult("dead_lettered", attempts, exc.status,
                                  f"still failing after {give_up_after:g} s: {exc}")
        except _Refused as exc:
            return DeliveryResult("dead_lettered", attempts, exc.status, str(exc))
        return DeliveryResult("delivered", attempts, status)
