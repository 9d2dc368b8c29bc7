"""Service-protection limits (dataverse-wire.md §9), per bearer token, off by default.

Dataverse counts, per user and per web server over a sliding window: the number of requests, the
combined execution time, and the requests in flight. Going over answers 429 with `Retry-After`
(whole seconds) and one of three error codes. The sandbox does the same with configurable
numbers so that clients' back-off logic can be tested in seconds rather than in 300-s windows:

    h = sandbox.start(limits="requests=20,window=2")   # or Limits(requests=20, window=2)
    h.set_limits("concurrent=4")                        # change on a running sandbox
    h.set_limits(None)                                  # off

Requests are counted per authenticated caller, after authentication: a request with a missing
or bogus token is answered 401 before it reaches the limiter, so it costs nothing and adds no
entry (and `Bearer`/`bearer`/extra spaces are the same caller, not new buckets).

`$batch` counts as one request, as Microsoft documents: "A batch can contain up to 1000
operations and will avoid the number of requests limit. However, you will need to be prepared
for the execution time limit." (https://learn.microsoft.com/power-apps/developer/data-platform/
api-limits#number-of-requests). Its parts are dispatched past this middleware, and the batch's
whole execution time counts toward `execution_ms`.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

REQUESTS_CODE = "0x80072322"
EXECUTION_CODE = "0x80072321"
CONCURRENCY_CODE = "0x80072326"

# Refusals in a row that add one second to Retry-After.
HAMMERING = 10

# Paths the limits never apply to: the sandbox's own control endpoints.
EXEMPT_PREFIX = "/_sandbox/"


@dataclass(frozen=True)
class Limits:
    """Service-protection settings; `None` switches a limit off."""

    requests: int | None = None  # requests per window
    window: float = 300.0  # seconds, for `requests` and `execution_ms`
    concurrent: int | None = None  # requests in flight
    execution_ms: int | None = None  # combined execution time per window

    @property
    def enabled(self) -> bool:
        return any(v is not None for v in (self.requests, self.concurrent, self.execution_ms))


_KEYS = {f.name for f in fields(Limits)}
_ALIASES = {"execution": "execution_ms", "time": "execution_ms"}


def parse_limits(text: str | None) -> Limits:
    """Parse the CLI form `requests=N,window=S,concurrent=C,execution_ms=M` (any subset).

    >>> parse_limits("requests=100,window=10")
    Limits(requests=100, window=10.0, concurrent=None, execution_ms=None)
    """
    values: dict[str, Any] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, raw = item.partition("=")
        key = _ALIASES.get(key.strip(), key.strip())
        if not sep or key not in _KEYS:
            raise ValueError(
                f"limits: cannot read {item!r}; expected key=value with keys "
                "requests, window, concurrent, execution_ms (e.g. 'requests=100,window=10')"
            )
        # Plain ASCII numbers only: Python's float()/int() would take 'nan', 'inf' and '1_000'.
        text = raw.strip()
        if not re.fullmatch(r"[0-9]+(\.[0-9]+)?" if key == "window" else r"[0-9]+", text):
            kind = "a number of seconds" if key == "window" else "a whole number"
            raise ValueError(f"limits: {key} must be {kind}, got {text!r}")
        number = float(text) if key == "window" else int(text)
        if number <= 0 or not math.isfinite(number):
            raise ValueError(f"limits: {key} must be greater than 0, got {raw.strip()!r}")
        values[key] = number
    return Limits(**values)


def coerce_limits(value: Limits | str | dict | None) -> Limits:
    """Accept what `start(limits=...)` / `set_limits(...)` accept: Limits, CLI text, dict or None."""
    if value is None:
        return Limits()
    if isinstance(value, Limits):
        return value
    if isinstance(value, str):
        return parse_limits(value)
    if isinstance(value, dict):
        return parse_limits(",".join(f"{k}={v}" for k, v in value.items()))
    raise TypeError(f"limits must be Limits, 'key=value,...' text or a dict, not {type(value)}")


@dataclass
class _Usage:
    """One token's recent history."""

    starts: deque[float] = field(default_factory=deque)  # admitted request start times
    runs: deque[tuple[float, float]] = field(default_factory=deque)  # (end time, duration ms)
    run_ms: float = 0.0  # sum of durations in `runs`
    in_flight: int = 0
    refused: int = 0  # refusals in a row since the last admitted request


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused, rendered as the Dataverse 429."""

    code: str
    message: str
    retry_after: int


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class Limiter:
    """Counts requests per token and decides whether the next one may run.

    Thread-safe: the server's event loop admits requests while tests reconfigure from their own
    thread. Keys are caller ids (never tokens).
    """

    def __init__(
        self,
        limits: Limits | str | dict | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._usage: dict[str, _Usage] = {}
        self._limits = coerce_limits(limits)

    @property
    def limits(self) -> Limits:
        return self._limits

    def configure(self, limits: Limits | str | dict | None) -> None:
        """Replace the settings and forget the history (a fresh window)."""
        new = coerce_limits(limits)
        with self._lock:
            self._limits = new
            self._usage.clear()

    def admit(self, key: str) -> Refusal | None:
        """Register a request start for `key`, or say why it must be refused."""
        limits = self._limits
        now = self._clock()
        with self._lock:
            usage = self._usage.setdefault(key, _Usage())
            self._expire(usage, now, limits.window)
            refusal = self._check(usage, now, limits)
            if refusal is not None:
                # Continued hammering lengthens Retry-After ([AL]): a second more for every
                # HAMMERING refusals in a row; a client that waits as told never pays it.
                usage.refused += 1
                extra = usage.refused // HAMMERING
                if extra:
                    refusal = Refusal(refusal.code, refusal.message, refusal.retry_after + extra)
                return refusal
            usage.refused = 0
            usage.starts.append(now)
            usage.in_flight += 1
            return None

    def _check(self, usage: _Usage, now: float, limits: Limits) -> Refusal | None:
        # Concurrency trips immediately; the others only once exceeded (as documented).
        if limits.concurrent is not None and usage.in_flight >= limits.concurrent:
            return Refusal(
                CONCURRENCY_CODE,
                f"Number of concurrent requests exceeded the limit of {limits.concurrent}.",
                1,
            )
        if limits.requests is not None and len(usage.starts) >= limits.requests:
            wait = usage.starts[0] + limits.window - now
            return Refusal(
                REQUESTS_CODE,
                f"Number of requests exceeded the limit of {limits.requests} over time "
                f"window of {_seconds(limits.window)} seconds.",
                max(1, math.ceil(wait)),
            )
        if limits.execution_ms is not None and usage.run_ms > limits.execution_ms:
            wait = self._execution_wait(usage, now, limits)
            return Refusal(
                EXECUTION_CODE,
                f"Combined execution time of incoming requests exceeded limit of "
                f"{limits.execution_ms:,}  milliseconds over time window of "
                f"{_seconds(limits.window)} seconds. Decrease number of concurrent requests "
                "or reduce the duration of requests and try again later.",
                max(1, math.ceil(wait)),
            )
        return None

    def finish(self, key: str, started: float) -> None:
        """Register the end of a request admitted at `started` (a clock reading)."""
        now = self._clock()
        with self._lock:
            usage = self._usage.get(key)
            if usage is None:  # reconfigured while the request ran
                return
            usage.in_flight = max(0, usage.in_flight - 1)
            duration = (now - started) * 1000.0
            usage.runs.append((now, duration))
            usage.run_ms += duration

    def now(self) -> float:
        return self._clock()

    def remaining(self, key: str) -> list[tuple[bytes, bytes]]:
        """Dataverse's debug headers: requests and execution time left in the window."""
        limits = self._limits
        headers = []
        with self._lock:
            usage = self._usage.get(key)
            if usage is None:
                return headers
            if limits.requests is not None:
                left = max(0, limits.requests - len(usage.starts))
                headers.append((b"x-ms-ratelimit-burst-remaining-xrm-requests", b"%d" % left))
            if limits.execution_ms is not None:
                left_ms = max(0.0, limits.execution_ms - usage.run_ms)
                headers.append(
                    (b"x-ms-ratelimit-time-remaining-xrm-requests", f"{left_ms:,.2f}".encode())
                )
        return headers

    @staticmethod
    def _expire(usage: _Usage, now: float, window: float) -> None:
        horizon = now - window
        while usage.starts and usage.starts[0] <= horizon:
            usage.starts.popleft()
        while usage.runs and usage.runs[0][0] <= horizon:
            usage.run_ms -= usage.runs.popleft()[1]

    @staticmethod
    def _execution_wait(usage: _Usage, now: float, limits: Limits) -> float:
        # Time until enough runs leave the window for the total to drop to the limit.
        excess = usage.run_ms - (limits.execution_ms or 0)
        for end, ms in usage.runs:
            excess -= ms
            if excess <= 0:
                return end + limits.window - now
        return limits.window


