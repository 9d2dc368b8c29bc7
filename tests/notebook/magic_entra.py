"""A loopback stand-in for Entra ID's device-code sign-in, the only thing these tests fake:
OpenID discovery, ``devicecode`` and ``token`` endpoints served by uvicorn on 127.0.0.1, and a
requests-like ``http_client`` that sends msal's calls for ``AUTHORITY`` there. The person
"signs in" as soon as the device code has been shown (``approve_on_prompt``)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from typing import Any

import httpx

AUTHORITY = "https://login.nbtest.example"
USER_CODE = "NBMAGIC-42"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


class FakeEntra:
    def __init__(self, access_token: str) -> None:
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        self.grants: list[str] = []

        async def discovery(request):
            base = f"{AUTHORITY}/{request.path_params['tenant']}"
            return JSONResponse(
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                    "issuer": f"{base}/v2.0",
                }
            )

        async def devicecode(request):
            self.grants.append("devicecode")
            return JSONResponse(
                {
                    "device_code": "device-1",
                    "user_code": USER_CODE,
                    "verification_uri": "https://microsoft.com/devicelogin",
                    "expires_in": 900,
                    "interval": 1,
                    "message": f"To sign in, open https://microsoft.com/devicelogin and enter {USER_CODE}.",
                }
            )

        async def token(request):
            self.grants.append("token")
            now = int(time.time())
            claims = {"iss": f"{AUTHORITY}/tid/v2.0", "sub": "u", "aud": "app", "oid": "oid-1",
                      "tid": "tid", "preferred_username": "ada@contoso.test", "iat": now,
                      "exp": now + 3600}  # fmt: skip
            return JSONResponse(
                {
                    "access_token": access_token,
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "refresh_token": "rt-1",
                    "id_token": f"{_b64({'alg': 'none'})}.{_b64(claims)}.",
                    "client_info": _b64({"uid": "oid-1", "utid": "tid"}),
                }
            )

        self.app = Starlette(
            routes=[
                Route("/{tenant}/v2.0/.well-known/openid-configuration", discovery),
                Route("/{tenant}/oauth2/v2.0/devicecode", devicecode, methods=["POST"]),
                Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
            ]
        )

    def __enter__(self) -> FakeEntra:
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
            time.sleep(0.01)  # polling a condition with a deadline, not waiting blindly
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def http_client(self) -> Any:
        """A requests-like client for msal that sends ``AUTHORITY`` calls here."""
        port = self.port

        class Loopback:
            def __init__(self) -> None:
                self.client = httpx.Client(timeout=10)

            def _url(self, url: str) -> str:
                return url.replace(AUTHORITY, f"http://127.0.0.1:{port}")

            def get(self, url, params=None, headers=None, **_):
                return self.client.get(self._url(url), params=params, headers=headers)

            def post(self, url, params=None, data=None, headers=None, **_):
                return self.client.post(self._url(url), params=params, data=data, headers=headers)

            def close(self):
                self.client.close()

        return Loopback()
