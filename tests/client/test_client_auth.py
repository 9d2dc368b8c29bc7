"""Sign-in with the real msal code against a fake Entra ID on loopback."""

import os
import stat

import pytest

from d365nb.client.api import Dataverse
from d365nb.client.auth import (
    ClientSecretAuth,
    DeviceCodeAuth,
    InteractiveAuth,
    auth_from_env,
    default_cache_path,
)
from d365nb.client.errors import AuthError, Unauthorized

ORG = "https://contoso.crm.dynamics.com"


def secret_auth(entra, tmp_path, **kw):
    return ClientSecretAuth(
        ORG,
        "tid",
        "app-id",
        entra.client_secret,
        authority_host=entra.authority_host,
        http_client=entra.http_client(),
        cache_path=tmp_path / "cache.json",
        **kw,
    )


def device_auth(entra, tmp_path, callback):
    return DeviceCodeAuth(
        ORG,
        callback=callback,
        tenant_id="tid",
        authority_host=entra.authority_host,
        http_client=entra.http_client(),
        cache_path=tmp_path / "cache.json",
    )


def test_client_secret_gets_a_token_for_the_org_scope(entra, tmp_path):
    auth = secret_auth(entra, tmp_path)
    assert auth.scopes == [f"{ORG}/.default"]
    assert auth.token() == "at-1"
    assert auth.token() == "at-1"  # cached: no second grant
    assert entra.grants == ["client_credentials"]


def test_client_secret_from_environment(entra, tmp_path, monkeypatch):
    monkeypatch.setenv("AZURE_TENANT_ID", "tid")
    monkeypatch.setenv("AZURE_CLIENT_ID", "app-id")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", entra.client_secret)
    auth = auth_from_env(
        ORG,
        authority_host=entra.authority_host,
        http_client=entra.http_client(),
        cache_path=tmp_path / "c.json",
    )
    assert isinstance(auth, ClientSecretAuth) and auth.token() == "at-1"
    monkeypatch.delenv("AZURE_CLIENT_SECRET")
    assert auth_from_env(ORG) is None


def test_device_code_shows_code_and_url_then_next_session_is_silent(entra, tmp_path):
    prompts = []
    first = device_auth(entra, tmp_path, prompts.append)
    assert first.token() == "at-1"
    assert [(p.user_code, p.verification_uri) for p in prompts] == [
        ("ABCD-1234", "https://microsoft.com/devicelogin")
    ]
    assert "ABCD-1234" in prompts[0].message
    cache = tmp_path / "cache.json"
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600

    def must_not_prompt(prompt):
        raise AssertionError("the second session should sign in silently")

    second = device_auth(entra, tmp_path, must_not_prompt)
    assert second.token()  # silently: from the cached tokens, no prompt, no new device code
    assert entra.grants.count("devicecode") == 1
    assert set(entra.grants[2:]) <= {"refresh_token"}, entra.grants


def test_tokens_are_refreshed_before_they_expire(entra, tmp_path):
    entra.expires_in = 200  # under the 5-minute margin: stale as soon as issued
    auth = device_auth(entra, tmp_path, lambda prompt: None)
    assert auth.token() == "at-1"
    entra.expires_in = 3600
    assert auth.token() == "at-2"
    assert entra.grants[-1] == "refresh_token"
    assert auth.token() == "at-2"


def test_refused_secret_gives_a_one_line_error_without_the_secret(entra, tmp_path):
    auth = ClientSecretAuth(
        ORG,
        "tid",
        "app-id",
        "wrong-secret-XYZ",
        authority_host=entra.authority_host,
        http_client=entra.http_client(),
        cache_path=tmp_path / "c.json",
    )
    with pytest.raises(AuthError) as info:
        auth.token()
    text = str(info.value)
    assert "invalid_client" in text and "wrong-secret-XYZ" not in text and "\n" not in text
    assert "wrong-secret-XYZ" not in repr(auth) and entra.client_secret not in repr(auth)


def test_a_401_refreshes_the_token_once_and_retries(entra, tmp_path, empty_sandbox):
    entra.access_tokens = ["stale-token", empty_sandbox.token]
    auth = secret_auth(entra, tmp_path)
    with Dataverse(empty_sandbox.url, auth=auth) as conn:
        assert conn.whoami()["UserId"]
    assert entra.grants == ["client_credentials", "client_credentials"]


def test_a_token_still_refused_after_refresh_raises_unauthorized(entra, tmp_path, empty_sandbox):
    entra.access_tokens = ["bad-1", "bad-2", "bad-3"]
    auth = secret_auth(entra, tmp_path)
    with Dataverse(empty_sandbox.url, auth=auth) as conn, pytest.raises(Unauthorized) as info:
        conn.whoami()
    assert entra.grants == ["client_credentials", "client_credentials"]
    assert "bad-2" not in str(info.value) and "\n" not in str(info.value)


