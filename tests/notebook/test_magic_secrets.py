"""Tokens never reach output, history entries this kernel keeps, or error messages."""

from __future__ import annotations

from conftest import run_cell


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


def test_literal_token_is_scrubbed_from_history_and_warned_about(bare_shell, sandbox, capsys):
    from d365nb.client.registry import connections

    run_cell(bare_shell, f"%d365 connect {sandbox.url} --token {sandbox.token} --alias nblit")
    try:
        out = capsys.readouterr().out
        assert sandbox.token not in out
        assert "prefer --token {variable}" in out
        history = bare_shell.history_manager
        for entries in (
            bare_shell.user_ns["In"],
            history.input_hist_raw,
            history.input_hist_parsed,
        ):
            assert not any(sandbox.token in entry for entry in entries)
        assert any("--token ***" in entry for entry in history.input_hist_raw)
        # the connection works with the real token all the same
        frame = run_cell(bare_shell, "%d365 list leads --select lastname --top 1")
        assert len(frame) == 1
    finally:
        conn = connections.get("nblit")
        connections.remove(conn)
        conn.close()


def test_wrong_token_fails_at_connect_without_showing_it(bare_shell, sandbox):
    import pytest
    from conftest import MagicFailed

    from d365nb.client.registry import connections

    bare_shell.user_ns["bad_token"] = "not-the-token-0123456789"
    with pytest.raises(MagicFailed) as failed:
        run_cell(
            bare_shell,
            "%config D365Magic.debug = True\n"
            f"%d365 connect {sandbox.url} --token {{bad_token}} --alias nbbad",
        )
    text = str(failed.value.error)
    assert "HTTP 401" in text and "Bearer ***" in text
    assert "not-the-token-0123456789" not in text and sandbox.token not in text
    assert connections.get("nbbad") is None


def test_device_code_sign_in_shows_link_and_code_and_connects(
    bare_shell, sandbox, tmp_path, capsys
):
    from magic_entra import AUTHORITY, USER_CODE, FakeEntra

    from d365nb.client.registry import connections

    with FakeEntra(access_token=sandbox.token) as entra:
        from d365nb.notebook.extension import _LOADED

        # msal's HTTP client goes to the fake; %config would deep-copy it, so set it directly.
        msal_http = entra.http_client()
        _LOADED[id(bare_shell)].connect_options = {
            "http_client": msal_http,
            "authority_host": AUTHORITY,
            "cache_path": str(tmp_path / "cache.json"),
        }
        run_cell(bare_shell, f"%d365 connect {sandbox.url} --device-code --alias nbdevice")
        try:
            out = capsys.readouterr().out
            assert f"open https://microsoft.com/devicelogin and enter the code {USER_CODE}" in out
            assert "connected to" in out and sandbox.token not in out
            assert entra.grants[0] == "devicecode"
            frame = run_cell(bare_shell, "%d365 list leads --select lastname --top 2")
            assert len(frame) == 2
        finally:
            msal_http.close()
            conn = connections.get("nbdevice")
            if conn is not None:
                connections.remove(conn)
                conn.close()


def test_device_code_bundle_is_a_clickable_link():
    from d365nb.client.auth import DeviceCodePrompt
    from d365nb.notebook.commands.connection import device_code_bundle

    bundle = device_code_bundle(
        DeviceCodePrompt("AB-12", "https://microsoft.com/devicelogin", "To sign in...")
    )
    assert '<a href="https://microsoft.com/devicelogin" target="_blank">' in bundle["text/html"]
    assert "<code>AB-12</code>" in bundle["text/html"]
