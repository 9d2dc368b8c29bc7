"""Bearer-token auth and WhoAmI (wire doc §1)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from d365nb import sandbox as sandbox_module


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
)
def test_requests_without_the_token_get_401_and_the_entra_challenge(sandbox, headers):
    r = httpx.get(sandbox.api + "accounts", headers=headers)
    assert r.status_code == 401
    challenge = r.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer authorization_uri=https://login.microsoftonline.com/")
    tenant = challenge.split("login.microsoftonline.com/")[1].split("/")[0]
    assert uuid.UUID(tenant)
    assert challenge.split(",")[0].endswith("/oauth2/authorize")
    assert challenge.endswith(f", resource_id={sandbox.url}/")
    error = r.json()["error"]
    assert set(error) == {"code", "message"}
    assert sandbox.token not in r.text


def test_401_never_leaks_the_token_even_with_a_near_miss(sandbox):
    r = httpx.get(sandbox.api + "WhoAmI", headers={"Authorization": f"Bearer {sandbox.token}x"})
    assert r.status_code == 401
    assert sandbox.token not in r.text
    assert sandbox.token not in str(r.headers)


def test_token_stays_out_of_reprs(sandbox):
    assert sandbox.token not in repr(sandbox)
    assert sandbox.token not in repr(sandbox.org)


def test_whoami(api, sandbox):
    r = api.get("WhoAmI")
    assert r.status_code == 200
    body = r.json()
    assert body["@odata.context"] == (
        f"{sandbox.api}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"
    )
    assert body["UserId"] == sandbox.org.user_id
    for key in ("BusinessUnitId", "UserId", "OrganizationId"):
        assert uuid.UUID(body[key])
    assert api.get("WhoAmI()").json()["UserId"] == body["UserId"]
    # the caller is a real user record
    user = api.get(f"systemusers({body['UserId']})?$select=fullname").json()
    assert user["fullname"]


def test_given_token_is_used():
    with sandbox_module.start(data="empty", token="s3cret-token") as h:
        assert h.token == "s3cret-token"
        ok = httpx.get(h.api + "WhoAmI", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200
        caller = ok.json()["UserId"]
        r = httpx.get(
            h.api + f"systemusers({caller})", headers={"Authorization": "Bearer s3cret-token"}
        )
        assert r.json()["fullname"] == "SYSTEM"


def test_random_tokens_differ(empty_sandbox):
    with sandbox_module.start(data="empty") as other:
        assert other.token != empty_sandbox.token
        assert len(other.token) >= 32
        r = httpx.get(
            other.api + "WhoAmI", headers={"Authorization": f"Bearer {empty_sandbox.token}"}
        )
        assert r.status_code == 401


def test_binds_loopback_by_default(empty_sandbox):
    assert empty_sandbox.url.startswith("http://127.0.0.1:")
    assert empty_sandbox.api == empty_sandbox.url + "/api/data/v9.2/"


def test_auth_scheme_is_case_insensitive(sandbox):
    # RFC 9110: the scheme is case-insensitive; some HTTP libraries send "bearer".
    r = httpx.get(sandbox.api + "WhoAmI", headers={"Authorization": f"bearer {sandbox.token}"})
    assert r.status_code == 200
    near = httpx.get(sandbox.api + "WhoAmI", headers={"Authorization": f"bearer {sandbox.token}x"})
    assert near.status_code == 401
