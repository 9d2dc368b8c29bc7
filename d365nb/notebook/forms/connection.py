"""The connection form: org URL + auth method, a device code shown as link + code with a live
status line, and a one-click "Sandbox" button.

Signing in blocks until the person has entered the code, so it runs on a background thread and
reports through the status line; the kernel stays free. Secrets typed here (token, client secret)
live in password boxes, are handed to the client and are never echoed.
"""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as widgets

from d365nb.notebook.forms.base import Form
from d365nb.notebook.forms.render import error_line, escape, ok_line

AUTH_METHODS = [
    ("Device code (sign in in a browser)", "device_code"),
    ("Client secret (app registration)", "client_secret"),
    ("Interactive browser", "interactive"),
    ("Access token", "token"),
]


class ConnectionForm(Form):
    """Connect to an org or to the embedded sandbox; ``result`` = the connection.

    ``auth_options`` go to the client's auth classes (e.g. ``authority_host``, ``cache_path``).
    """

    kind = "connection"

    title = "Connect to Dynamics 365"

    def __init__(self, alias: str | None = None, **auth_options: Any) -> None:
        super().__init__()
        self.alias = alias
        self.auth_options = auth_options
        self.url = widgets.Text(
            description="Org URL",
            placeholder="https://contoso.crm.dynamics.com",
            layout=widgets.Layout(width="460px"),
        )
        self.method = widgets.Dropdown(
            options=AUTH_METHODS, description="Sign in", layout=widgets.Layout(width="460px")
        )
        self.tenant = widgets.Text(description="Tenant id")
        self.client_id = widgets.Text(description="Client id")
        self.secret = widgets.Password(description="Secret")
        self.token = widgets.Password(description="Token")
        self.extra = widgets.VBox()
        self.connect_button = widgets.Button(
            description="Connect", button_style="primary", icon="plug"
        )
        self.sandbox_button = widgets.Button(
            description="Sandbox", icon="flask", tooltip="start the embedded sandbox with demo data"
        )
        self.sandbox_button.add_class("d365nb-sandbox")
        self.prompt = widgets.HTML()
        self.prompt.add_class("d365nb-device-code")
        self.method.observe(lambda _c: self._method_changed(), "value")
        self.connect_button.on_click(lambda _b: self.connect())
        self.sandbox_button.on_click(lambda _b: self.connect_sandbox())
        self._thread: threading.Thread | None = None
        self._method_changed()
        self._assemble(
            self.url,
            self.method,
            self.extra,
            widgets.HBox([self.connect_button, self.sandbox_button]),
            self.prompt,
        )

    def _method_changed(self) -> None:
        extra = {"client_secret": [self.tenant, self.client_id, self.secret], "token": [self.token]}
        self.extra.children = tuple(extra.get(self.method.value, []))

    # -- status ------------------------------------------------------------------------------
    def set_status(self, text: str) -> None:
        self.status.value = f"<span class='d365nb-progress'>⏳ {escape(text)}</span>"

    def show_device_code(self, prompt: Any) -> None:
        """Show a device-code prompt (``user_code``, ``verification_uri``) as a link and the code."""
        uri = escape(prompt.verification_uri)
        self.prompt.value = (
            f"<div style='padding:6px;border:1px solid #90caf9;background:#e3f2fd'>"
            f"Open <a href='{uri}' target='_blank' rel='noopener'>{uri}</a> and enter the code "
            f"<code style='font-size:1.3em' class='d365nb-user-code'>{escape(prompt.user_code)}</code></div>"
        )
        self.set_status("waiting for you to sign in…")

    # -- connecting --------------------------------------------------------------------------
    def _auth(self) -> Any:
        from d365nb.client import auth

        url = self.url.value.strip()
        method = self.method.value
        if method == "device_code":
            return auth.DeviceCodeAuth(url, callback=self.show_device_code, **self.auth_options)
        if method == "interactive":
            return auth.InteractiveAuth(url, **self.auth_options)
        if method == "client_secret":
            if self.tenant.value and self.client_id.value and self.secret.value:
                return auth.ClientSecretAuth(
                    url,
                    self.tenant.value.strip(),
                    self.client_id.value.strip(),
                    self.secret.value,
                    **self.auth_options,
                )
            from_env = auth.auth_from_env(url, **self.auth_options)
            if from_env is None:
                raise ValueError(
                    "enter tenant id, client id and secret (or set AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET)"
                )
            return from_env
        if not self.token.value:
            raise ValueError("enter an access token")
        return auth.StaticToken(self.token.value)

    def connect(self) -> None:
        """Start signing in to the org URL in the background (status shown live)."""
        url = self.url.value.strip()
        if not url.startswith(("https://", "http://")):
            self.show_error("enter the org URL, e.g. https://contoso.crm.dynamics.com")
            return
        try:
            auth = self._auth()
        except ValueError as err:
            self.show_error(err)
            return
        finally:
            # The auth object holds them now; an empty box cannot leak into saved widget state.
            self.secret.value = self.token.value = ""
        self.set_status(f"connecting to {url}…")
        self._start(lambda: _connect(url, auth=auth, **self._alias()))

    def connect_sandbox(self) -> None:
        """Start the embedded sandbox (demo data) and connect to it, in the background."""
        self.set_status("starting the sandbox…")
        self._start(lambda: _connect("sandbox", **self._alias()))

    def _alias(self) -> dict[str, str]:
        return {"alias": self.alias} if self.alias else {}

    def _start(self, make: Any) -> None:
        if self._thread is not None and self._thread.is_alive():
            self.show_error("already connecting; wait for it to finish")
            return
        self.connect_button.disabled = self.sandbox_button.disabled = True
        self._thread = threading.Thread(
            target=self._run, args=(make,), daemon=True, name="d365nb-connect"
        )
        self._thread.start()

    def _run(self, make: Any) -> None:
        try:
            conn = make()
            who = conn.whoami()  # proves the sign-in worked
            _register(conn, self.alias)
        except Exception as err:  # the status line, not a traceback on a background thread
            self.status.value = error_line(err)
        else:
            self.result = conn
            self.prompt.value = ""
            self.status.value = ok_line(
                f"connected to {_where(conn)} as user {who.get('UserId', '?')}"
            )
        finally:
            self.connect_button.disabled = self.sandbox_button.disabled = False

    def wait(self, timeout: float = 60.0) -> Any:
        """Wait for a connection attempt to finish; return the connection (or None)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.result

    def _fallback_body(self) -> str:
        return "<p>Run the cell in a notebook with widgets, or use <code>%d365 connect sandbox</code>.</p>"


def _connect(target: str, **kwargs: Any) -> Any:
    import d365nb

    return d365nb.connect(target, **kwargs)


def _register(conn: Any, alias: str | None) -> None:
    """Make the new connection current (the client may already have registered it)."""
    from d365nb.client.registry import connections

    for name, existing in connections.items():
        if existing is conn:
            connections.use(name)
            return
    connections.add(conn, alias or getattr(conn, "alias", None) or "default")
    connections.use(alias or getattr(conn, "alias", None) or "default")


def _where(conn: Any) -> str:
    return str(getattr(conn, "url", "") or "the org")
