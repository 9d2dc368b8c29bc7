"""The bearer-token check shared by the API's auth middleware and the fault-control endpoint."""

from __future__ import annotations

import hmac


def bearer_matches(authorization: bytes, token: str) -> bool:
    """Whether an `Authorization` header value carries `token` as a bearer token.

    The scheme is case-insensitive (RFC 9110 §11.1), so `bearer <token>` passes too; the token
    is compared in constant time so its content cannot be probed by timing.
    """
    scheme, _, credentials = authorization.partition(b" ")
    if scheme.lower() != b"bearer" or not token:
        return False
    return hmac.compare_digest(credentials.strip(), token.encode())
