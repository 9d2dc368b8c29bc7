"""``%d365`` / ``%%d365``: the magic class, its options and the command dispatcher.

The first word of the line selects a command (see ``args.COMMANDS``); the rest is parsed by
that command's argparse declaration and handed to a function in ``commands/``. ``trigger``,
``action`` and ``flow`` are dispatched to ``notebook.flow_commands``, ``form`` to
``notebook.forms_commands`` (they parse their own arguments).

IPython's ``$var``/``{var}`` expansion is off (``no_var_expand``): ``$`` belongs to OData and
``{expr}`` is interpreted by d365nb itself, quoting values for filters.
"""

from __future__ import annotations

import importlib
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Bool, Dict, Float, Int, TraitError, Unicode, observe, validate

from d365nb.client.names import closest
from d365nb.notebook import args as _args

__all__ = ["D365Magic"]

# Commands implemented outside this package: name -> (module, function, takes a cell).
EXTERNAL = {
    "trigger": ("d365nb.notebook.flow_commands", "trigger", False),
    "action": ("d365nb.notebook.flow_commands", "action", True),
    "scope": ("d365nb.notebook.flow_commands", "scope", True),
    "flow": ("d365nb.notebook.flow_commands", "flow", False),
    "form": ("d365nb.notebook.forms_commands", "form", False),
}
_UNAVAILABLE = {"d365nb.notebook.flow_commands": "flows", "d365nb.notebook.forms_commands": "forms"}


