"""Tokens never reach output, history entries this kernel keeps, or error messages."""

from __future__ import annotations

import pytest

from tests.support.shells import CellFailed, run_cell


def test_token_from_a_variable_is_never_printed(bare_shell, sandbox, capsys):
    from d365nb.client.registry import connections

    bare_shell.user_ns["secret_token"] = sandbox.token
    run_cell(
        bare_shell,
        "%d365 connect {_url} --token {secret_token} --alias nbsecret".replace(
            "{_url}", sandbox.url
        ),
    )
    try:
        out = capsys.readouterr()
        assert sandbox.token not in out.out + out.err
        assert "connected to" in out.out
        assert sandbox.token not in repr(connections.get("nbsecret"))
    finally:
        conn = connections.get("nbsecret")
        connections.remove(conn)
        conn.close()


def test_literal_token_is_refused_and_scrubbed_from_every_history(bare_shell, sandbox):

    from d365nb.client.registry import connections

    history = bare_shell.history_manager
    with pytest.raises(CellFailed) as failed:
        run_cell(bare_shell, f"%d365 connect {sandbox.url} --token {sandbox.token} --alias nblit")
    text = str(failed.value.error)
    assert "--token {variable}" in text and "nothing was connected" in text
    assert sandbox.token not in text
    assert connections.get("nblit") is None
    for entries in (bare_shell.user_ns["In"], history.input_hist_raw, history.input_hist_parsed):
        assert not any(sandbox.token in entry for entry in entries)
    assert any("--token ***" in entry for entry in history.input_hist_raw)
    inputs = {k: v for k, v in bare_shell.user_ns.items() if k.startswith("_i")}
    assert not any(sandbox.token in str(v) for v in inputs.values())
    history.writeout_cache()
    rows = history.db.execute(
        "SELECT source, source_raw FROM history WHERE session = ?", (history.session_number,)
    ).fetchall()
    assert rows and not any(sandbox.token in (a or "") + (b or "") for a, b in rows)


def test_a_literal_token_starting_with_a_dash_is_refused_the_same_way(bare_shell, sandbox):
    """Random tokens start with "-" one time in 64; argparse would take one for an option."""
    from d365nb.client.registry import connections

    token = "-" + sandbox.token[1:]
    with pytest.raises(CellFailed) as failed:
        run_cell(bare_shell, f"%d365 connect {sandbox.url} --token {token} --alias nbdash")
    text = str(failed.value.error)
    assert "--token {variable}" in text and "nothing was connected" in text
    assert token not in text and connections.get("nbdash") is None
    assert not any(token in entry for entry in bare_shell.history_manager.input_hist_raw)


def test_sandbox_refuses_sign_in_options_instead_of_ignoring_them(bare_shell, d365):

    bare_shell.user_ns["tok"] = "some-token-value"
    with pytest.raises(CellFailed, match="--device-code, --token apply to an org URL"):
        d365(bare_shell, "connect sandbox --device-code --token {tok} --alias nbsbx")
    with pytest.raises(CellFailed, match="--token replaces sign-in; drop --interactive"):
        d365(bare_shell, "connect https://contoso.crm.dynamics.com --token {tok} --interactive")


def test_wrong_token_fails_at_connect_without_showing_it(bare_shell, sandbox):

    from d365nb.client.registry import connections

    bare_shell.user_ns["bad_token"] = "not-the-token-0123456789"
    with pytest.raises(CellFailed) as failed:
        run_cell(
            bare_shell,
            "%config D365Magic.debug = True\n"
            f"%d365 connect {sandbox.url} --token {{bad_token}} --alias nbbad",
        )
    text = str(failed.value.error)
    assert "HTTP 401" in text and "Bearer ***" in text
    assert "not-the-token-0123456789" not in text and sandbox.token not in text
    assert connections.get("nbbad") is None


@pytest.fixture
def entra(bare_shell, sandbox, tmp_path):
    """A fake Entra ID issuing the sandbox's token, wired into ``%d365 connect <url>``; every
    connection opened meanwhile is closed afterwards."""
    from magic_entra import AUTHORITY, FakeEntra

    from d365nb.client.registry import connections
    from d365nb.notebook.extension import _LOADED

    before = {alias for alias, _ in connections.items()}
    with FakeEntra(access_token=sandbox.token) as fake:
        # msal's HTTP client goes to the fake; %config would deep-copy it, so set it directly.
        msal_http = fake.http_client()
        _LOADED[id(bare_shell)].connect_options = {
            "http_client": msal_http,
            "authority_host": AUTHORITY,
            "cache_path": str(tmp_path / "cache.json"),
        }
        try:
            yield fake
        finally:
            msal_http.close()
            for alias, conn in list(connections.items()):
                if alias not in before:
                    connections.remove(conn)
                    conn.close()


def test_device_code_sign_in_shows_link_and_code_and_connects(bare_shell, sandbox, entra, capsys):
    from magic_entra import USER_CODE

    run_cell(bare_shell, f"%d365 connect {sandbox.url} --device-code --alias nbdevice")
    out = capsys.readouterr().out
    assert f"open https://microsoft.com/devicelogin and enter the code {USER_CODE}" in out
    assert "connected to" in out and sandbox.token not in out
    assert entra.grants[0] == "devicecode"
    frame = run_cell(bare_shell, "%d365 list leads --select lastname --top 2")
    assert len(frame) == 2


def test_device_code_bundle_is_a_clickable_link():
    from d365nb.client.auth import DeviceCodePrompt
    from d365nb.notebook.commands.connection import device_code_bundle

    bundle = device_code_bundle(
        DeviceCodePrompt("AB-12", "https://microsoft.com/devicelogin", "To sign in...")
    )
    assert '<a href="https://microsoft.com/devicelogin" target="_blank">' in bundle["text/html"]
    assert "<code>AB-12</code>" in bundle["text/html"]


def test_client_secret_comes_from_the_environment_and_is_never_shown(
    bare_shell, sandbox, entra, capsys, monkeypatch
):
    from d365nb.client.registry import connections

    secret = "env-client-secret-5e1f0c"
    monkeypatch.setenv("AZURE_TENANT_ID", "tid")
    monkeypatch.setenv("AZURE_CLIENT_ID", "app-id")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", secret)
    run_cell(bare_shell, f"%d365 connect {sandbox.url} --alias nbenv")
    out = capsys.readouterr()
    assert entra.grant_types == ["client_credentials"]
    assert "devicecode" not in entra.grants  # no prompt: the app signs in by itself
    assert "connected to" in out.out
    for text in (out.out, out.err, repr(connections.get("nbenv"))):
        assert secret not in text and sandbox.token not in text
    assert len(run_cell(bare_shell, "%d365 list leads --select lastname --top 1")) == 1