def refusal_response(refusal: Refusal) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The 429 as (status, headers, body)."""
    body = orjson.dumps({"error": {"code": refusal.code, "message": refusal.message}})
    headers = [
        (b"content-type", b"application/json; odata.metadata=minimal"),
        (b"odata-version", b"4.0"),
        (b"retry-after", str(refusal.retry_after).encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    return 429, headers, body


class LimitsMiddleware:
    """ASGI middleware applying a `Limiter` per caller. It sits inside the auth middleware, so
    only authenticated requests reach it; `caller(scope)` names who sent one."""

    def __init__(self, app: Any, limiter: Limiter, caller: Callable[[dict[str, Any]], str]) -> None:
        self.app = app
        self.limiter = limiter
        self.caller = caller

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or not self.limiter.limits.enabled
            or scope["path"].startswith(EXEMPT_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        key = self.caller(scope)
        refusal = self.limiter.admit(key)
        if refusal is not None:
            status, headers, body = refusal_response(refusal)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        started = self.limiter.now()
        remaining = self.limiter.remaining(key)

        async def send_with_remaining(message) -> None:
            if message["type"] == "http.response.start" and remaining:
                message = {**message, "headers": [*message.get("headers", []), *remaining]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_remaining)
        finally:
            self.limiter.finish(key, started)
