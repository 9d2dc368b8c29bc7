"""The connection form: org URL + auth method, a device code shown as link + code with a live
status line, and a one-click "Sandbox" button.

Signing in blocks until the person has entered the code, so it runs on a background thread and
reports through the status line; the kernel stays free. Secrets typed here (token, client secret)
live in password boxes, are handed to the client and are never echoed.
"""

from __future__ import annotations

import threading
import time
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
    tick_seconds = 1.0  # how often the waiting line counts on while the person signs in

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
        # Set when an attempt ends; the lock keeps a late countdown tick from overwriting the
        # final "connected"/error line.
        self._done = threading.Event()
        self._status_lock = threading.Lock()
        self._method_changed()
        self._assemble(
            self.url,
            self.method,
            self.extra,
            widgets.HBox([self.connect_button, self.sandbox_button]),
            self.prompt,
        )

    def _method_changed(self) -> None:
        # A person signing in may still need their own tenant or app registration (optional);
        # an app signing in needs all three.
        signing_in = [self.tenant, self.client_id]
        extra = {
            "device_code": signing_in,
            "interactive": signing_in,
            "client_secret": [self.tenant, self.client_id, self.secret],
            "token": [self.token],
        }
        self.extra.children = tuple(extra.get(self.method.value, []))
        optional = self.method.value in ("device_code", "interactive")
        self.tenant.placeholder = "organizations (optional)" if optional else "tenant GUID"
        self.client_id.placeholder = "d365nb's public client (optional)" if optional else ""

    def _person_options(self) -> dict[str, Any]:
        """``auth_options`` plus the tenant / client id typed for a person's sign-in."""
        options = dict(self.auth_options)
        if self.tenant.value.strip():
            options["tenant_id"] = self.tenant.value.strip()
        if self.client_id.value.strip():
            options["client_id"] = self.client_id.value.strip()
        return options

    # -- status ------------------------------------------------------------------------------
    def set_status(self, text: str) -> None:
        """Show a progress line (``⏳ text``)."""
        self.status.value = f"<span class='d365nb-progress'>⏳ {escape(text)}</span>"

    def show_device_code(self, prompt: Any) -> None:
        """Show a device-code prompt (``user_code``, ``verification_uri``) as a link and the code,
        with a status line that counts on (time waited, time left) until the sign-in ends."""
        uri = escape(prompt.verification_uri)
        self.prompt.value = (
            f"<div style='padding:6px;border:1px solid #90caf9;background:#e3f2fd'>"
            f"Open <a href='{uri}' target='_blank' rel='noopener'>{uri}</a> and enter the code "
            f"<code style='font-size:1.3em' class='d365nb-user-code'>{escape(prompt.user_code)}</code></div>"
        )
        started = time.monotonic()
        expires_in = getattr(prompt, "expires_in", None)
        done = self._done

        def tick() -> None:
            while True:
                with self._status_lock:
                    if done.is_set():
                        return
                    self.set_status(_waiting_line(time.monotonic() - started, expires_in))
                if done.wait(self.tick_seconds):
                    return

        threading.Thread(target=tick, daemon=True, name="d365nb-device-code-status").start()

    # -- connecting --------------------------------------------------------------------------
    def _auth(self) -> Any:
        from d365nb.client import auth

        url = self.url.value.strip()
        method = self.method.value
        if method == "device_code":
            return auth.DeviceCodeAuth(
                url, callback=self.show_device_code, **self._person_options()
            )
        if method == "interactive":
            return auth.InteractiveAuth(url, **self._person_options())
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
        self._done = threading.Event()
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
            final = error_line(err)
        else:
            self.result = conn
            final = ok_line(f"connected to {_where(conn)} as user {who.get('UserId', '?')}")
        with self._status_lock:
            self._done.set()
            self.prompt.value = ""  # a used or failed device code is of no further use
            self.status.value = final
        self.connect_button.disabled = self.sandbox_button.disabled = False

    def wait(self, timeout: float = 60.0) -> Any:
        """Wait for a connection attempt to finish; return the connection (or None)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.result

    def _fallback_body(self) -> str:
        return "<p>Run the cell in a notebook with widgets, or use <code>%d365 connect sandbox</code>.</p>"


def _waiting_line(waited: float, expires_in: float | None) -> str:
    """ "waiting for you to sign in… 0:42 (the code expires in 14:18)"."""
    line = f"waiting for you to sign in… {_clock(waited)}"
    if expires_in:
        left = expires_in - waited
        line += (
            f" (the code expires in {_clock(left)})"
            if left > 0
            else " (the code has expired: click Connect for a new one)"
        )
    return line


def _clock(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def _connect(target: str, **kwargs: Any) -> Any:
    from d365nb.client.api import connect

    return connect(target, **kwargs)


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
