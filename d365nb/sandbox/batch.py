"""`POST $batch`: several requests in one multipart/mixed body (dataverse-wire.md §10).

A batch is a list of parts; a part is one HTTP request, or a change set (a nested multipart
whose requests succeed or fail together, may name each other with `Content-ID` and refer back
with `$n`). Each request is dispatched into the same Starlette app in-process, past the
middlewares: the batch was authenticated, counted by the limits and exposed to faults once, as
Dataverse counts a batch as one request.

Framing rules kept from the service: CRLF line breaks (else 400 `0x80048d19` "Stream was not
readable"), at most 1000 requests, no nested batches, no GET in a change set, responses framed
by `--batchresponse_<guid>` with change sets nested in `--changesetresponse_<guid>`; without
`Prefer: odata.continue-on-error` the first failure stops the batch and the outer status is 400,
with it the outer status is 200 and every part answers for itself.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import errors
from .org import IN_CHANGESET
from .responses import API_VERSION_KEY, route_older_version

log = logging.getLogger("d365nb.sandbox")

API_ROOT = "/api/data/v9.2/"
BATCH_URL_LIMIT = 65_536  # a request inside $batch may have twice the URL of a plain GET
MAX_REQUESTS = 1000
STREAM_CODE = "0x80048d19"
CRLF = b"\r\n"

# Response headers worth echoing inside a part (the transport ones are the batch's own).
_DROPPED_HEADERS = {"content-length", "date", "server", "connection", "transfer-encoding"}


class BatchError(Exception):
    """A batch the service refuses as a whole (400 unless told otherwise)."""

    def __init__(self, message: str, code: str = STREAM_CODE, status: int = 400) -> None:
        message = errors.one_line(message)
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


@dataclass
class PartRequest:
    """One request inside a batch."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    content_id: str | None = None


@dataclass
class ChangeSet:
    """Requests applied all-or-nothing."""

    requests: list[PartRequest] = field(default_factory=list)