@magics_class
class D365Magic(Magics):
    """Dynamics 365 / Dataverse from a notebook: ``%d365 <command> [arguments]``."""

    page_size = Int(
        5000, config=True, help="Rows per page asked of the server (Prefer: odata.maxpagesize)."
    )
    max_pages = Int(
        0,
        config=True,
        help="Pages `list` reads without --all/--pages (0 = every page, as d365.list does); "
        "a cut result says so with the count.",
    )
    display_limit = Int(20, config=True, help="Rows shown when a DataFrame result is displayed.")
    show_progress = Bool(
        True, config=True, help="Show a progress bar for reads and bulk writes that take long."
    )
    progress_after = Float(
        1.0, config=True, help="Seconds a read or bulk write must last before a bar appears."
    )
    preview_rows = Int(10, config=True, help="Rows of the preview shown by --where without --yes.")
    default_alias = Unicode(
        "", config=True, help="Connection used when none is named ('' = the current one)."
    )
    short_errors = Bool(
        True, config=True, help="Errors as one line; False shows the full Python traceback."
    )
    debug = Bool(
        False, config=True, help="Add the failed request (token redacted) to error messages."
    )
    labels = Bool(False, config=True, help="`list` shows choice labels by default.")
    tz = Unicode(
        "UTC",
        config=True,
        help="Time zone of datetimes in results: UTC, local, naive (UTC wall time, no zone; "
        "exports to Excel) or a zone name such as Europe/Paris. --tz overrides it.",
    )
    connect_options = Dict(
        config=True,
        help="Extra keyword arguments for d365nb.connect() when connecting to an org URL "
        "(e.g. cache_path, timeout, authority_host).",
    )

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.change_tokens: dict[tuple[str, str], str] = {}  # (alias, table) -> last delta token
        self._secrets: set[str] = set()  # tokens given to connect: masked in any error line

    @validate("connect_options")
    def _no_secrets_in_options(self, proposal: Any) -> dict:
        # Options are shown by %config D365Magic and may sit in a committed pyproject.toml:
        # secrets come from the environment (AZURE_CLIENT_SECRET) or --token {variable}.
        found = sorted(_secret_keys(proposal["value"]))
        if found:
            raise TraitError(
                f"connect_options must not hold secrets ({', '.join(found)}): set "
                "AZURE_CLIENT_SECRET in the environment or use --token {variable}"
            )
        return proposal["value"]

    @observe("display_limit")
    def _display_limit_changed(self, change: Any) -> None:
        from d365nb.notebook.display import set_display_limit

        set_display_limit(change["new"])

    # -- helpers other command modules reuse ------------------------------------------------------

    @property
    def namespace(self) -> dict[str, Any]:
        """The user namespace ``{expr}`` is evaluated in."""
        return self.shell.user_ns if self.shell is not None else {}

    def connection(self, alias: str | None = None) -> Any:
        """The connection named ``alias``, else ``default_alias``, else the current one.

        Raises a one-line ``UsageError`` when there is none.
        """
        from d365nb.client.registry import connections

        wanted = alias or self.default_alias or None
        if wanted:
            conn = connections.get(wanted)
            if conn is not None:
                return conn
            names = [name for name, _ in connections.items()]
            hint = closest(wanted, names)
            more = f" Did you mean {', '.join(hint)}?" if hint else ""
            known = f" Open: {', '.join(names)}." if names else ""
            raise UsageError(f"%d365: no connection {wanted!r}.{more}{known}")
        current = connections.current
        if current is None:
            raise UsageError(
                "%d365: not connected; run %d365 connect sandbox (or an org URL) first"
            )
        return current

    def error_line(self, exc: BaseException) -> str:
        """The one-line (or, with ``debug``, two-line) rendering of an error."""
        from d365nb.notebook.error_lines import render_error

        return render_error(exc, debug=self.debug, secrets=tuple(self._secrets))

    def remember_secret(self, secret: Any) -> None:
        """A token this kernel was given: never shown, even if a service echoes it back."""
        if isinstance(secret, str) and secret.strip():
            self._secrets.add(secret.strip())

    # -- the magic ----------------------------------------------------------------------------

    @no_var_expand
    @line_cell_magic
    def d365(self, line: str = "", cell: str | None = None) -> Any:
        words = line.strip().split(None, 1)
        if not words:
            print(_args.help_text())
            return None
        name, rest = words[0], (words[1] if len(words) > 1 else "")
        try:
            return self._dispatch(name, rest, cell)
        except _args.HelpShown:
            return None
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - user errors become one line, see short_errors
            if not self._is_user_error(exc) or not self.short_errors:
                raise
            line = self.error_line(exc)
            # Say which command failed, as argparse errors do ("%d365 list: ..."); flow and form
            # commands word their own messages.
            if name not in EXTERNAL and not line.startswith(("%d365", "%%d365")):
                line = f"%d365 {name}: {line}"
            raise UsageError(line) from None

    def _dispatch(self, name: str, rest: str, cell: str | None) -> Any:
        if name in ("-h", "--help", "help") and not rest.strip():
            print(_args.help_text())
            return None
        command = _args.COMMANDS.get(name)
        if command is None:
            hint = closest(name, tuple(_args.COMMANDS))
            more = f" Did you mean: {', '.join(hint)}?" if hint else ""
            raise UsageError(f"%d365: unknown command {name!r}.{more} (%d365 help lists them)")
        if name in EXTERNAL:
            words = rest.split()
            asks_help = bool(words) and (
                words[0] in ("-h", "--help") or (name != "flow" and "--help" in words)
            )
            if asks_help:  # the declared help (with the options the flows part parses)
                print(_args.help_text(name))
                return None
            return self._external(name, rest, cell)
        if cell is not None and not command.cell:
            raise UsageError(f"%%d365 {name} takes no cell body; use the line magic %d365 {name}")
        words = _args.split_line(rest)
        if cell is not None and name in _args.QUERY_CELLS:
            words, cell = words + _args.query_cell_words(cell), None
            if words.count("--filter") > 1:
                raise UsageError(f"%%d365 {name}: give the filter once: body lines or --filter")
        options = _args.parse(name, words)
        from d365nb.notebook import commands

        return commands.run(self, name, options, cell)

    def _external(self, name: str, rest: str, cell: str | None) -> Any:
        module_name, func_name, takes_cell = EXTERNAL[name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            raise UsageError(
                f"%d365 {name}: {_UNAVAILABLE[module_name]} are not available in this install"
            ) from None
        func = getattr(module, func_name)
        if takes_cell:
            return func(self, rest, cell)
        if cell is not None and cell.strip():
            raise UsageError(f"%%d365 {name} takes no cell body; use the line magic %d365 {name}")
        return func(self, rest)

    @staticmethod
    def _is_user_error(exc: BaseException) -> bool:
        """Errors a user can cause and fix: shown as one line, not a traceback.

        ``ValueError`` covers bad values (``values.BadValue``, the client's ``ValidationError``,
        flows' ``FlowError``); a ``KeyError``/``IndexError`` would be a bug and keeps its trace.
        """
        if isinstance(exc, ValueError):
            return True
        try:
            from d365nb.client.errors import D365Error
        except ImportError:  # pragma: no cover - the client is part of the package
            return False
        return isinstance(exc, D365Error)


_SECRET_WORDS = ("secret", "token", "password", "credential")


def _secret_keys(value: Any) -> set[str]:
    """Keys of a (nested) options dict whose name says they hold a secret."""
    if not isinstance(value, dict):
        return set()
    found = set()
    for key, item in value.items():
        if any(word in str(key).lower() for word in _SECRET_WORDS):
            found.add(str(key))
        found |= _secret_keys(item)
    return found


# %d365? shows the generated help for every command.
D365Magic.d365.__doc__ = _args.help_text()
