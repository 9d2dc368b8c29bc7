"""``connect``, ``connections``, ``use``, ``whoami``.

Secrets: ``--token`` is never echoed and must be passed as ``{variable}``. A token typed
literally would be saved with the notebook, where the kernel cannot reach it, so it is refused
(and scrubbed from the kernel's input history, see ``notebook.history``). Client secrets come
only from the environment.
"""

from __future__ import annotations

import html
from argparse import Namespace
from typing import Any
from urllib.parse import urlparse

from IPython.core.error import UsageError

from d365nb.notebook.history import scrub
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


def _already_open(alias: str | None, target: str) -> Any:
    """The open connection named ``alias`` when it is to ``target`` (re-running a connect cell
    is then a no-op, and flows holding it keep working); None when the alias is free.

    The same alias for another target is refused: the client would quietly pick ``alias2``.
    """
    from d365nb.client.registry import connections

    conn = connections.get(alias) if alias else None
    if conn is None:
        return None
    if target.lower() == "sandbox":
        same = getattr(conn, "sandbox", None) is not None
    else:
        wanted = urlparse(target)
        same = _display_url(conn).lower() == f"{wanted.scheme}://{wanted.netloc}".lower()
    if not same:
        raise UsageError(
            f"%d365 connect: {alias!r} is already open to {_display_url(conn)}; "
            "pick another --alias (or close that connection first)"
        )
    return conn


def _sign_in_flags(options: Namespace) -> list[str]:
    """The Entra ID sign-in options given on the line (they need an org URL and no token)."""
    given = {
        "--client-id": options.client_id,
        "--tenant": options.tenant,
        "--device-code": options.device_code,
        "--interactive": options.interactive,
    }
    return [flag for flag, value in given.items() if value]


def cmd_connect(magic: Any, options: Namespace, cell: str | None) -> None:
    """Open a connection, register it under its alias and make it current."""
    import d365nb
    from d365nb.client.registry import connections

    raw_token = options.token
    if raw_token and "{" not in raw_token:
        scrub(magic.shell, raw_token)
        raise UsageError(
            "%d365 connect: a literal --token would be saved in the notebook; put it in a "
            "variable and pass --token {variable} (nothing was connected; the token was "
            "removed from this kernel's input history)"
        )
    target = interpolate(options.target, magic.namespace)
    token = interpolate(raw_token, magic.namespace) if raw_token else None
    existing = _already_open(options.alias, target)
    if existing is not None:
        connections.use(options.alias)
        print(f"already connected to {_display_url(existing)} as {options.alias!r} (now current)")
        return
    kwargs: dict[str, Any] = {}
    if options.verify:
        kwargs["verify"] = interpolate(options.verify, magic.namespace)
    sign_in = _sign_in_flags(options)
    if target.lower() == "sandbox":
        if sign_in or raw_token:
            flags = ", ".join(sign_in + (["--token"] if raw_token else []))
            raise UsageError(
                f"%d365 connect sandbox: {flags} apply to an org URL; the sandbox signs itself in"
            )
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
            if sign_in:
                raise UsageError(
                    f"%d365 connect: --token replaces sign-in; drop {', '.join(sign_in)}"
                )
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
