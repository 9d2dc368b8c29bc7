"""Size and time guards in front of the API: what a client may send before the sandbox refuses
it with a status and Dataverse's error body instead of a reset connection or an exhausted
server.

* (The URL length limit, 414, is `app.UrlLengthMiddleware`'s; a request head too large for
  h11 to buffer gets the same 414 here when its request line is the long part.)
* A header line over 16 KiB, or all headers over 64 KiB -> 431.
* A body over MAX_BODY -> 413 ("Expect this status code when the request length is too
  large", https://learn.microsoft.com/power-apps/developer/data-platform/webapi/
  compose-http-requests-handle-errors#identify-status-codes).
* A body that does not arrive within BODY_TIMEOUT seconds -> 408; request headers that do not
  arrive within HEADER_TIMEOUT seconds of the connection opening (or of the previous answer)
  -> the connection is closed (a slow client cannot hold connections open forever).

`GuardsMiddleware` is the ASGI part; `SandboxH11Protocol` is uvicorn's h11 protocol with the
timeout and with 414/431 answers (Dataverse-style JSON) when the request head outgrows h11's
buffer (MAX_HEAD bytes), which uvicorn would otherwise answer with a plain-text 400.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from . import errors

MAX_URL = 32_768  # the URL limit (see app.UrlLengthMiddleware)
MAX_HEADER_LINE = 16 * 1024
MAX_HEADERS = 64 * 1024
MAX_HEAD = 128 * 1024  # request line + headers uvicorn/h11 buffers before giving up
MAX_BODY = 64 * 1024 * 1024
HEADER_TIMEOUT = 15.0
BODY_TIMEOUT = 60.0

_JSON = b"application/json; odata.metadata=minimal"


def error_body(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message}})


def url_too_long(length: int) -> tuple[int, bytes]:
    error = errors.UrlTooLong(length, MAX_URL)
    return error.status, orjson.dumps(error.body())


def headers_too_large(detail: str) -> tuple[int, bytes]:
    return 431, error_body("0x80048d19", f"The request headers are too large: {detail}.")


def body_too_large(limit: int = MAX_BODY) -> tuple[int, bytes]:
    return 413, error_body(
        "0x80048d19", f"The request body is larger than {limit:,} bytes; send less per request."
    )


async def _answer(send: Any, status: int, body: bytes, close: bool = False) -> None:
    headers = [
        (b"content-type", _JSON),
        (b"content-length", str(len(body)).encode()),
        (b"odata-version", b"4.0"),
    ]
    if close:
        # The body was not read to its end, so what is left of it on the connection must not
        # be taken for the next request; RFC 9110 §15.5.9 asks a 408 to close the connection.
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardsMiddleware:
    """Refuse over-large headers, over-large or stalled bodies; buffer the body (so the app
    never reads past the cap) and replay it to the app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        total = 0
        for name, value in scope["headers"]:
            size = len(name) + len(value)
            total += size
            if size > MAX_HEADER_LINE:
                shown = name.decode("latin-1")[:40]
                detail = f"'{shown}' is {size:,} bytes (limit {MAX_HEADER_LINE:,})"
                await _answer(send, *headers_too_large(detail))
                return
        if total > MAX_HEADERS:
            detail = f"{total:,} bytes in all (limit {MAX_HEADERS:,})"
            await _answer(send, *headers_too_large(detail))
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.strip().isdigit() and int(declared) > MAX_BODY:
            await _answer(send, *body_too_large(), close=True)
            return
        try:
            body = await asyncio.wait_for(_read_body(receive), BODY_TIMEOUT)
        except _TooLarge:
            await _answer(send, *body_too_large(), close=True)
            return
        except TimeoutError:
            message = f"The request body did not arrive within {BODY_TIMEOUT:g} seconds."
            await _answer(send, 408, error_body("0x80048d19", message), close=True)
            return
        if body is None:  # the client went away
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()  # http.disconnect when the client goes away
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class _TooLarge(Exception):
    pass


async def _read_body(receive: Any) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


class SandboxH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head timeout and Dataverse-style 414/431 answers
    when the request head is larger than h11 buffers (`h11_max_incomplete_event_size`)."""

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
        self._head_timer = self.loop.call_later(HEADER_TIMEOUT, self._head_timeout)

    def _head_timeout(self) -> None:
        # Still waiting for a complete request head: a client that opened a connection (or got
        # its last answer) HEADER_TIMEOUT seconds ago and has not sent one. Close it.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        buffered, _ = self.conn.trailing_data
        if len(buffered) <= MAX_HEAD:
            super().send_400_response(msg)
            return
        line_end = buffered.find(b"\r\n")
        request_line = len(buffered) if line_end < 0 else line_end
        if request_line > MAX_URL:
            status, body = url_too_long(request_line)
        else:
            status, body = headers_too_large(f"more than {MAX_HEAD:,} bytes of request head")
        head = (
            f"HTTP/1.1 {status} {'URI Too Long' if status == 414 else 'Request Header Fields Too Large'}"
            f"\r\ncontent-type: {_JSON.decode()}\r\ncontent-length: {len(body)}\r\n"
            "odata-version: 4.0\r\nconnection: close\r\n\r\n"
        ).encode()
        self.transport.write(head + body)
        self.transport.close()
