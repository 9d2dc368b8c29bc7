"""A fake Entra ID on loopback - the only thing the test suite fakes, at the HTTP boundary.

msal's real code talks to it: OpenID discovery, the ``devicecode`` endpoint, the ``authorize``
endpoint (auth code + PKCE, answered with the ``form_post`` page a browser would submit) and the
``token`` endpoint (client credentials, device code, authorization code, refresh token). msal is
pointed here with ``authority_host=entra.authority`` and ``http_client=entra.http_client()``
(a requests-like client rewriting the authority to ``http://127.0.0.1:<port>``).

    with FakeEntra(access_token=sandbox.token) as entra:
        auth = DeviceCodeAuth(org, authority_host=entra.authority, http_client=entra.http_client())

Knobs: ``access_tokens`` (queue of tokens to issue, then ``access_token`` or ``at-N``),
``expires_in``, ``client_secret`` (checked for client credentials; None accepts any),
``user_code``, and ``approved`` (False: the device-code grant answers ``authorization_pending`` until
:meth:`approve`, as while a person is signing in). Records ``grants`` (grant types used, plus
``"devicecode"``/``"authorize"`` visits; ``grant_types`` without them) and ``polls`` (token
requests).
"""

from __future__ import annotations

import base64
import hashlib
import html
import itertools
import json
import re
import secrets
import socket
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

AUTHORITY = "https://login.entra.test"
USER_CODE = "ABCD-1234"
DEVICE_LOGIN = "https://microsoft.com/devicelogin"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class FakeEntra:
    """Entra ID's sign-in endpoints served by uvicorn on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        access_token: str | None = None,
        *,
        authority: str = AUTHORITY,
        user_code: str = USER_CODE,
        approved: bool = True,
        client_secret: str | None = "s3cret-VALUE-never-shown",
    ) -> None:
        self.authority = self.authority_host = authority
        self.access_token = access_token
        self.access_tokens: list[str] = []
        self.expires_in = 3600
        self.client_secret = client_secret
        self.user_code = user_code
        self.approved = threading.Event()
        if approved:
            self.approved.set()
        self.grants: list[str] = []
        self.polls = 0
        self.authorizations: list[dict[str, str]] = []  # query of each /authorize visit
        self._codes: dict[str, dict[str, str]] = {}  # auth code -> its /authorize request
        self._nonces: dict[str, str | None] = {}  # redeemed auth code -> nonce for the id token
        self._counter = itertools.count(1)
        self.app = self._build_app()

    # -- the endpoints ------------------------------------------------------------------------

    def _build_app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import HTMLResponse, JSONResponse
        from starlette.routing import Route

        async def discovery(request: Request):
            base = f"{self.authority}/{request.path_params['tenant']}"
            return JSONResponse(
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                    "issuer": f"{base}/v2.0",
                }
            )

        async def devicecode(request: Request):
            self.grants.append("devicecode")
            return JSONResponse(
                {
                    "device_code": "device-1",
                    "user_code": self.user_code,
                    "verification_uri": DEVICE_LOGIN,
                    "expires_in": 900,
                    "interval": 1,
                    "message": f"To sign in, open {DEVICE_LOGIN} and enter {self.user_code}.",
                }
            )

        async def authorize(request: Request):
            # The person signed in: answer like Entra ID with response_mode=form_post, a page
            # whose form posts the code and state back to the app's redirect URI.
            query = dict(request.query_params)
            self.grants.append("authorize")
            self.authorizations.append(query)
            code = secrets.token_urlsafe(16)
            self._codes[code] = query
            fields = {"code": code, "state": query.get("state", "")}
            inputs = "".join(
                f'<input type="hidden" name="{k}" value="{html.escape(v)}"/>'
                for k, v in fields.items()
            )
            action = html.escape(query.get("redirect_uri", ""))
            return HTMLResponse(
                f'<html><body onload="document.forms[0].submit()"><form method="POST" '
                f'action="{action}">{inputs}</form></body></html>'
            )

        async def token(request: Request):
            form = dict(parse_qsl((await request.body()).decode()))
            grant = form.get("grant_type", "")
            self.polls += 1
            refused = self._refusal(grant, form)
            if refused is not None:
                return JSONResponse(
                    refused, status_code=400 if grant != "client_credentials" else 401
                )
            self.grants.append(grant)
            return JSONResponse(self._tokens(grant, form, self._nonces.pop(form.get("code"), None)))

        return Starlette(
            routes=[
                Route("/{tenant}/v2.0/.well-known/openid-configuration", discovery),
                Route("/{tenant}/oauth2/v2.0/devicecode", devicecode, methods=["POST"]),
                Route("/{tenant}/oauth2/v2.0/authorize", authorize),
                Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
            ]
        )

    def _refusal(self, grant: str, form: dict[str, str]) -> dict | None:
        """The error body Entra ID would send for this token request, or None to issue."""
        wrong_secret = (
            self.client_secret is not None and form.get("client_secret") != self.client_secret
        )
        if grant == "client_credentials" and wrong_secret:
            return {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
            }
        if grant == "urn:ietf:params:oauth:grant-type:device_code" and not self.approved.is_set():
            return {"error": "authorization_pending", "error_description": "pending"}
        if grant == "authorization_code":
            asked = self._codes.pop(form.get("code", ""), None)
            if asked is not None:
                self._nonces[form["code"]] = asked.get("nonce")
            verifier = form.get("code_verifier", "")
            if asked is None or asked.get("code_challenge") != _pkce_challenge(verifier):
                return {"error": "invalid_grant", "error_description": "AADSTS70008: bad code"}
        return None

    def _tokens(self, grant: str, form: dict[str, str], nonce: str | None) -> dict[str, Any]:
        n = next(self._counter)
        queued = self.access_tokens.pop(0) if self.access_tokens else None
        access = queued or self.access_token or f"at-{n}"
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": form.get("scope", ""),
        }
        if grant != "client_credentials":
            now = int(time.time())
            claims = {"iss": f"{self.authority}/tid/v2.0", "sub": "user",
                      "aud": form.get("client_id", "app"), "oid": "oid-1", "tid": "tid",
                      "preferred_username": "ada@contoso.test", "iat": now,
                      "exp": now + 3600}  # fmt: skip
            if nonce:
                claims["nonce"] = nonce  # msal checks it against the one it sent to /authorize
            body.update(
                refresh_token=f"rt-{n}",
                id_token=f"{_b64({'alg': 'none'})}.{_b64(claims)}.",
                client_info=_b64({"uid": "oid-1", "utid": "tid"}),
            )
        return body

    @property
    def grant_types(self) -> list[str]:
        """The OAuth grant types of the tokens issued so far (no endpoint visits)."""
        return [g for g in self.grants if g not in ("devicecode", "authorize")]

    def approve(self) -> None:
        """The person has entered the device code and signed in."""
        self.approved.set()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeEntra:
        import uvicorn

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("fake Entra ID did not start")
            self.thread.join(0.01)  # polls the started flag with a deadline
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def __enter__(self) -> FakeEntra:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- clients ------------------------------------------------------------------------------

    def loopback(self, url: str) -> str:
        """``url`` with the fake authority replaced by this server's loopback address."""
        return url.replace(self.authority, f"http://127.0.0.1:{self.port}")

    def http_client(self) -> Any:
        """What msal's ``http_client`` needs (requests-like get/post), sending every call to
        this server over loopback HTTP instead of the Internet."""
        return _LoopbackHttp(self)

    def browser(self) -> FakeBrowser:
        """A stand-in for the person's browser during interactive sign-in."""
        return FakeBrowser(self)


