"""One HTTP transport per connection: headers, auth, retries, throttle governor, typed errors.

Operations describe requests as :class:`ApiRequest`; :class:`SyncSession` and
:class:`AsyncSession` send them through one pooled ``httpx`` client each, sharing the same retry
policy, governor and token provider. What may be retried:

* 429 always (the service refused the request without running it), after ``Retry-After``;
* 408/502/503/504 and dropped connections only for idempotent requests - GET, DELETE, PUT,
  PATCH, and POSTs the caller made idempotent (creates carrying a client-generated id);
* connection failures before anything was sent (connect errors), always;
* 401 once, after forcing a token refresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson

from d365nb.client.errors import (
    TRANSIENT_STATUSES,
    D365Error,
    TransportError,
    Unauthorized,
    ValidationError,
    error_for_status,
)
from d365nb.client.governor import Governor
from d365nb.client.retry import RetryPolicy

__all__ = [
    "ApiRequest",
    "RetryPolicy",
    "SyncSession",
    "AsyncSession",
    "TokenSource",
    "DEFAULT_HEADERS",
    "DEFAULT_TIMEOUT",
]

log = logging.getLogger("d365nb.client.http")

DEFAULT_HEADERS = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
    "User-Agent": "d365nb/0.1",
}
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=15.0)
_PORTS = {"http": 80, "https": 443}
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})


class TokenSource(Protocol):
    """What the transport needs from auth: a bearer token, cached or fetched."""

    def cached(self) -> str | None:
        """A token still valid for a while, without any I/O, or None."""

    def token(self, *, force_refresh: bool = False) -> str:
        """A valid token, signing in or refreshing as needed (may block)."""


@dataclass
class ApiRequest:
    """A Web API request, relative to the API root (``leads``) or absolute (a nextLink)."""

    method: str
    path: str
    params: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    idempotent: bool | None = None  # None: decided by method

    @property
    def is_idempotent(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method.upper() in _IDEMPOTENT_METHODS


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


def _request_id(response: httpx.Response) -> str | None:
    headers = response.headers
    return (
        headers.get("x-ms-service-request-id") or headers.get("REQ_ID") or headers.get("request-id")
    )


def error_from_response(response: httpx.Response, request: ApiRequest) -> D365Error:
    """The typed error for a failed response, with the service's code and message."""
    code = None
    message = ""
    try:
        body = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code") or None
        message = str(body["error"].get("message") or "")
    if not message:
        message = _default_message(response.status_code)
    return error_for_status(
        response.status_code,
        message,
        code=code,
        request_id=_request_id(response),
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        method=request.method.upper(),
        url=_display_url(response.request.url if response.request else request.path),
    )


def _default_message(status: int) -> str:
    if status == 401:
        return "Not signed in or the token was refused; connect again to sign in."
    if status == 403:
        return "The signed-in user lacks the privilege for this operation."
    if status == 429:
        return "Throttled by service protection limits; retry later."
    if status >= 500:
        return f"The service failed with HTTP {status}; retry later."
    return f"Request failed with HTTP {status}."


def _display_url(url: Any) -> str:
    """The URL for messages: path only, shortened; never a query full of user data."""
    text = str(url)
    path = text.split("?", 1)[0]
    return path if len(path) <= 200 else path[:197] + "..."


def _is_tls_failure(exc: Exception) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass
class _Outcome:
    response: httpx.Response | None = None
    retry_in: float | None = None
    refresh_token: bool = False


@dataclass
class _Attempts:
    """Where one request stands in its retries (both sessions run the same loop on it)."""

    count: int = 0  # retries so far
    refreshed: bool = False  # the one token refresh a 401 allows has been used
    force_refresh: bool = False  # the next token must be fetched anew


@dataclass
class _Transmission:
    """What one attempt got back: the response, or the transport error that stopped it."""

    response: httpx.Response | None = None
    exc: Exception | None = None


def _delivered(response: httpx.Response, attempt: int) -> httpx.Response:
    """The successful response, marked with its attempts and unhooked from its stream."""
    # Bulk writes need to know whether an earlier attempt may have been applied.
    response.extensions["d365nb.attempts"] = attempt + 1
    # httpx links a read response and its stream in a reference cycle, so each page's bytes
    # would live until the cyclic GC runs - tens of MiB while a large list() is parsing. The
    # body is already read: a plain byte stream breaks the cycle and lets it go at once.
    response.stream = httpx.ByteStream(response.content)
    return response