def test_default_cache_lives_under_the_user_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / "d365nb" / "msal_token_cache.json"


def test_unreachable_entra_id_gives_a_one_line_auth_error(tmp_path):
    auth = ClientSecretAuth(
        ORG,
        "tid",
        "app-id",
        "secret-QQQ",
        authority_host="https://127.0.0.1:9",
        cache_path=tmp_path / "c.json",
    )
    with pytest.raises(AuthError) as info:
        auth.token()
    text = str(info.value)
    assert "Entra ID" in text and "\n" not in text and "secret-QQQ" not in text


def test_interactive_sign_in_follows_the_browser_redirect_then_is_silent(
    entra, tmp_path, monkeypatch
):
    import webbrowser

    browser = entra.browser()  # the person's browser: opens Entra ID, posts the code back
    monkeypatch.setattr(webbrowser, "open", browser.open)

    def interactive():
        return InteractiveAuth(
            ORG,
            tenant_id="tid",
            authority_host=entra.authority,
            http_client=entra.http_client(),
            cache_path=tmp_path / "cache.json",
            timeout=30,
        )

    assert interactive().token() == "at-1"
    assert browser.errors == [] and len(browser.opened) == 1
    asked = entra.authorizations[0]
    assert f"{ORG}/.default" in asked["scope"].split()
    assert asked["redirect_uri"].startswith("http://localhost:")
    assert asked["code_challenge_method"] == "S256"  # PKCE: the fake checks the verifier
    assert entra.grant_types == ["authorization_code"]
    assert stat.S_IMODE(os.stat(tmp_path / "cache.json").st_mode) == 0o600

    def no_browser(url, *args, **kwargs):
        raise AssertionError("the second session should sign in silently")

    monkeypatch.setattr(webbrowser, "open", no_browser)
    assert interactive().token()
    assert entra.grants.count("authorize") == 1


def test_secrets_and_tokens_never_reach_reprs_errors_or_debug_logs(
    entra, tmp_path, empty_sandbox, caplog
):
    import logging

    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx, httpcore, msal
    issued = "issued-" + "7" * 40
    entra.access_tokens = [issued, issued]  # refused by the sandbox: a 401 after one refresh
    auth = secret_auth(entra, tmp_path)
    with Dataverse(empty_sandbox.url, auth=auth) as conn:
        with pytest.raises(Unauthorized) as info:
            conn.whoami()
        shown = [str(info.value), repr(info.value), repr(conn), repr(conn.tokens), caplog.text]
    cache = (tmp_path / "cache.json").read_text()
    assert issued in cache  # the token did travel (to the 0600 cache file) ...
    for text in shown:  # ... but never to anything a person or a log collector sees
        assert issued not in text and entra.client_secret not in text


def test_connect_signs_in_by_device_code_or_by_a_secret_dict(entra, tmp_path, empty_sandbox):
    from d365nb.client.api import connect

    entra.access_token = empty_sandbox.token
    to_entra = {
        "authority_host": entra.authority,
        "http_client": entra.http_client(),
        "cache_path": tmp_path / "cache.json",
    }
    prompts = []
    with connect(
        empty_sandbox.url,
        auth="device_code",
        device_code_callback=prompts.append,
        tenant_id="tid",
        **to_entra,
    ) as conn:
        assert conn.whoami()["UserId"]
    assert [p.user_code for p in prompts] == ["ABCD-1234"]
    secret = {"tenant_id": "tid", "client_id": "app-id", "client_secret": entra.client_secret}
    with connect(empty_sandbox.url, auth=secret, **to_entra) as conn:
        assert conn.whoami()["UserId"]
        assert entra.client_secret not in repr(conn) + repr(conn.tokens)
    assert entra.grant_types == [
        "urn:ietf:params:oauth:grant-type:device_code",
        "client_credentials",
    ]


def test_the_async_connection_also_refreshes_once_on_a_401(entra, tmp_path, empty_sandbox):
    import asyncio

    from d365nb.client.api import AsyncDataverse

    entra.access_tokens = ["stale-token", empty_sandbox.token]
    auth = secret_auth(entra, tmp_path)

    async def main():
        async with AsyncDataverse(empty_sandbox.url, auth=auth) as conn:
            return await conn.whoami(), conn.requests_sent

    me, sent = asyncio.run(main())
    assert me["UserId"] and sent == 2  # refused once, then sent again with a fresh token
    assert entra.grant_types == ["client_credentials", "client_credentials"]