class _LoopbackHttp:
    def __init__(self, entra: FakeEntra) -> None:
        self._entra = entra
        self.client = httpx.Client(timeout=10)

    def get(self, url, params=None, headers=None, **_):
        return self.client.get(self._entra.loopback(url), params=params, headers=headers)

    def post(self, url, params=None, data=None, headers=None, **_):
        return self.client.post(
            self._entra.loopback(url), params=params, data=data, headers=headers
        )

    def close(self) -> None:
        self.client.close()


class FakeBrowser:
    """Does what a person's browser does in msal's interactive sign-in: opens the authorize URL
    (at the fake Entra ID), then submits the returned ``form_post`` page to the app's local
    redirect listener. ``open`` has ``webbrowser.open``'s signature; the navigation runs on a
    thread because msal only starts serving its listener after the browser was launched."""

    def __init__(self, entra: FakeEntra) -> None:
        self._entra = entra
        self.opened: list[str] = []
        self.errors: list[BaseException] = []

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.opened.append(url)
        threading.Thread(target=self._navigate, args=(url,), daemon=True).start()
        return True

    def _navigate(self, url: str) -> None:
        try:
            with httpx.Client(timeout=10) as client:
                page = client.get(self._entra.loopback(url))
                page.raise_for_status()
                action = html.unescape(re.search(r'action="([^"]*)"', page.text).group(1))
                fields = {
                    name: html.unescape(value)
                    for name, value in re.findall(r'name="([^"]+)" value="([^"]*)"', page.text)
                }
                assert urlsplit(action).hostname == "localhost", action
                client.post(action, data=fields)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the test through .errors
            self.errors.append(exc)
