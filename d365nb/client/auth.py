"""Bearer tokens for the Web API: static, callable, or Entra ID sign-in through msal.

Every provider answers ``cached()`` (a token valid for a while, no I/O) and
``token(force_refresh=False)`` (may sign in or refresh). msal providers keep a persistent
``SerializableTokenCache`` file (mode 0600) so the next session signs in silently, and refresh a
token 5 minutes before it expires. No provider ever puts a token or secret in its repr.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from d365nb.client.errors import AuthError, ValidationError

__all__ = [
    "StaticToken",
    "CallableToken",
    "ClientSecretAuth",
    "DeviceCodeAuth",
    "InteractiveAuth",
    "DeviceCodePrompt",
    "default_cache_path",
    "scope_for",
    "auth_from_env",
    "PUBLIC_CLIENT_ID",
]

# Microsoft's sample public client registered for Dataverse (used by its own docs and tools).
PUBLIC_CLIENT_ID = "51f81489-12ee-4a9e-aaae-a2591f45987d"
AUTHORITY_HOST = "https://login.microsoftonline.com"
REFRESH_MARGIN = 300.0  # seconds before expiry when a token counts as stale
_CALLABLE_TTL = 60.0  # a callable returning a bare string is asked again after this long


def scope_for(org_url: str) -> str:
    """The Entra ID scope for an organisation: ``https://org.crm.dynamics.com/.default``."""
    return org_url.rstrip("/") + "/.default"


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/d365nb/msal_token_cache.json`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "d365nb" / "msal_token_cache.json"


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def private_dir(directory: Path, *, ours: bool = False) -> None:
    """Create ``directory`` as 0700; narrow it to 0700 when we created it or it is d365nb's own
    cache directory (a user-chosen existing folder such as /tmp is left as it is)."""
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if created or ours:
        os.chmod(directory, 0o700)


def _token_text(value: str) -> str:
    """A bearer token as sent: a pasted ``Bearer `` prefix is dropped; whitespace or control
    characters inside are refused (they would break or split the Authorization header). The
    message never contains the token."""
    text = value.strip()
    if text[:7].lower() == "bearer ":
        text = text[7:].strip()
    if not text or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ValidationError(
            "token must be one word of text (no spaces, line breaks or control characters)"
        )
    return text


class StaticToken:
    """A token given as a string; it cannot be refreshed."""

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not token.strip():
            raise ValidationError("token must be a non-empty string")
        self._token = _token_text(token)

    def cached(self) -> str | None:
        return self._token

    def token(self, *, force_refresh: bool = False) -> str:
        return self._token

    def __repr__(self) -> str:
        return "StaticToken(<hidden>)"


class CallableToken:
    """A token from a callable returning a string, or an object with ``token`` and
    ``expires_on`` (e.g. ``azure.identity``'s ``AccessToken``), or ``(token, expires_on)``."""

    def __init__(self, source: Callable[[], Any], *, clock: Callable[[], float] = time.time):
        if not callable(source):
            raise ValidationError("token must be a string or a callable returning one")
        self._source = source
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def cached(self) -> str | None:
        if self._token and self._clock() < self._expires:
            return self._token
        return None

    def token(self, *, force_refresh: bool = False) -> str:
        with self._lock:
            if not force_refresh and (token := self.cached()):
                return token
            value = self._source()
            expires_on: float | None = None
            if isinstance(value, tuple):
                value, expires_on = value
            elif not isinstance(value, str) and hasattr(value, "token"):
                expires_on = getattr(value, "expires_on", None)
                value = value.token
            if not isinstance(value, str) or not value:
                raise AuthError("the token callable returned no token")
            try:
                value = _token_text(value)
            except ValidationError as exc:
                raise AuthError(f"the token callable returned a bad token: {exc.message}") from None
            now = self._clock()
            self._token = value
            self._expires = (
                float(expires_on) - REFRESH_MARGIN if expires_on else now + _CALLABLE_TTL
            )
            return value

    def __repr__(self) -> str:
        return f"CallableToken({getattr(self._source, '__name__', 'callable')})"


@dataclass(frozen=True)
class DeviceCodePrompt:
    """What a user needs to finish a device-code sign-in: open ``verification_uri`` and enter
    ``user_code``. ``message`` is Entra ID's own sentence saying so."""

    user_code: str
    verification_uri: str
    message: str
    expires_in: int | None = None


def _print_prompt(prompt: DeviceCodePrompt) -> None:
    print(prompt.message, flush=True)


def _expires_soon(result: dict | None) -> bool:
    if not result or "access_token" not in result:
        return False
    try:
        return float(result.get("expires_in") or 3600) < REFRESH_MARGIN
    except (TypeError, ValueError):
        return False


class _MsalAuth:
    """Shared machinery: persistent cache, expiry tracking, refresh margin, locking."""

    def __init__(
        self,
        org_url: str,
        *,
        cache_path: str | os.PathLike | None = None,
        persist: bool = True,
        http_client: Any = None,
        authority_host: str = AUTHORITY_HOST,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import msal

        self.scopes = [scope_for(org_url)]
        self.cache_path = Path(cache_path) if cache_path else default_cache_path()
        self.persist = persist
        self._http_client = http_client
        self._authority_host = authority_host.rstrip("/")
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self._app: Any = None
        self._make_app: Callable[[], Any] = lambda: None
        self.cache = msal.SerializableTokenCache()
        if persist and self.cache_path.exists():
            # An unreadable cache only costs one interactive sign-in.
            with contextlib.suppress(OSError, ValueError):
                os.chmod(self.cache_path, 0o600)  # a cache copied in loosely is narrowed first
                self.cache.deserialize(self.cache_path.read_text())

    def _app_kwargs(self, authority: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"authority": authority, "token_cache": self.cache}
        if self._http_client is not None:
            kwargs["http_client"] = self._http_client
        if not self._authority_host.startswith(AUTHORITY_HOST):
            # A sovereign cloud or test authority: skip Microsoft's instance discovery.
            kwargs["instance_discovery"] = False
        return kwargs

    def _save(self) -> None:
        if not (self.persist and self.cache.has_state_changed):
            return
        path = self.cache_path
        private_dir(path.parent, ours=path == default_cache_path())
        # Created 0600 (and an older, looser file narrowed before anything is written), never
        # through a symlink: the refresh token is never readable by another user.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o600)
        except OSError as exc:  # e.g. a symlink planted at the cache path: keep it in memory
            import warnings

            warnings.warn(f"token cache not saved to {path}: {exc.strerror}", stacklevel=3)
            return
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.cache.serialize())
        self.cache.has_state_changed = False

    def _accept(self, result: dict | None, what: str) -> str:
        if not result or "access_token" not in result:
            result = result or {}
            error = result.get("error") or "no_token"
            description = str(result.get("error_description") or "").split("\r\n")[0]
            raise AuthError(f"{what} failed: {error}: {description}".strip().rstrip(":"))
        self._token = result["access_token"]
        self._expires = self._clock() + float(result.get("expires_in") or 3600)
        self._save()
        return self._token

    def cached(self) -> str | None:
        if self._token and self._clock() < self._expires - REFRESH_MARGIN:
            return self._token
        return None

    @property
    def app(self) -> Any:
        """The msal application (built on first use)."""
        if self._app is None:
            self._app = self._make_app()
        return self._app

    def token(self, *, force_refresh: bool = False) -> str:
        with self._lock:
            if not force_refresh and (token := self.cached()):
                return token
            try:
                return self._acquire(force_refresh)
            except AuthError:
                raise
            except Exception as exc:  # network or msal failures: one line, no secrets
                raise AuthError(
                    f"sign-in failed: could not complete the request to Entra ID "
                    f"({type(exc).__name__}); check the network, tenant and client id"
                ) from None

    def _acquire(self, force_refresh: bool) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scopes={self.scopes!r}, cache={str(self.cache_path)!r})"


class ClientSecretAuth(_MsalAuth):
    """App-only sign-in with a client secret (confidential client, client credentials)."""

    def __init__(
        self,
        org_url: str,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        **kwargs: Any,
    ) -> None:
        import msal

        super().__init__(org_url, **kwargs)
        missing = [
            n
            for n, v in (
                ("tenant_id", tenant_id),
                ("client_id", client_id),
                ("client_secret", client_secret),
            )
            if not v
        ]
        if missing:
            raise ValidationError(f"client secret sign-in needs {', '.join(missing)}")
        self.client_id = client_id
        authority = f"{self._authority_host}/{tenant_id}"
        # Built on first use: msal contacts Entra ID when it builds the app.
        self._make_app = lambda: msal.ConfidentialClientApplication(
            client_id, client_credential=client_secret, **self._app_kwargs(authority)
        )

    def _acquire(self, force_refresh: bool) -> str:
        if force_refresh:
            self.app.remove_tokens_for_client()
        result = self.app.acquire_token_for_client(scopes=self.scopes)
        if not force_refresh and _expires_soon(result):
            # msal hands back its cached token until it expires; we want a fresh one earlier.
            self.app.remove_tokens_for_client()
            result = self.app.acquire_token_for_client(scopes=self.scopes)
        return self._accept(result, "client secret sign-in")


class _PublicClientAuth(_MsalAuth):
    def __init__(
        self,
        org_url: str,
        *,
        client_id: str = PUBLIC_CLIENT_ID,
        tenant_id: str = "organizations",
        username: str | None = None,
        **kwargs: Any,
    ) -> None:
        import msal

        super().__init__(org_url, **kwargs)
        self.client_id = client_id
        self.username = username
        authority = f"{self._authority_host}/{tenant_id}"
        self._make_app = lambda: msal.PublicClientApplication(
            client_id, **self._app_kwargs(authority)
        )

    def _silent(self, force_refresh: bool) -> dict | None:
        accounts = self.app.get_accounts(username=self.username)
        for account in accounts:
            result = self.app.acquire_token_silent(
                self.scopes, account=account, force_refresh=force_refresh
            )
            if result and "access_token" in result:
                return result
        return None

    def _acquire(self, force_refresh: bool) -> str:
        result = self._silent(force_refresh)
        if result and not force_refresh and _expires_soon(result):
            # Refresh before expiry rather than fail a request a minute from now.
            result = self._silent(True) or result
        if result:
            return self._accept(result, "silent sign-in")
        return self._accept(self._sign_in(), f"{self.flow_name} sign-in")

    flow_name = "interactive"

    def _sign_in(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError


class DeviceCodeAuth(_PublicClientAuth):
    """Sign in a user with a device code: ``callback(DeviceCodePrompt)`` shows the code and URL
    (a notebook renders a link); the call returns once the user has signed in."""

    flow_name = "device code"

    def __init__(
        self,
        org_url: str,
        *,
        callback: Callable[[DeviceCodePrompt], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(org_url, **kwargs)
        self.callback = callback or _print_prompt

    def _sign_in(self) -> dict:
        flow = self.app.initiate_device_flow(scopes=self.scopes)
        if "user_code" not in flow:
            raise AuthError(
                f"device code sign-in failed: {flow.get('error', 'no code')}: "
                f"{str(flow.get('error_description', '')).splitlines()[0] if flow.get('error_description') else ''}"
            )
        self.callback(
            DeviceCodePrompt(
                user_code=flow["user_code"],
                verification_uri=flow.get("verification_uri") or flow.get("verification_url", ""),
                message=flow.get("message", ""),
                expires_in=flow.get("expires_in"),
            )
        )
        return self.app.acquire_token_by_device_flow(flow)


class InteractiveAuth(_PublicClientAuth):
    """Sign in a user in the system browser (needs a desktop session): msal opens Entra ID's
    sign-in page and listens on ``http://localhost:<port>`` for the redirect carrying the code
    (auth code flow with PKCE). ``timeout`` seconds without an answer fail the sign-in instead
    of blocking a notebook cell forever."""

    flow_name = "interactive"

    def __init__(self, org_url: str, *, timeout: float | None = 300.0, **kwargs: Any) -> None:
        super().__init__(org_url, **kwargs)
        self.timeout = timeout

    def _sign_in(self) -> dict:
        return self.app.acquire_token_interactive(
            self.scopes, login_hint=self.username, timeout=self.timeout
        )


def auth_from_env(org_url: str, **kwargs: Any) -> ClientSecretAuth | None:
    """Client-secret sign-in from ``AZURE_TENANT_ID``/``AZURE_CLIENT_ID``/``AZURE_CLIENT_SECRET``,
    or None when they are not all set."""
    tenant = os.environ.get("AZURE_TENANT_ID")
    client = os.environ.get("AZURE_CLIENT_ID")
    secret = os.environ.get("AZURE_CLIENT_SECRET")
    if tenant and client and secret:
        return ClientSecretAuth(org_url, tenant, client, secret, **kwargs)
    return None
