"""Fixtures of the client tests: hand-built metadata for the pure (no-network) tests."""

import pytest

from d365nb.client.metadata import ColumnMeta, TableMeta


def build_task_meta() -> TableMeta:
    cols = [
        ColumnMeta(
            "activityid",
            "Uniqueidentifier",
            "Task",
            required=True,
            valid_for_update=False,
            is_primary_id=True,
        ),
        ColumnMeta("subject", "String", "Subject", required=True, max_length=200),
        ColumnMeta("description", "Memo", "Description", max_length=2000),
        ColumnMeta("percentcomplete", "Integer", "Percent Complete", min_value=0, max_value=100),
        ColumnMeta(
            "actualdurationminutes", "Integer", "Duration", min_value=0, max_value=2147483647
        ),
        ColumnMeta("scheduledend", "DateTime", "Due Date"),
        ColumnMeta("actualstart", "DateTime", "Actual Start", date_only=True),
        ColumnMeta(
            "prioritycode", "Picklist", "Priority", options={0: "Low", 1: "Normal", 2: "High"}
        ),
        ColumnMeta(
            "statecode", "State", "Status", options={0: "Open", 1: "Completed", 2: "Canceled"}
        ),
        ColumnMeta("isbilled", "Boolean", "Is Billed", options={0: "No", 1: "Yes"}),
        ColumnMeta("budget", "Money", "Budget", min_value=-1e12, max_value=1e12),
        ColumnMeta(
            "regardingobjectid", "Lookup", "Regarding", targets=["account", "contact", "lead"]
        ),
        ColumnMeta("ownerid", "Owner", "Owner", targets=["systemuser", "team"]),
        ColumnMeta("parentaccountid", "Lookup", "Parent", targets=["account"]),
        ColumnMeta(
            "createdon",
            "DateTime",
            "Created On",
            read_only=True,
            valid_for_create=False,
            valid_for_update=False,
        ),
        ColumnMeta(
            "versionnumber",
            "BigInt",
            "Version",
            read_only=True,
            valid_for_create=False,
            valid_for_update=False,
        ),
    ]
    return TableMeta(
        logical_name="task",
        entity_set="tasks",
        primary_id="activityid",
        primary_name="subject",
        display_name="Task",
        change_tracking=True,
        columns={c.name: c for c in cols},
        navigations={
            ("regardingobjectid", "lead"): "regardingobjectid_lead_task",
            ("regardingobjectid", "account"): "regardingobjectid_account_task",
            ("regardingobjectid", "contact"): "regardingobjectid_contact_task",
            ("ownerid", "systemuser"): "ownerid",
            ("ownerid", "team"): "ownerid",
        },
    )


TABLES = {
    "account": "accounts",
    "contact": "contacts",
    "lead": "leads",
    "systemuser": "systemusers",
    "team": "teams",
    "task": "tasks",
}


def resolve_target(name: str):
    for logical, entity_set in TABLES.items():
        if name.lower() in (logical, entity_set):
            return logical, entity_set
    return None


@pytest.fixture
def task_meta() -> TableMeta:
    """A task table shaped like Dataverse's (lookups with per-target navigations)."""
    return build_task_meta()


@pytest.fixture
def targets():
    """Resolves lookup types by logical or entity-set name, as the metadata cache does."""
    return resolve_target


@pytest.fixture
def d365(sandbox):
    """A client on the session's demo sandbox (shared with other tests: count what you make)."""
    from d365nb.client.api import Dataverse

    with Dataverse(sandbox.url, token=sandbox.token) as conn:
        yield conn


@pytest.fixture
def empty_d365(empty_sandbox):
    """A client on a fresh sandbox without demo data (for "nothing was written" checks)."""
    from d365nb.client.api import Dataverse

    with Dataverse(empty_sandbox.url, token=empty_sandbox.token) as conn:
        yield conn


