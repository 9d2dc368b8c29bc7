"""Checks of ``connect()``'s arguments, before anything starts or is sent.

A wrong argument must cost one line naming it (a :class:`ValidationError`), not a ``TypeError``
from httpx at the first request, and an unknown keyword must not be silently ignored (a typo in
``verfy=`` would otherwise quietly turn certificate checks back on or off).
"""

from __future__ import annotations

import math
import os
from typing import Any
from urllib.parse import urlsplit

from d365nb.client.errors import ValidationError

__all__ = ["check_connect", "KNOWN_OPTIONS"]

# Keywords connect()/Dataverse() pass on to the sign-in (``api._token_source``) or the sandbox.
KNOWN_OPTIONS = frozenset(
    {
        "cache_path",
        "persist",
        "http_client",
        "authority_host",
        "device_code_callback",
        "client_id",
        "tenant_id",
        "sandbox_options",
    }
)


def check_url(url: Any) -> str:
    """The organisation URL (or ``"sandbox"``) stripped of surrounding whitespace."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError(
            "url: expected an organisation URL like 'https://contoso.crm.dynamics.com' or "
            f"'sandbox', got {_shown(url)}"
        )
    url = url.strip()
    if url == "sandbox":
        return url
    if any(ch.isspace() for ch in url):
        raise ValidationError(f"url: {_shown(url)} contains spaces")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number 0..65535
    except ValueError:
        raise ValidationError(f"url: {_shown(url)} has an invalid port") from None
    return url


def check_connect(
    *,
    url: Any,
    verify: Any,
    timeout: Any,
    alias: Any,
    retry: Any,
    auth: Any = None,
    options: dict[str, Any],
) -> str:
    """Refuse a bad argument of connect() with one line naming it; returns the clean URL."""
    from d365nb.client.retry import RetryPolicy

    url = check_url(url)
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        raise ValidationError(
            f"connect() got unknown option(s) {', '.join(unknown)}; known: "
            f"token, auth, verify, timeout, alias, max_concurrency, retry, transport, "
            f"{', '.join(sorted(KNOWN_OPTIONS))}"
        )
    sandbox_options = options.get("sandbox_options")
    if sandbox_options is not None and not isinstance(sandbox_options, dict):
        raise ValidationError("sandbox_options must be a dict of d365nb.sandbox.start() options")
    if sandbox_options and url != "sandbox":
        raise ValidationError("sandbox_options apply to connect('sandbox') only")
    if not isinstance(verify, bool):
        import ssl

        if isinstance(verify, str | os.PathLike):
            if not os.path.isfile(verify):
                raise ValidationError(f"verify: no CA bundle file at {os.fspath(verify)!r}")
        elif not isinstance(verify, ssl.SSLContext):
            raise ValidationError(
                f"verify must be True/False, a CA bundle path or an ssl.SSLContext, "
                f"got {type(verify).__name__}"
            )
    if timeout is not None:
        import httpx

        number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
        if not isinstance(timeout, httpx.Timeout) and not (
            number and math.isfinite(timeout) and timeout > 0
        ):
            raise ValidationError(
                f"timeout must be a positive number of seconds or an httpx.Timeout, "
                f"got {_shown(timeout)}"
            )
    if alias is not None and (
        not isinstance(alias, str) or not alias.strip() or any(c.isspace() for c in alias)
    ):
        raise ValidationError(f"alias must be a name without spaces, got {_shown(alias)}")
    if isinstance(auth, dict):
        keys = {"tenant_id", "client_id", "client_secret"}
        if set(auth) != keys or not all(isinstance(auth[k], str) and auth[k] for k in keys):
            given = ", ".join(sorted(map(str, auth))) or "nothing"
            raise ValidationError(
                f"auth dict needs tenant_id, client_id and client_secret (text), got {given}"
            )
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ValidationError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
    return url


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
