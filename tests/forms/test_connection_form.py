"""The connection form: Sandbox button, device code as link + code with a live status (real msal
against a loopback fake of Entra ID), and bad input refused in one line."""

from __future__ import annotations

import threading

import pytest

from d365nb.client.registry import connections
from d365nb.notebook.forms import ConnectionForm
from tests.support.forms import FAKE_AUTHORITY, FakeEntra
from tests.support.waiting import wait_for


@pytest.fixture
def restore_current():
    before = connections.current
    yield
    for name, conn in list(connections.items()):
        if conn is before:
            connections.use(name)


def test_sandbox_button_starts_a_sandbox_and_connects(restore_current):
    form = ConnectionForm(alias="forms_sandbox")
    form.sandbox_button.click()
    conn = form.wait(120)
    try:
        assert conn is not None, form.status.value
        assert "connected to" in form.status.value
        assert connections.current is conn
        assert conn.whoami()["UserId"]
        assert conn.list("leads", top=1).shape[0] == 1  # demo data
    finally:
        if conn is not None:
            conn.close()


def test_device_code_shows_link_and_code_then_connects(sandbox_handle, tmp_path, restore_current):
    entra = FakeEntra(access_token=sandbox_handle.token)
    entra.start()
    try:
        form = ConnectionForm(
            alias="forms_device",
            tenant_id="tid",
            authority_host=FAKE_AUTHORITY,
            http_client=entra.http_client(),
            cache_path=tmp_path / "tokens.json",
        )
        form.url.value = sandbox_handle.url
        form.tick_seconds = 0.05
        assert form.method.value == "device_code"
        form.connect_button.click()
        wait_for(lambda: "FORM-2468" in form.prompt.value, 30, "the device code")
        assert "href='https://microsoft.com/devicelogin'" in form.prompt.value
        first = wait_for(
            lambda: "waiting for you to sign in" in form.status.value and form.status.value,
            30,
            "the waiting line",
        )
        assert "the code expires in 1" in first  # Entra's expires_in is 900 s
        # Live: the line counts on by itself while the person signs in.
        wait_for(
            lambda: "waiting" in form.status.value and form.status.value != first,
            30,
            "the waiting line to count on",
        )
        assert form.connect_button.disabled
        wait_for(lambda: entra.polls >= 1, 30, "msal to poll")
        entra.approve()
        conn = form.wait(60)
        assert conn is not None, form.status.value
        assert "connected to" in form.status.value and form.prompt.value == ""
        wait_for(
            lambda: not any(t.name == "d365nb-device-code-status" for t in threading.enumerate()),
            10,
            "the countdown to stop",
        )
        assert "connected to" in form.status.value  # no late tick overwrote the result
        assert sandbox_handle.token not in form.status.value + form.prompt.value + repr(form)
        assert not form.connect_button.disabled
        conn.close()
    finally:
        entra.stop()


def test_missing_org_url_is_one_line_and_starts_nothing():
    form = ConnectionForm()
    form.url.value = "contoso"
    form.connect_button.click()
    assert "enter the org URL" in form.status.value
    assert form.wait(0) is None


def test_token_method_needs_a_token_and_hides_it():
    form = ConnectionForm()
    form.url.value = "https://contoso.crm.dynamics.com"
    form.method.value = "token"
    assert form.token in form.extra.children
    assert type(form.token).__name__ == "Password"
    form.connect_button.click()
    assert "enter an access token" in form.status.value


def test_a_typed_token_is_cleared_from_the_form_once_used(sandbox_handle, restore_current):
    form = ConnectionForm(alias="forms_token")
    form.url.value = sandbox_handle.url
    form.method.value = "token"
    form.token.value = sandbox_handle.token
    form.connect_button.click()
    assert form.token.value == ""  # not left in widget state a saved notebook could keep
    conn = form.wait(60)
    assert conn is not None, form.status.value
    assert sandbox_handle.token not in form.status.value + form.fallback_html() + repr(form)
    conn.close()


def test_waiting_line_counts_down_to_expiry():
    from d365nb.notebook.forms.connection import _waiting_line

    assert _waiting_line(62, 900) == "waiting for you to sign in… 1:02 (the code expires in 13:58)"
    assert "has expired: click Connect" in _waiting_line(901, 900)
    assert _waiting_line(5, None) == "waiting for you to sign in… 0:05"


def test_a_person_may_name_their_tenant_and_app_for_device_code(tmp_path):
    form = ConnectionForm(cache_path=tmp_path / "tokens.json")
    assert form.method.value == "device_code"
    assert form.tenant in form.extra.children and form.client_id in form.extra.children
    assert "optional" in form.tenant.placeholder
    form.url.value = "https://contoso.crm.dynamics.com"
    assert form._auth().client_id != "my-app-id"  # blank boxes: d365nb's public client
    form.tenant.value = "contoso.onmicrosoft.com"
    form.client_id.value = " my-app-id "
    auth = form._auth()
    assert type(auth).__name__ == "DeviceCodeAuth" and auth.client_id == "my-app-id"
    form.method.value = "interactive"
    assert form._auth().client_id == "my-app-id"
    form.method.value = "client_secret"
    assert form.secret in form.extra.children and "optional" not in form.tenant.placeholder
