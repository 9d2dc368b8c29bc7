"""``$batch`` bodies: independent requests in one multipart/mixed POST, and their responses.

Used by the bulk operations when the table has no CreateMultiple/UpdateMultiple/UpsertMultiple
(and always for deletes). Parts are independent (no change set) and the batch is sent with
``Prefer: odata.continue-on-error`` so each record gets its own result. CRLF line endings are
required by the service.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["BatchPart", "PartResult", "build_batch", "parse_batch"]

CRLF = "\r\n"


@dataclass
class BatchPart:
    method: str
    url: str  # relative to the API root, e.g. "tasks" or "tasks(<id>)"
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None


@dataclass
class PartResult:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return self.status < 400


def build_batch(parts: list[BatchPart], api_path: str) -> tuple[bytes, str]:
    """(body, content type) for a batch of independent parts.

    ``api_path`` is the API root path (``/api/data/v9.2/``) each part's URL is relative to.
    """
    boundary = f"batch_{uuid.uuid4().hex}"
    lines: list[str] = []
    for part in parts:
        lines += [
            f"--{boundary}",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            "",
            f"{part.method} {api_path}{part.url} HTTP/1.1",
        ]
        headers = dict(part.headers or {})
        payload = ""
        if part.body is not None:
            headers.setdefault("Content-Type", "application/json; type=entry")
            payload = orjson.dumps(part.body).decode()
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines += ["", payload]
    lines.append(f"--{boundary}--")
    lines.append("")
    return CRLF.join(lines).encode(), f'multipart/mixed; boundary="{boundary}"'


def _boundary(content_type: str) -> str:
    for piece in content_type.split(";"):
        key, _, value = piece.strip().partition("=")
        if key.lower() == "boundary":
            return value.strip().strip('"')
    raise ValueError(f"no boundary in {content_type!r}")


def _split(text: str, boundary: str) -> list[str]:
    delimiter = f"--{boundary}"
    chunks = text.split(delimiter)
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith("--"):
            break
        parts.append(chunk.lstrip("\r\n"))
    return parts


def _headers_and_body(block: str) -> tuple[dict[str, str], str]:
    head, sep, body = block.replace("\r\n", "\n").partition("\n\n")
    headers = {}
    for line in head.split("\n"):
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    return headers, body if sep else ""


def parse_batch(content: bytes, content_type: str) -> list[PartResult]:
    """Results of each part, in order (change-set responses are flattened)."""
    results: list[PartResult] = []
    text = content.decode("utf-8", errors="replace")
    for block in _split(text, _boundary(content_type)):
        headers, rest = _headers_and_body(block)
        if headers.get("content-type", "").startswith("multipart/mixed"):
            results.extend(parse_batch(rest.encode(), headers["content-type"]))
            continue
        status_line, _, http_rest = rest.lstrip("\n").partition("\n")
        try:
            status = int(status_line.split()[1])
        except (IndexError, ValueError):
            status = 0
        part_headers, body_text = _headers_and_body(http_rest)
        body_text = body_text.strip()
        body: Any = None
        if body_text:
            try:
                body = orjson.loads(body_text)
            except orjson.JSONDecodeError:
                body = body_text
        results.append(PartResult(status, part_headers, body))
    return results