@dataclass
class PartResponse:
    """What one dispatched request answered."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    content_id: str | None = None

    @property
    def failed(self) -> bool:
        return self.status >= 400

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


# -- parsing ---------------------------------------------------------------------------------


def boundary_of(content_type: str | None) -> str:
    """The `boundary` parameter of a multipart/mixed content type."""
    if not content_type or not content_type.lower().startswith("multipart/mixed"):
        raise BatchError(
            "The content type of a $batch request must be multipart/mixed with a boundary; got "
            f"{content_type or 'none'!r}."
        )
    match = re.search(r'boundary\s*=\s*"?([^";,]+)"?', content_type, re.IGNORECASE)
    if not match:
        raise BatchError("The multipart/mixed content type of the $batch request has no boundary.")
    return match.group(1).strip()


def _unreadable() -> BatchError:
    # The service's answer to LF-only framing (dataverse-wire.md §10, [TS]).
    return BatchError("Stream was not readable.")


def split_parts(body: bytes, boundary: str) -> list[bytes]:
    """The encapsulated parts of a multipart body, delimiter CRLFs removed (RFC 2046 §5.1.1)."""
    dash = b"--" + boundary.encode()
    if dash not in body:
        raise BatchError(f"The $batch body has no part delimited by '--{boundary}'.")
    # Every delimiter line must end in CRLF (or be the close delimiter) and, unless it starts
    # the body, follow a CRLF; LF-only framing is what the service cannot read.
    for match in re.finditer(re.escape(dash), body):
        start, end = match.start(), match.end()
        if start > 0 and body[max(0, start - 2) : start] != CRLF:
            if body[start - 1 : start] == b"\n":
                raise _unreadable()
            continue  # the boundary text inside content, not a delimiter
        tail = body[end : end + 2]
        if tail != b"--" and not re.match(rb"[ \t]*\r\n", body[end:]):
            raise _unreadable()
    chunks = (CRLF + body).split(CRLF + dash)
    parts: list[bytes] = []
    closed = False
    for chunk in chunks[1:]:  # chunks[0] is the preamble
        if chunk.startswith(b"--"):
            closed = True
            break
        _, sep, content = chunk.partition(CRLF)
        if not sep:
            raise _unreadable()
        parts.append(content)
    if not closed:
        raise BatchError(f"The $batch body does not end with the close delimiter '--{boundary}--'.")
    return parts


def _split_headers(block: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """Header lines up to the first empty line, and what follows."""
    head, sep, rest = block.partition(CRLF + CRLF)
    if not sep:
        if block.endswith(CRLF) or not block:  # headers with no body at all
            head, rest = block.rstrip(b"\r\n"), b""
        elif b"\n\n" in block:
            raise _unreadable()
        else:
            head, rest = block, b""
    headers = []
    for line in head.split(CRLF):
        if not line.strip():
            continue
        name, colon, value = line.decode("utf-8", "replace").partition(":")
        if not colon:
            raise BatchError(f"Malformed header line in a $batch part: {name[:80]!r}.")
        headers.append((name.strip(), value.strip()))
    return headers, rest


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    return next((v for k, v in headers if k.lower() == name), None)


def _parse_request(part: bytes, in_changeset: bool) -> PartRequest:
    mime_headers, message = _split_headers(part)
    content_type = (_header(mime_headers, "Content-Type") or "").lower()
    if not content_type.startswith("application/http"):
        raise BatchError(
            "Each $batch part must have Content-Type application/http (or multipart/mixed for a "
            f"change set); got {content_type or 'none'!r}."
        )
    line, sep, rest = message.partition(CRLF)
    if not sep and b"\n" in message:
        raise _unreadable()
    words = line.decode("utf-8", "replace").split(" ")
    if len(words) < 3 or not words[-1].upper().startswith("HTTP/"):
        raise BatchError(
            f"A $batch part must start with a request line like 'GET /api/data/v9.2/accounts "
            f"HTTP/1.1'; got {line[:100].decode('utf-8', 'replace')!r}."
        )
    # Clients (Microsoft's Python SDK among them) put query text with raw spaces in the
    # request line; the method is the first word and the version the last.
    method, url = words[0].upper(), " ".join(words[1:-1]).strip()
    headers, body = _split_headers(rest)
    if body.endswith(CRLF):  # the line break before the next delimiter belongs to the framing
        body = body[:-2]
    content_id = _header(mime_headers, "Content-ID") or _header(headers, "Content-ID")
    if in_changeset and method == "GET":
        raise BatchError("A change set cannot contain a GET request; put GETs outside it.")
    if "$batch" in url:
        raise BatchError("A $batch request cannot contain another $batch request.")
    return PartRequest(method, url, headers, body, content_id)


def parse_batch(body: bytes, content_type: str | None) -> list[PartRequest | ChangeSet]:
    """Parse a $batch body into requests and change sets, or raise `BatchError`."""
    items: list[PartRequest | ChangeSet] = []
    count = 0
    for part in split_parts(body, boundary_of(content_type)):
        mime_headers, rest = _split_headers(part)
        part_type = _header(mime_headers, "Content-Type") or ""
        if part_type.lower().startswith("multipart/mixed"):
            changeset = ChangeSet()
            ids: set[str] = set()
            for inner in split_parts(rest, boundary_of(part_type)):
                request = _parse_request(inner, in_changeset=True)
                if request.content_id is not None:
                    if request.content_id in ids:
                        raise BatchError(
                            f"Content-ID '{request.content_id}' is used twice in one change set."
                        )
                    ids.add(request.content_id)
                changeset.requests.append(request)
            count += len(changeset.requests)
            items.append(changeset)
        else:
            items.append(_parse_request(part, in_changeset=False))
            count += 1
        if count > MAX_REQUESTS:
            # ODataLib's quota message, as Dataverse returns it (observed in
            # MicrosoftDocs/powerapps-docs#1890 and AleksandrRogov/DynamicsWebApi#71).
            raise BatchError(
                "The current batch message contains too many parts. Only batch messages with a "
                f"maximum number of '{MAX_REQUESTS}' query operations, including changeset "
                "operations, are allowed."
            )
    return items


# -- rendering -------------------------------------------------------------------------------


_HEADER_CASE = {
    "odata-version": "OData-Version",
    "odata-entityid": "OData-EntityId",
    "etag": "ETag",
    "req_id": "REQ_ID",
    "www-authenticate": "WWW-Authenticate",
}


def _header_name(name: str) -> str:
    """ASGI header names are lowercase; write them as Dataverse does (`OData-EntityId`)."""
    lower = name.lower()
    return _HEADER_CASE.get(lower) or "-".join(w[:1].upper() + w[1:] for w in lower.split("-"))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _http_message(response: PartResponse) -> bytes:
    phrase = _phrase(response.status)
    lines = [f"HTTP/1.1 {response.status} {phrase}"]
    lines += [
        f"{_header_name(k)}: {v}" for k, v in response.headers if k.lower() not in _DROPPED_HEADERS
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + response.body


def _application_http(response: PartResponse, with_id: bool) -> bytes:
    head = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if with_id and response.content_id is not None:
        head.append(f"Content-ID: {response.content_id}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + _http_message(response)


def render_batch(items: list[PartResponse | list[PartResponse]], boundary: str) -> bytes:
    """Frame part responses (a list = a committed change set) as the $batch response body."""
    out = bytearray()
    for item in items:
        out += f"--{boundary}\r\n".encode()
        if isinstance(item, list):
            inner = f"changesetresponse_{uuid.uuid4()}"
            out += f"Content-Type: multipart/mixed; boundary={inner}\r\n\r\n".encode()
            for response in item:
                out += f"--{inner}\r\n".encode()
                out += _application_http(response, with_id=True) + CRLF
            out += f"--{inner}--\r\n".encode()
        else:
            out += _application_http(item, with_id=False) + CRLF
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


# -- dispatching -----------------------------------------------------------------------------

_REFERENCE = re.compile(r"^\$([A-Za-z0-9_.-]+)")


def _target_path(url: str, api_root: str) -> str:
    """Path-and-query for a part's URL: absolute, absolute-path, or relative to the API root."""
    if url.startswith(("http://", "https://")):
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    if url.startswith("/"):
        return url
    return api_root + url


