"""``connect``, ``connections``, ``use``, ``whoami``.

Secrets: ``--token`` is never echoed and must be passed as ``{variable}``. A token typed
literally would be saved with the notebook, where the kernel cannot reach it, so it is refused
(and scrubbed from the kernel's input history, see ``notebook.history``). Client secrets come
only from the environment.
"""

from __future__ import annotations

import contextlib
import html
from argparse import Namespace
from typing import Any
from urllib.parse import urlparse

from IPython.core.error import UsageError

from d365nb.notebook.history import scrub
from d365nb.notebook.values import BadValue, evaluate, interpolate


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


def _sandbox_db(handle: Any) -> str | None:
    org = getattr(handle, "org", None)
    db = (getattr(org, "config", None) or {}).get("db")
    return _resolved(db) if db else None


def _resolved(path: str) -> str:
    from pathlib import Path

    return str(Path(path).expanduser().resolve())


def publish(magic: Any, conn: Any) -> None:
    """Make the current connection the notebook's ``d365`` (the README's Python column uses
    it), unless the user keeps something else under that name."""
    ns = magic.namespace
    held = ns.get("d365")
    if held is None or type(held).__name__ in ("Dataverse", "AsyncDataverse"):
        ns["d365"] = conn


def _already_open(alias: str | None, target: str, db: str | None = None) -> Any:
    """The open connection named ``alias`` when it is to ``target`` (re-running a connect cell
    is then a no-op, and flows holding it keep working); None when the alias is free.

    The same alias for another target is refused: the client would quietly pick ``alias2``.
    """
    from d365nb.client.registry import connections

    conn = connections.get(alias) if alias else None
    if conn is None:
        return None
    if target.lower() == "sandbox":
        running = getattr(conn, "sandbox", None)
        same = running is not None and (db is None or _sandbox_db(running) == _resolved(db))
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
    from d365nb.client.api import connect
    from d365nb.client.registry import connections

    raw_token = options.token
    token = token_argument(magic, raw_token)
    target = interpolate(options.target, magic.namespace).strip()
    if options.db and target.lower() != "sandbox":
        raise UsageError("%d365 connect: --db applies to the sandbox only")
    db = interpolate(options.db, magic.namespace) if options.db else None
    # Re-running `connect sandbox` reuses the sandbox this kernel already runs (same alias).
    alias = options.alias or ("sandbox" if target.lower() == "sandbox" else None)
    existing = _already_open(alias, target, db)
    if existing is not None:
        connections.use(alias)
        publish(magic, existing)
        print(f"already connected to {_display_url(existing)} as {alias!r} (now current)")
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
        sandbox_options: dict[str, Any] = {}
        if options.data:
            sandbox_options["data"] = options.data
        if db:
            from pathlib import Path

            if not Path(db).expanduser().resolve().parent.is_dir():
                raise UsageError(f"%d365 connect sandbox: --db {db}: the folder does not exist")
            sandbox_options["db"] = _resolved(db)
        if sandbox_options:
            kwargs["sandbox_options"] = sandbox_options
        conn = connect("sandbox", alias=options.alias, **kwargs)
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
        if token is not None:
            magic.remember_secret(token)
        from d365nb.client.api import Dataverse

        # Registered only once signed in: a refused connect leaves the current connection as
        # it was (it must never fall back to another open org, where the next write would go).
        conn = Dataverse(target, alias=options.alias, **kwargs)
        try:
            conn.whoami()  # sign in now (a device code shows in this cell) and check the URL
        except BaseException:
            conn.close()
            raise
        connections.add(conn, conn.alias)
    publish(magic, conn)
    _warm_table_names(conn)
    kept = f" · data kept in {db}" if db else ""
    print(f"connected to {_display_url(conn)} as {conn.alias!r} · d365 is this connection{kept}")


_LITERAL_TOKEN = (
    "%d365 connect: --token takes a variable, not the token itself: it would be saved in the "
    "notebook; pass it as a variable, --token {{variable}} (nothing was connected{scrubbed})"
)


def _braced(raw: str) -> str | None:
    """The expression of a word that is exactly one ``{expr}``, else None."""
    text = raw.strip()
    if len(text) < 3 or text[0] != "{" or text[-1] != "}" or text.startswith("{{"):
        return None
    depth = 0
    for i, ch in enumerate(text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth == 0 and i != len(text) - 1:
            return None  # "{a}{b}" or "{a}x}": more than one expression
    return text[1:-1].strip() or None


def _is_literal(expr: str) -> bool:
    """True when ``expr`` names no variable: ``{"eyJ..."}``, ``{'a' + 'b'}``, unparsable text."""
    import ast

    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError):
        return True
    return not any(isinstance(node, ast.Name) for node in ast.walk(tree))


def _literal_texts(expr: str) -> set[str]:
    """The string constants of ``expr`` (the history keeps a parsed copy with quotes escaped,
    so the typed text itself may not be found there)."""
    import ast

    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError):
        return set()
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def _scrub_token(magic: Any, raw: str, expr: str | None) -> None:
    secrets = {raw.strip()}
    if expr:
        secrets |= {expr, expr.strip("'\"")} | _literal_texts(expr)
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            scrub(magic.shell, secret, only_with="--token")


def token_argument(magic: Any, raw: str | None) -> Any:
    """The value of ``--token {variable}``, or None without ``--token``.

    Anything else - a literal token, quoted or braced (``{"eyJ..."}``), or text around the
    braces - is refused with one line that never repeats it, and removed from the kernel's
    input history: the saved notebook would keep it where the kernel cannot reach.
    """
    if raw is None:
        return None
    expr = _braced(raw)
    if expr is None or _is_literal(expr):
        _scrub_token(magic, raw, expr)
        raise UsageError(_LITERAL_TOKEN.format(scrubbed="; it was removed from this kernel's "
                                               "input history"))  # fmt: skip
    try:
        value = evaluate(expr, magic.namespace)
    except BadValue:
        # Not a variable: most likely the token itself typed between braces.
        _scrub_token(magic, raw, expr)
        raise UsageError(
            "%d365 connect: --token {...} is not a variable of this notebook; pass it as a "
            "variable, --token {variable} (nothing was connected; the text was removed from "
            "this kernel's input history)"
        ) from None
    if callable(value) and not isinstance(value, str):
        return value
    if not isinstance(value, str) or not value.strip():
        raise UsageError(
            f"%d365 connect: --token {{{expr}}} must hold the token text (or a function "
            f"returning it), got {'blank text' if isinstance(value, str) else type(value).__name__}"
        )
    return value


def _warm_table_names(conn: Any) -> None:
    """Load the table list now (one request) so Tab after ``%d365 list `` offers tables;
    completion itself never sends a request."""
    from d365nb.client.errors import D365Error

    # On failure completion offers the tables used so far; the next command reports errors.
    with contextlib.suppress(D365Error):
        conn._run(conn.metadata.entries_op())


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
    conn = magic.connection(alias)  # one-line error with suggestions when unknown
    connections.use(alias)
    publish(magic, conn)
    print(f"using {alias!r}")


def cmd_whoami(magic: Any, options: Namespace, cell: str | None) -> Any:
    """WhoAmI (user, business unit, organisation ids) as a one-column DataFrame."""
    import pandas as pd

    conn = magic.connection()
    info = conn.whoami()
    frame = pd.DataFrame({"value": pd.Series(info, dtype="string")})
    frame.index.name = getattr(conn, "alias", None) or "whoami"
    return frame
