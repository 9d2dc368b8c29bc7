"""One error tree for everything the client can raise.

Every error renders as one line a person can act on. Errors carry what was asked (method, URL
without the query string's secrets - there are none in Dataverse URLs - and never headers), the
service's status/code/message and the request id, so a support ticket can quote them.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "D365Error",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "PreconditionFailed",
    "Throttled",
    "ServerError",
    "TransportError",
    "ValidationError",
    "UnknownTable",
    "UnknownColumn",
    "ChangeTokenExpired",
    "AuthError",
    "error_for_status",
]


class D365Error(Exception):
    """Base class: ``status`` (HTTP status or None for client-side errors), service ``code``,
    ``request_id``, ``is_transient`` (worth retrying later), ``retry_after`` (seconds or None),
    ``method`` and ``url`` of the request that failed."""

    is_transient: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        method: str | None = None,
        url: str | None = None,
        is_transient: bool | None = None,
    ) -> None:
        # Keep the message to one line: multi-line service messages would break notebook output.
        message = " ".join(str(message).split())
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        self.method = method
        self.url = url
        self.attempts = 1  # how many times the request was sent (set by the transport)
        if is_transient is not None:
            self.is_transient = is_transient

    def __str__(self) -> str:
        parts = [self.message]
        detail = []
        if self.status is not None:
            detail.append(f"HTTP {self.status}")
        if self.code:
            detail.append(f"code {self.code}")
        if self.method and self.url:
            detail.append(f"{self.method} {self.url}")
        if self.request_id:
            detail.append(f"request id {self.request_id}")
        if detail:
            parts.append(f"({', '.join(detail)})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status={self.status!r}, code={self.code!r})"
        )

    def __reduce__(self) -> Any:  # picklable across processes/threads with its fields
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


def _rebuild(cls: type, message: str, state: dict) -> D365Error:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class BadRequest(D365Error):
    """400: the service refused the request (bad query, invalid property, validation)."""


class Unauthorized(D365Error):
    """401: the token is missing, expired or not valid for this organisation."""


class Forbidden(D365Error):
    """403: the signed-in principal lacks a privilege."""


class NotFound(D365Error):
    """404: no such record, table or resource."""


class PreconditionFailed(D365Error):
    """412: an If-Match / If-None-Match condition failed."""


class Throttled(D365Error):
    """429: service protection limits; retry after ``retry_after`` seconds."""

    is_transient = True


class ServerError(D365Error):
    """5xx: the service failed; 502/503/504 are transient."""


class TransportError(D365Error):
    """The request never got an HTTP answer (connection refused/reset, timeout)."""

    is_transient = True


class AuthError(D365Error):
    """Signing in failed (Entra ID refused or the user did not complete the flow)."""


class ValidationError(D365Error, ValueError):
    """A value was refused before any request was sent."""


class UnknownTable(ValidationError, LookupError):
    """No table with that logical or entity-set name."""


class UnknownColumn(ValidationError, LookupError):
    """No column with that name on the table."""


class ChangeTokenExpired(BadRequest):
    """The change-tracking delta token expired: do a full sync with ``changes(table, token=None)``."""


_BY_STATUS: dict[int, type[D365Error]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    412: PreconditionFailed,
    429: Throttled,
}

TRANSIENT_STATUSES = frozenset({408, 429, 502, 503, 504})

# Service codes meaning "the delta token is too old" (ExpiredVersionStamp).
EXPIRED_TOKEN_CODES = frozenset({"0x80044352"})


def error_for_status(
    status: int,
    message: str,
    *,
    code: str | None = None,
    **fields: Any,
) -> D365Error:
    """Build the typed error for an HTTP error response."""
    if code and code.lower() in EXPIRED_TOKEN_CODES:
        cls: type[D365Error] = ChangeTokenExpired
        message = f"{message} Call changes(table) without a token to resync."
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, D365Error)
    return cls(
        message, status=status, code=code, is_transient=status in TRANSIENT_STATUSES, **fields
    )