def _resolve_reference(text: str, refs: dict[str, str]) -> str:
    match = _REFERENCE.match(text)
    if not match:
        return text
    name = match.group(1)
    if name not in refs:
        raise BatchError(f"Content-ID Reference: '${name}' does not exist in the batch context.")
    return refs[name] + text[match.end() :]


def _bind_references(value: Any, refs: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _resolve_reference(value, refs)
    if isinstance(value, list):
        return [_bind_references(v, refs) for v in value]
    return value


def _substitute_body(body: bytes, refs: dict[str, str]) -> bytes:
    """Replace `$n` in `@odata.bind` values with the entity path the n-th request created."""
    if b"$" not in body or not body.strip():
        return body
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body  # the target route reports the malformed JSON itself
    if not isinstance(data, dict):
        return body
    changed = False
    for key, value in data.items():
        if key.endswith("@odata.bind") or key == "@odata.id":
            new = _bind_references(value, refs)
            if new != value:
                data[key] = new
                changed = True
    return orjson.dumps(data) if changed else body


def _entity_path(response: PartResponse) -> str | None:
    """The created/updated record's path, from OData-EntityId or Location."""
    url = response.header("OData-EntityId") or response.header("Location")
    if not url:
        return None
    parts = urlsplit(url)
    return parts.path if parts.scheme else url


class Dispatcher:
    """Runs part requests through the app's router (with its exception handlers), in-process."""

    def __init__(self, request: Request) -> None:
        self.outer = request
        self.inner = _inner_app(request.app)
        path = request.url.path
        self.api_root = path[: path.rindex("$batch")] if "$batch" in path else API_ROOT
        # relative part URLs of a v9.0/v9.1 batch answer in that version too
        self.api_root = request.scope.get(API_VERSION_KEY) or self.api_root
        self.authorization = request.headers.get("authorization")

    async def __call__(
        self, part: PartRequest, refs: dict[str, str], in_changeset: bool
    ) -> PartResponse:
        url = _resolve_reference(part.url, refs) if part.url.startswith("$") else part.url
        # Percent-encode what cannot travel raw (spaces, non-ASCII); keep existing escapes.
        target = quote(_target_path(url, self.api_root), safe="/:?#[]@!$&'()*+,;=%-._~")
        if len(target) > BATCH_URL_LIMIT:
            too_long = errors.UrlTooLong(len(target), BATCH_URL_LIMIT)
            body = orjson.dumps(too_long.body())
            json_type = "application/json; odata.metadata=minimal"
            return PartResponse(414, [("Content-Type", json_type)], body, part.content_id)
        path, _, query = target.partition("?")
        # in a change set `$n` must name an earlier request, even before any was declared
        body = _substitute_body(part.body, refs) if refs or in_changeset else part.body
        headers = [(k.lower().encode(), v.encode()) for k, v in part.headers]
        names = {k for k, _ in headers}
        if self.authorization and b"authorization" not in names:
            headers.append((b"authorization", self.authorization.encode()))
        if body and b"content-length" not in names:
            headers.append((b"content-length", str(len(body)).encode()))
        host = self.outer.headers.get("host")
        if host and b"host" not in names:
            headers.append((b"host", host.encode()))
        scope = dict(self.outer.scope)
        scope.update(
            {
                "method": part.method,
                "path": unquote(path),
                "raw_path": path.encode(),
                "query_string": query.encode(),
                "headers": headers,
                IN_CHANGESET: in_changeset,
                "d365nb.batch": True,
            }
        )
        scope.pop(API_VERSION_KEY, None)
        scope = route_older_version(scope)  # a part may name /api/data/v9.0/... itself
        scope.pop("route", None)
        scope.pop("endpoint", None)
        scope.pop("path_params", None)
        scope["state"] = dict(self.outer.scope.get("state") or {})
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 500
        response_headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, response_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = [
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"]
                ]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.inner(scope, receive, send)
        except Exception:  # noqa: BLE001 - one part's crash must not take down the batch
            log.exception("unexpected error in a $batch part: %s %s", part.method, path)
            status, chunks = 500, [_error_body("0x80040216", "An unexpected error occurred.")]
            response_headers = [("Content-Type", "application/json; odata.metadata=minimal")]
        response = PartResponse(status, response_headers, b"".join(chunks), part.content_id)
        if response.header("OData-EntityId") and not response.header("Location"):
            # Batch parts carry Location as well as OData-EntityId ([BA]).
            response.headers.append(("Location", response.header("OData-EntityId") or ""))
        return response


def _inner_app(app: Any) -> Any:
    """The app's router wrapped in its exception handlers, without the user middlewares."""
    cached = getattr(app.state, "_batch_inner_app", None)
    if cached is not None:
        return cached
    from starlette.middleware.exceptions import ExceptionMiddleware

    handlers = {
        key: handler
        for key, handler in getattr(app, "exception_handlers", {}).items()
        if key not in (500, Exception)
    }
    inner = ExceptionMiddleware(app.router, handlers=handlers)
    app.state._batch_inner_app = inner
    return inner


def _error_body(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message}})


