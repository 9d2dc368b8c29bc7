"""``connect``, ``connections``, ``use``, ``whoami``.

Secrets: ``--token`` is never echoed; pass it as ``{variable}`` so it is not stored in the
notebook either (a literal token in the line is accepted, with a warning, and scrubbed from the
in-memory input history this magic can reach). Client secrets come only from the environment.
"""

from __future__ import annotations

import html
from argparse import Namespace
from typing import Any
from urllib.parse import urlparse

from IPython.core.error import UsageError

from d365nb.notebook.values import interpolate


def device_code_bundle(prompt: Any) -> dict[str, str]:
    """The device-code prompt as a MIME bundle: a clickable link and the code (HTML), or text."""
    url, code = prompt.verification_uri, prompt.user_code
    link = html.escape(url, quote=True)
    return {
        "text/html": f'To sign in, open <a href="{link}" target="_blank">{link}</a> '
        f"and enter the code <b><code>{html.escape(code)}</code></b>",
        "text/plain": f"To sign in, open {url} and enter the code {code}",
    }


def _show_device_code(prompt: Any) -> None:
    from IPython.display import display

    display(device_code_bundle(prompt), raw=True)


def _scrub_history(magic: Any, secret: str) -> None:
    """Replace a literal secret in the input history lists this kernel keeps in memory."""
    shell = magic.shell
    if shell is None or not secret:
        return
    manager = getattr(shell, "history_manager", None)
    lists = [shell.user_ns.get("In"), shell.user_ns.get("_ih")]
    if manager is not None:
        lists += [manager.input_hist_parsed, manager.input_hist_raw]
    for entries in lists:
        if isinstance(entries, list):
            for i, entry in enumerate(entries):
                if isinstance(entry, str) and secret in entry:
                    entries[i] = entry.replace(secret, "***")
    if manager is not None:
        cache = getattr(manager, "db_input_cache", None)
        if isinstance(cache, list):
            for i, row in enumerate(cache):
                cache[i] = tuple(x.replace(secret, "***") if isinstance(x, str) else x for x in row)
    for key in ("_i", "_ii", "_iii"):
        value = shell.user_ns.get(key)
        if isinstance(value, str) and secret in value:
            shell.user_ns[key] = value.replace(secret, "***")


def _auth_options(options: Namespace) -> dict[str, Any]:
    """connect() keyword arguments for the sign-in the options ask for.

    Default (no flag): client secret from the environment if set, else a device code shown as
    a link and code in the notebook.
    """
    kwargs: dict[str, Any] = {"device_code_callback": _show_device_code}
    if options.client_id:
        kwargs["client_id"] = options.client_id
    if options.tenant:
        kwargs["tenant_id"] = options.tenant
    if options.interactive:
        kwargs["auth"] = "interactive"
    elif options.device_code:
        kwargs["auth"] = "device_code"
    return kwargs


def cmd_connect(magic: Any, options: Namespace, cell: str | None) -> None:
    """Open a connection, register it under its alias and make it current."""
    import d365nb

    raw_token = options.token
    target = interpolate(options.target, magic.namespace)
    token = interpolate(raw_token, magic.namespace) if raw_token else None
    if raw_token and "{" not in raw_token:
        _scrub_history(magic, raw_token)
        print(
            "d365nb: a literal --token stays in the notebook source; "
            "prefer --token {variable} (the token is not shown here)"
        )
    kwargs: dict[str, Any] = {}
    if options.verify:
        kwargs["verify"] = interpolate(options.verify, magic.namespace)
    if target.lower() == "sandbox":
        if options.data:
            kwargs["sandbox_options"] = {"data": options.data}
        conn = d365nb.connect("sandbox", alias=options.alias, **kwargs)
    else:
        if options.data:
            raise UsageError("%d365 connect: --data applies to the sandbox only")
        parsed = urlparse(target)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(
                f"%d365 connect: {target!r} is not 'sandbox' or an org URL "
                "(e.g. https://contoso.crm.dynamics.com)"
            )
        kwargs = {**magic.connect_options, **kwargs}
        if token:
            kwargs["token"] = token
        else:
            kwargs.update(_auth_options(options))
        conn = d365nb.connect(target, alias=options.alias, **kwargs)
        try:
            conn.whoami()  # sign in now (a device code shows in this cell) and check the URL
        except BaseException:
            from d365nb.client.registry import connections

            connections.remove(conn)
            conn.close()
            raise
    print(f"connected to {_display_url(conn)} as {conn.alias!r}")


def _display_url(conn: Any) -> str:
    url = str(getattr(conn, "url", "") or "")
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}" if parsed.netloc else url


def cmd_connections(magic: Any, options: Namespace, cell: str | None) -> Any:
    """Open connections as a small DataFrame (alias, url, current)."""
    import pandas as pd

    from d365nb.client.registry import connections

    current = connections.current
    rows = [
        {"alias": alias, "url": _display_url(conn), "current": conn is current}
        for alias, conn in connections.items()
    ]
    if not rows:
        print("no connections; run %d365 connect sandbox (or an org URL)")
        return None
    return pd.DataFrame(rows).set_index("alias")


def cmd_use(magic: Any, options: Namespace, cell: str | None) -> None:
    """Make another connection current."""
    from d365nb.client.registry import connections

    alias = interpolate(options.alias, magic.namespace)
    magic.connection(alias)  # one-line error with suggestions when unknown
    connections.use(alias)
    print(f"using {alias!r}")


def cmd_whoami(magic: Any, options: Namespace, cell: str | None) -> Any:
    """WhoAmI (user, business unit, organisation ids) as a one-column DataFrame."""
    import pandas as pd

    conn = magic.connection()
    info = conn.whoami()
    frame = pd.DataFrame({"value": pd.Series(info, dtype="string")})
    frame.index.name = getattr(conn, "alias", None) or "whoami"
    return frame
