"""Fault injection for reliability tests: seeded, configurable, changeable at run time.

Every request (except the control endpoint below) draws one number from `random.Random(seed)`
and may get, by the configured rates: a 503, a 500, a 429 with `Retry-After`, or a dropped
connection - closed with no response at all, either before the request reaches the app
(`drop_before`: nothing written) or after the app has run (`drop_after`: the write is committed
but the client never hears so). A client cannot tell the two drops apart, which is the point:
its retries must be idempotent. `latency` adds that many seconds to every request.

    h = sandbox.start(faults="503=0.1,429=0.1,drop=0.05,latency=0.02", seed=7)
    h.set_faults("500=0.2")          # change on a running sandbox; None switches faults off

A sandbox started from the CLI is controlled over HTTP (bearer token required, never faulted):
`GET /_sandbox/faults` shows the settings and counts, `PUT /_sandbox/faults` with
`{"faults": "503=0.5", "seed": 3}` changes them.

The middleware must be the outermost ASGI app (the one uvicorn calls) so that it can reach the
connection's transport to abort it; see `_abort`.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import orjson

from .bearer import bearer_matches

CONTROL_PATH = "/_sandbox/faults"
CONTROL_MAX_BODY = 64 * 1024

_ALIASES = {
    "503": "unavailable",
    "500": "server_error",
    "429": "throttle",
    "drop": "drop",
}


@dataclass(frozen=True)
class Faults:
    """Fault rates (0..1, of all requests) plus added latency in seconds."""

    unavailable: float = 0.0  # 503
    server_error: float = 0.0  # 500
    throttle: float = 0.0  # 429 + Retry-After
    drop_before: float = 0.0  # connection closed, request not applied
    drop_after: float = 0.0  # connection closed, request applied
    latency: float = 0.0  # seconds added to every request
    retry_after: int = 1  # seconds, for injected 429s and 503s

    @property
    def total_rate(self) -> float:
        return (
            self.unavailable
            + self.server_error
            + self.throttle
            + self.drop_before
            + self.drop_after
        )

    @property
    def enabled(self) -> bool:
        return self.total_rate > 0 or self.latency > 0


_FIELDS = {f.name for f in fields(Faults)}


def parse_faults(text: str | None) -> Faults:
    """Parse the CLI form, e.g. `503=0.1,500=0.05,429=0.1,drop=0.05,latency=0.02` (any subset).

    `drop` is split evenly between `drop_before` and `drop_after`, which may also be given
    separately. `latency` is in seconds; `retry_after` in whole seconds.

    >>> parse_faults("503=0.1,drop=0.2").drop_after
    0.1
    """
    values: dict[str, Any] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        given, sep, raw = item.partition("=")
        given = given.strip()
        key = _ALIASES.get(given, given)
        if not sep or (key not in _FIELDS and key != "drop"):
            raise ValueError(
                f"faults: cannot read {item!r}; expected key=value with keys 503, 500, 429, "
                "drop, drop_before, drop_after, latency, retry_after "
                "(e.g. '503=0.1,drop=0.05,latency=0.02')"
            )
        # Plain ASCII numbers only: Python's float() would take 'nan', 'inf' and '1_000'.
        text = raw.strip()
        if not re.fullmatch(r"[0-9]+" if key == "retry_after" else r"[0-9]+(\.[0-9]+)?", text):
            kind = "a whole number of seconds" if key == "retry_after" else "a number"
            raise ValueError(f"faults: {given} must be {kind} (0 or more), got {text!r}")
        number = int(text) if key == "retry_after" else float(text)
        rate = key not in ("latency", "retry_after")
        if rate and number > 1:
            raise ValueError(f"faults: {given} must be a rate between 0 and 1, got {text!r}")
        if not math.isfinite(number):
            raise ValueError(f"faults: {given} must be a finite number, got {text[:40]!r}")
        if key == "drop":
            values["drop_before"] = values["drop_after"] = number / 2
        else:
            values[key] = number
    faults = Faults(**values)
    if faults.total_rate > 1:
        raise ValueError(f"faults: the rates add up to {faults.total_rate:g}, more than 1")
    return faults


def coerce_faults(value: Faults | str | dict | None) -> Faults:
    """Accept Faults, CLI text, a dict of the same keys, or None (no faults)."""
    if value is None:
        return Faults()
    if isinstance(value, Faults):
        return value
    if isinstance(value, str):
        return parse_faults(value)
    if isinstance(value, dict):
        return parse_faults(",".join(f"{k}={v}" for k, v in value.items()))
    raise TypeError(f"faults must be Faults, 'key=value,...' text or a dict, not {type(value)}")


class FaultInjector:
    """Decides, request by request, which fault (if any) to inject. Thread-safe."""

    KINDS = ("unavailable", "server_error", "throttle", "drop_before", "drop_after")

    def __init__(self, faults: Faults | str | dict | None = None, seed: int | None = None):
        self._lock = threading.Lock()
        self._faults = coerce_faults(faults)
        self._rng = random.Random(seed)
        self.seed = seed  # the last seed given, so a run can be reproduced
        self.counts: Counter[str] = Counter()  # injected faults by kind, since configure()

    @property
    def faults(self) -> Faults:
        return self._faults

    def configure(self, faults: Faults | str | dict | None, seed: int | None = None) -> None:
        """Replace the settings; a `seed` restarts the random sequence."""
        new = coerce_faults(faults)
        with self._lock:
            self._faults = new
            if seed is not None:
                self._rng = random.Random(seed)
                self.seed = seed
            self.counts.clear()

    def draw(self) -> str | None:
        """The fault for the next request, or None."""
        with self._lock:
            faults = self._faults
            if faults.total_rate <= 0:
                return None
            point = self._rng.random()
            for kind in self.KINDS:
                rate = getattr(faults, kind)
                if point < rate:
                    self.counts[kind] += 1
                    return kind
                point -= rate
            return None

    def describe(self) -> dict[str, Any]:
        """The settings, the seed and the faults injected so far (`GET /_sandbox/faults`)."""
        with self._lock:
            return {
                "faults": asdict(self._faults),
                "seed": self.seed,
                "injected": dict(self.counts),
            }


def _error(status: int, code: str, message: str, retry_after: int | None = None):
    body = orjson.dumps({"error": {"code": code, "message": message}})
    headers = [
        (b"content-type", b"application/json; odata.metadata=minimal"),
        (b"odata-version", b"4.0"),
        (b"content-length", str(len(body)).encode()),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    return status, headers, body


async def _respond(send, status: int, headers, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _abort(send) -> None:
    """Close the client's connection without a response.

    uvicorn's `send` is a bound method of its per-connection protocol (h11) or request cycle
    (httptools), both holding the asyncio transport; `abort()` resets the connection so the
    client sees a connection error rather than any status. If the transport is out of reach
    (middleware placed under another one), fall back to starting a response whose body never
    comes: uvicorn then closes the connection and the client fails reading it.
    """
    owner = getattr(send, "__self__", None)
    transport = getattr(owner, "transport", None)
    if transport is not None:
        transport.abort()
        # Let connection_lost run so uvicorn knows not to answer on the dead connection.
        for _ in range(3):
            await asyncio.sleep(0)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"1048576")],
        }
    )


class FaultsMiddleware:
    """ASGI middleware injecting the `FaultInjector`'s faults; also serves CONTROL_PATH."""

    def __init__(self, app: Any, injector: FaultInjector, token: str | Callable[[], str]) -> None:
        """`token` is the sandbox bearer token or a callable returning it (for the control)."""
        self.app = app
        self.injector = injector
        self._token = token

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == CONTROL_PATH:
            await self._control(scope, receive, send)
            return
        faults = self.injector.faults
        if not faults.enabled:
            await self.app(scope, receive, send)
            return
        if faults.latency > 0:
            await asyncio.sleep(faults.latency)
        kind = self.injector.draw()
        if kind is None:
            await self.app(scope, receive, send)
        elif kind == "unavailable":
            await _respond(
                send,
                *_error(
                    503,
                    "",
                    "The service is temporarily unavailable. Please try again later.",
                    faults.retry_after,
                ),
            )
        elif kind == "server_error":
            await _respond(send, *_error(500, "0x80040216", "An unexpected error occurred."))
        elif kind == "throttle":
            await _respond(
                send,
                *_error(
                    429,
                    "0x80072322",
                    "Number of requests exceeded the limit of 6000 over time window of 300 "
                    "seconds.",
                    faults.retry_after,
                ),
            )
        elif kind == "drop_before":
            await _abort(send)
        else:  # drop_after: let the app do its work, then never deliver the answer

            async def swallow(message) -> None:
                return None

            try:
                await self.app(scope, receive, swallow)
            finally:
                await _abort(send)

    async def _control(self, scope, receive, send) -> None:
        token = self._token() if callable(self._token) else self._token
        given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        if not bearer_matches(given, token):
            await _respond(send, *_error(401, "", "Bearer token required."))
            return
        method = scope["method"]
        if method in ("PUT", "POST", "PATCH"):
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if len(body) > CONTROL_MAX_BODY:
                    too_large = f"The settings body is larger than {CONTROL_MAX_BODY} bytes."
                    await _respond(send, *_error(413, "0x80048d19", too_large))
                    return
                if not message.get("more_body"):
                    break
            try:
                request = orjson.loads(body or b"{}")
                if not isinstance(request, dict):
                    raise ValueError("faults: the body must be a JSON object")
                self.injector.configure(request.get("faults"), request.get("seed"))
            except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
                await _respond(send, *_error(400, "0x80040203", str(exc).splitlines()[0]))
                return
        elif method != "GET":
            await _respond(send, *_error(405, "", f"{method} is not supported here."))
            return
        body = orjson.dumps(self.injector.describe())
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await _respond(send, 200, headers, body)