# -- a fake Entra ID on loopback: the only faked part, at the HTTP boundary -------------------

FAKE_AUTHORITY_HOST = "https://login.entra.test"


def _b64(data: dict) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


class FakeEntra:
    """OpenID discovery, token (client credentials, device code, refresh) and devicecode
    endpoints, served by uvicorn on 127.0.0.1. ``access_tokens`` is the queue of tokens to
    issue (then ``at-N``); ``grants`` records each grant type used."""

    def __init__(self) -> None:
        import itertools

        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        self.authority_host = FAKE_AUTHORITY_HOST
        self.grants: list[str] = []
        self.access_tokens: list[str] = []
        self.expires_in = 3600
        self.client_secret = "s3cret-VALUE-never-shown"
        self._counter = itertools.count(1)

        async def discovery(request: Request):
            tenant = request.path_params["tenant"]
            base = f"{FAKE_AUTHORITY_HOST}/{tenant}"
            return JSONResponse(
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                    "issuer": f"{FAKE_AUTHORITY_HOST}/{tenant}/v2.0",
                }
            )

        async def devicecode(request: Request):
            self.grants.append("devicecode")
            return JSONResponse(
                {
                    "device_code": "dev-code-1",
                    "user_code": "ABCD-1234",
                    "verification_uri": "https://microsoft.com/devicelogin",
                    "expires_in": 900,
                    "interval": 1,
                    "message": "To sign in, open https://microsoft.com/devicelogin and enter ABCD-1234.",
                }
            )

        async def token(request: Request):
            from urllib.parse import parse_qsl

            form = dict(parse_qsl((await request.body()).decode()))
            grant = form.get("grant_type")
            self.grants.append(grant)
            if grant == "client_credentials" and form.get("client_secret") != self.client_secret:
                return JSONResponse(
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided.",
                    },
                    status_code=401,
                )
            n = next(self._counter)
            access = self.access_tokens.pop(0) if self.access_tokens else f"at-{n}"
            body = {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "scope": form.get("scope", ""),
            }
            if grant != "client_credentials":
                client_id = form.get("client_id")
                now = 1_700_000_000
                body.update(
                    refresh_token=f"rt-{n}",
                    id_token=f"{_b64({'alg': 'none'})}.{_b64({'iss': 'https://login.entra.test/tid/v2.0', 'sub': 'user', 'aud': client_id, 'oid': 'oid-1', 'tid': 'tid', 'preferred_username': 'ada@contoso.test', 'iat': now, 'exp': now + 10**9})}.",
                    client_info=_b64({"uid": "oid-1", "utid": "tid"}),
                )
            return JSONResponse(body)

        self.app = Starlette(
            routes=[
                Route("/{tenant}/v2.0/.well-known/openid-configuration", discovery),
                Route("/{tenant}/oauth2/v2.0/devicecode", devicecode, methods=["POST"]),
                Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
            ]
        )

    def start(self) -> None:
        import socket
        import threading

        import uvicorn

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        import time

        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "fake Entra ID did not start"
            self.thread.join(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def http_client(self):
        """What msal's ``http_client`` needs (requests-like get/post), sending every call to
        this server over loopback HTTP instead of the Internet."""
        import httpx

        fake = self

        class LoopbackHttp:
            def __init__(self) -> None:
                self.client = httpx.Client(timeout=10)

            def _url(self, url: str) -> str:
                return url.replace(FAKE_AUTHORITY_HOST, f"http://127.0.0.1:{fake.port}")

            def get(self, url, params=None, headers=None, **_):
                return self.client.get(self._url(url), params=params, headers=headers)

            def post(self, url, params=None, data=None, headers=None, **_):
                return self.client.post(self._url(url), params=params, data=data, headers=headers)

            def close(self):
                self.client.close()

        return LoopbackHttp()


@pytest.fixture
def entra():
    fake = FakeEntra()
    fake.start()
    yield fake
    fake.stop()
