"""The transport seam: ``connect(..., transport=)`` takes any httpx transport.

Without one, each facade builds httpx's network transport from ``verify``/``timeout``/the
governor's pool size. With one, it carries every request instead - typically
``httpx.ASGITransport(app=...)`` over the sandbox app, so tests need no socket:

    org = build_org(data="empty")
    d365 = connect("http://sandbox.test", token=org.token,
                   transport=httpx.ASGITransport(app=build_app(org)))

``Dataverse`` sends blocking requests and ``AsyncDataverse`` (``d365.aio()``) awaits them, so a
transport must serve the kind its facade needs. An async-only transport (ASGI) given to the
blocking facade runs on one private event-loop thread (:class:`OnLoop`); ``aio()`` then awaits
that same loop, so an app's asyncio locks only ever meet one loop. A blocking-only transport
given to the async facade runs in a worker thread (:class:`InThread`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

import httpx

from d365nb.client.errors import ValidationError

__all__ = ["OnLoop", "InThread", "for_sync", "for_async"]

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    """The process's one loop for in-process apps, on a daemon thread started on first use."""
    global _loop
    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="d365nb-transport", daemon=True).start()
            _loop = loop
    return _loop


def _copy(request: httpx.Request) -> httpx.Request:
    """The same request with its (already read) body as bytes, usable sync or async."""
    return httpx.Request(
        request.method,
        request.url,
        headers=request.headers,
        content=request.content,
        extensions=request.extensions,
    )


def _answer(response: httpx.Response, content: bytes) -> httpx.Response:
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        content=content,
        extensions=dict(response.extensions),
    )


class OnLoop(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An async transport served on the private loop, for blocking and async callers alike."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self._loop = _background_loop()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(_copy(request))
        try:
            content = await response.aread()
        finally:
            await response.aclose()
        return _answer(response, content)

    def _submit(self, work: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self._loop)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return self._submit(self._send(request)).result()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        # Cancelling the awaiting task (a step timeout) cancels the request on the loop too.
        return await asyncio.wrap_future(self._submit(self._send(request)))

    def close(self) -> None:
        self._submit(self.inner.aclose()).result()

    async def aclose(self) -> None:
        await asyncio.wrap_future(self._submit(self.inner.aclose()))


class InThread(httpx.AsyncBaseTransport):
    """A blocking transport awaited from asyncio: each request runs in a worker thread."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def _send(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        try:
            content = response.read()
        finally:
            response.close()
        return _answer(response, content)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return await asyncio.to_thread(self._send, _copy(request))

    async def aclose(self) -> None:
        await asyncio.to_thread(self.inner.close)


class _Borrowed(httpx.AsyncBaseTransport):
    """The transport of the connection ``aio()`` was called on: used, never closed here."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)


def _check(transport: Any) -> None:
    if not isinstance(transport, httpx.BaseTransport | httpx.AsyncBaseTransport):
        raise ValidationError(
            "transport: expected an httpx transport (httpx.BaseTransport or "
            f"httpx.AsyncBaseTransport, e.g. httpx.ASGITransport(app=...)), got "
            f"{type(transport).__name__}"
        )


def for_sync(transport: Any) -> httpx.BaseTransport | None:
    """What the blocking facade sends through (None: httpx's network transport)."""
    if transport is None:
        return None
    _check(transport)
    if isinstance(transport, httpx.BaseTransport):
        return transport
    return OnLoop(transport)


def for_async(transport: Any, *, borrowed: bool = False) -> httpx.AsyncBaseTransport | None:
    """What the async facade awaits (None: httpx's network transport); ``borrowed``: the
    transport belongs to another connection, which closes it."""
    if transport is None:
        return None
    _check(transport)
    if isinstance(transport, httpx.AsyncBaseTransport):
        return _Borrowed(transport) if borrowed else transport
    adapted = InThread(transport)
    return _Borrowed(adapted) if borrowed else adapted
