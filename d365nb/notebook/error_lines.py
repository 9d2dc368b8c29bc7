"""Errors as one line a person can act on, with secrets redacted.

``render_error`` is what the magic shows for a user error (``short_errors``): the message, the
HTTP status and Dataverse code, notes added on the way up (``notebook.hints``) and a hint; with
``debug`` a second line names the request that failed, never its headers.
"""

from __future__ import annotations

import re

__all__ = ["render_error", "redact"]

_BEARER_RE = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/=]+")
# OAuth secrets in a query string or form body (``?code=...&client_secret=...``). The name must
# stand alone: ``prioritycode=2``, ``statuscode=1`` or ``$skiptoken=`` are ordinary values.
_SECRET_QS_RE = re.compile(
    r"(?i)(?<![A-Za-z0-9_$.\-])((?:access_token|refresh_token|id_token|client_secret|"
    r"client_assertion|assertion|password|token|code)=)[^&\s]+"
)
# A JSON Web Token (what Entra ID issues) anywhere in the text, e.g. echoed by a service.
_JWT_RE = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with bearer tokens, secret query values and the given secrets replaced."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _BEARER_RE.sub(r"\1***", text)
    text = _JWT_RE.sub("***", text)
    return _SECRET_QS_RE.sub(r"\1***", text)


_HINTS = {
    "Unauthorized": "sign in again: %d365 connect <url>",
    "Forbidden": "the signed-in user lacks a privilege for this",
    "Throttled": "service protection limit: wait and retry, or read fewer pages",
    "UnknownTable": "%d365 tables lists the tables",
    "UnknownColumn": "%d365 describe <table> lists the columns",
    "ChangeTokenExpired": "run %d365 changes <table> without --since to resync",
    "TransportError": "is the organisation (or sandbox) reachable?",
}


def render_error(exc: BaseException, *, debug: bool = False, secrets: tuple[str, ...] = ()) -> str:
    """One line: what was wrong, the Dataverse code, a hint. With ``debug``, a second line shows
    the request that failed (no headers, so no token; secrets redacted anyway)."""
    name = type(exc).__name__
    message = getattr(exc, "message", None) or str(exc) or name
    parts = [" ".join(str(message).split())]
    code = getattr(exc, "code", None)
    status = getattr(exc, "status", None)
    detail = ", ".join(
        x for x in (f"HTTP {status}" if status else "", f"code {code}" if code else "") if x
    )
    if detail:
        parts.append(f"({detail})")
    # Notes added on the way up (notebook.hints: "did you mean ...") come before the generic hint.
    parts += [f"- {' '.join(str(note).split())}" for note in getattr(exc, "__notes__", ())]
    hint = _HINTS.get(name)
    if hint and hint not in parts[0]:
        parts.append(f"- {hint}")
    line = redact(" ".join(parts), secrets)
    if debug:
        method, url = getattr(exc, "method", None), getattr(exc, "url", None)
        request_id = getattr(exc, "request_id", None)
        request = f"{method} {url}" if method and url else "no request was sent"
        if request_id:
            request += f" (request id {request_id})"
        line += "\n" + redact(f"request: {request}; Authorization: Bearer ***", secrets)
    return line