class _SessionBase:
    """What both sessions share: the request building and the retry decisions. ``client`` is
    the session's ``httpx.Client`` / ``httpx.AsyncClient``; ``sleep`` waits between attempts
    (default: ``time.sleep`` / ``asyncio.sleep``)."""

    _default_sleep: Callable[[float], Any]

    def __init__(
        self,
        api_url: str,
        tokens: TokenSource,
        client: Any,
        governor: Governor,
        retry: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], Any] | None = None,
    ) -> None:
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.tokens = tokens
        self.client = client
        self.governor = governor
        self.retry = retry or RetryPolicy()
        self._sent = 0
        self._sent_lock = threading.Lock()  # a notebook thread and flow threads share a session
        self._sleep = sleep or type(self)._default_sleep

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far, retries included (for benchmarks and reports)."""
        return self._sent

    def _count_request(self) -> None:
        with self._sent_lock:
            self._sent += 1

    def _build(self, request: ApiRequest, token: str) -> dict[str, Any]:
        headers = dict(DEFAULT_HEADERS)
        if request.method.upper() == "GET":
            headers["If-None-Match"] = "null"  # defeats caching of expanded collections
        headers.update(request.headers)
        headers["Authorization"] = f"Bearer {token}"
        content = request.content
        if request.json is not None:
            try:
                content = orjson.dumps(request.json, option=orjson.OPT_SERIALIZE_NUMPY)
            except (TypeError, orjson.JSONEncodeError) as exc:
                raise ValidationError(f"the values cannot be sent as JSON: {exc}") from None
            headers.setdefault("Content-Type", "application/json")
        url = self.url_for(request)
        return {
            "method": request.method.upper(),
            "url": url,
            "params": request.params,
            "headers": headers,
            "content": content,
        }

    def url_for(self, request: ApiRequest) -> str:
        """The absolute URL of ``request``; refuses a URL outside the connected organisation.

        Absolute paths come from the service (``@odata.nextLink``, delta links). The bearer
        token goes with every request, so a link to another scheme, host or port is never
        followed: a tampered or misconfigured answer must not collect the token.
        """
        if "://" not in request.path:
            return self.api_url + request.path
        wanted, given = urlsplit(self.api_url), urlsplit(request.path)
        try:
            same = (given.scheme.lower(), given.hostname, given.port or _PORTS.get(given.scheme),
                    given.username)  # fmt: skip
            ours = (wanted.scheme.lower(), wanted.hostname,
                    wanted.port or _PORTS.get(wanted.scheme), wanted.username)  # fmt: skip
        except ValueError:  # a malformed port
            same, ours = (), ()
        if not same or same != ours:
            raise D365Error(
                f"refused to follow a link to {given.scheme}://{given.netloc}: the token is sent "
                f"only to {wanted.scheme}://{wanted.netloc} (nothing was sent)",
                method=request.method.upper(),
            )
        return request.path

    def _decide(
        self,
        request: ApiRequest,
        attempt: int,
        refreshed: bool,
        response: httpx.Response | None,
        exc: Exception | None,
    ) -> _Outcome:
        """After one attempt: done, retry after a delay, refresh the token, or raise."""
        can_retry = attempt < self.retry.retries
        if exc is not None:
            # A connect error means nothing reached the server: always safe to retry.
            sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            if _is_tls_failure(exc):
                raise TransportError(
                    "the server's TLS certificate was not trusted; pass verify=<CA bundle path> "
                    "(the sandbox's is handle.ca)",
                    method=request.method.upper(),
                    url=_display_url(request.path),
                ) from None
            # An unreachable host is not worth ten tries; a dropped connection is.
            limit = self.retry.retries if sent else min(3, self.retry.retries)
            if attempt < limit and (request.is_idempotent or not sent):
                return _Outcome(retry_in=self.retry.delay(attempt + 1, None))
            if isinstance(exc, httpx.TimeoutException) and sent:
                what = "no answer within the timeout (connect(..., timeout=seconds))"
            else:
                what = "the connection dropped" if sent else "could not connect"
            raise TransportError(
                f"{what} ({type(exc).__name__}); "
                + ("the request may have been applied." if sent else "check the URL and network."),
                method=request.method.upper(),
                url=_display_url(request.path),
            ) from None
        assert response is not None
        status = response.status_code
        if status < 400:
            self.governor.on_success()
            return _Outcome(response=response)
        if status == 401 and not refreshed:
            return _Outcome(refresh_token=True)
        if status in TRANSIENT_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if status == 429:
                self.governor.on_throttled(retry_after if retry_after is not None else 1.0)
            if can_retry and (status == 429 or request.is_idempotent):
                return _Outcome(retry_in=self.retry.delay(attempt + 1, retry_after))
        err = error_from_response(response, request)
        err.attempts = attempt + 1
        if isinstance(err, Unauthorized):
            err.message = f"{err.message} Sign in again (connect(...)) or check the token."
        raise err

    def _next_step(
        self,
        request: ApiRequest,
        state: _Attempts,
        response: httpx.Response | None,
        exc: Exception | None,
    ) -> httpx.Response | float:
        """After one attempt: the response to return, or seconds to wait before the next
        attempt (0: resend at once with a fresh token); raises the typed error when done."""
        outcome = self._decide(request, state.count, state.refreshed, response, exc)
        state.force_refresh = False
        if outcome.response is not None:
            return _delivered(outcome.response, state.count)
        if outcome.refresh_token:
            state.refreshed = state.force_refresh = True
            return 0.0
        state.count += 1
        return outcome.retry_in or 0.0

    @contextlib.contextmanager
    def _attempt(self, args: dict) -> Iterator[_Transmission]:
        """One attempt in the governor slot the caller acquired (blocking or awaited): counted,
        timed and logged; the slot is released however it ends, and a transport error is kept
        in the transmission for the retry decision instead of raised."""
        sent = _Transmission()
        started = time.perf_counter()
        try:
            self._count_request()
            yield sent
        except httpx.TransportError as error:
            sent.exc = error
        finally:
            self.governor.release()
        self._log(args, sent.response, started)

    def _log(self, args: dict, response: httpx.Response | None, started: float) -> None:
        if log.isEnabledFor(logging.DEBUG):
            status = response.status_code if response is not None else "no response"
            log.debug(
                "%s %s -> %s in %.0f ms",
                args["method"],
                _display_url(args["url"]),
                status,
                (time.perf_counter() - started) * 1000,
            )


class SyncSession(_SessionBase):
    """Sends :class:`ApiRequest` through one ``httpx.Client`` (blocking)."""

    _default_sleep = staticmethod(time.sleep)

    def send(self, request: ApiRequest) -> httpx.Response:
        """Send with retries; the successful response, else a typed :class:`D365Error`."""
        state = _Attempts()
        while True:
            token = self.tokens.token(force_refresh=state.force_refresh)
            step = self._next_step(request, state, *self._transmit(self._build(request, token)))
            if isinstance(step, httpx.Response):
                return step
            if step:
                self._sleep(step)

    def _transmit(self, args: dict) -> tuple[httpx.Response | None, Exception | None]:
        """One attempt inside a governor slot: (response, None) or (None, transport error)."""
        self.governor.acquire()
        with self._attempt(args) as sent:
            sent.response = self.client.request(**args)
        return sent.response, sent.exc

    def close(self) -> None:
        self.client.close()


class AsyncSession(_SessionBase):
    """Sends :class:`ApiRequest` through one ``httpx.AsyncClient``."""

    _default_sleep = staticmethod(asyncio.sleep)

    async def _token(self, force: bool) -> str:
        if not force:
            token = self.tokens.cached()
            if token:
                return token
        # Signing in may block on the network (msal is synchronous): keep the loop free.
        return await asyncio.to_thread(self.tokens.token, force_refresh=force)

    async def send(self, request: ApiRequest) -> httpx.Response:
        """Send with retries; the successful response, else a typed :class:`D365Error`."""
        state = _Attempts()
        while True:
            token = await self._token(state.force_refresh)
            response, exc = await self._transmit(self._build(request, token))
            step = self._next_step(request, state, response, exc)
            if isinstance(step, httpx.Response):
                return step
            if step:
                await self._sleep(step)

    async def _transmit(self, args: dict) -> tuple[httpx.Response | None, Exception | None]:
        """One attempt inside a governor slot: (response, None) or (None, transport error)."""
        await self.governor.acquire_async()
        with self._attempt(args) as sent:
            sent.response = await self.client.request(**args)
        return sent.response, sent.exc

    async def aclose(self) -> None:
        await self.client.aclose()