def _error_response(error: BatchError) -> Response:
    return Response(
        _error_body(error.code, error.message),
        status_code=error.status,
        media_type="application/json; odata.metadata=minimal",
        headers={"OData-Version": "4.0"},
    )


def _failed_part(error: BatchError, content_id: str | None = None) -> PartResponse:
    return PartResponse(
        error.status,
        [("Content-Type", "application/json; odata.metadata=minimal"), ("OData-Version", "4.0")],
        _error_body(error.code, error.message),
        content_id,
    )


async def _run_changeset(
    changeset: ChangeSet, dispatch: Dispatcher, org: Any
) -> PartResponse | list[PartResponse]:
    """Apply a change set in one transaction; the failing part's response if it rolled back."""
    refs: dict[str, str] = {}
    responses: list[PartResponse] = []
    # The whole change set holds the write lock so no other write interleaves with its parts.
    async with org.write_lock:
        return await _apply_changeset(changeset, dispatch, org, refs, responses)


async def _apply_changeset(
    changeset: ChangeSet,
    dispatch: Dispatcher,
    org: Any,
    refs: dict[str, str],
    responses: list[PartResponse],
) -> PartResponse | list[PartResponse]:
    # The transaction is opened without tying the store lock to this thread: each part does its
    # store work on a worker thread (as a savepoint), and other clients' reads run between parts
    # rather than waiting for the whole change set. They may see its rows before it commits
    # (like Dataverse's no-lock reads); other writes wait for the write lock.
    await org.off_loop(org.store.begin_open)
    commit = False
    try:
        for part in changeset.requests:
            try:
                response = await dispatch(part, refs, in_changeset=True)
            except BatchError as exc:
                response = _failed_part(exc, part.content_id)
            if response.failed:
                return response
            responses.append(response)
            path = _entity_path(response)
            if part.content_id is not None and path:
                refs[part.content_id] = path
        commit = True
    finally:
        await org.off_loop(org.store.end_open, commit)
    return responses


async def batch_endpoint(request: Request) -> Response:
    """POST $batch."""
    org = request.app.state.org
    try:
        items = parse_batch(await request.body(), request.headers.get("content-type"))
    except BatchError as exc:
        return _error_response(exc)
    prefer = request.headers.get("prefer", "").lower()
    continue_on_error = "odata.continue-on-error" in prefer
    dispatch = Dispatcher(request)
    results: list[PartResponse | list[PartResponse]] = []
    status = 200
    for item in items:
        if isinstance(item, ChangeSet):
            result = await _run_changeset(item, dispatch, org)
            failed = isinstance(result, PartResponse) and result.failed
        else:
            try:
                result = await dispatch(item, {}, in_changeset=False)
            except BatchError as exc:
                result = _failed_part(exc, item.content_id)
            failed = result.failed
        results.append(result)
        if failed and not continue_on_error:
            status = 400
            break
    boundary = f"batchresponse_{uuid.uuid4()}"
    headers = {"OData-Version": "4.0"}
    if continue_on_error:
        headers["Preference-Applied"] = "odata.continue-on-error"
    return Response(
        render_batch(results, boundary),
        status_code=status,
        media_type=f"multipart/mixed; boundary={boundary}",
        headers=headers,
    )


def routes() -> list[Route]:
    """The `$batch` route, for `app.build_app`."""
    return [Route(API_ROOT + "$batch", batch_endpoint, methods=["POST"])]
