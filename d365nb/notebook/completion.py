"""Tab completion for ``%d365``: commands, options, tables, columns, choice labels, flow names.

Answers come only from what is already in memory: the current connection's metadata cache
(``cached_table_names``/``cached_columns``) and the flows defined in this kernel. A keystroke
never sends a request and never imports pandas, httpx or the flows package.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from d365nb.notebook.args import COMMANDS

__all__ = ["candidates", "complete", "install", "uninstall"]

_TABLE_COMMANDS = {"list", "get", "create", "update", "delete", "describe", "changes"}
_COLUMN_OPTIONS = {"--select", "--orderby"}
_FILTER_OPTIONS = {"--filter", "--where"}
_FLOW_VERBS = ["start", "stop", "pause", "resume", "status", "runs", "run", "resubmit", "test",
               "export", "list", "delete"]  # fmt: skip
_ODATA_WORDS = ["eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "null", "true", "false",
                "contains(", "startswith(", "endswith("]  # fmt: skip
# The trigger's own parser lives in flow_commands (not imported for completion).
_TRIGGER_KINDS = ("created", "updated", "deleted")
_TRIGGER_COLUMN_OPTIONS = {"--select", "--columns"}
_TRIGGER_OPTIONS = ("--every", "--filter", "--select", "--columns", "--since", "--mode",
                    "--concurrency", "--self-trigger", "--connection")  # fmt: skip
_MAGIC_RE = re.compile(r"^\s*%{0,2}d365\b")
_KEYS = ("%d365", "%%d365")


def _words(text: str) -> tuple[list[str], str | None, bool]:
    """Shell-like words of ``text``; the open quote's option (if the cursor is inside quotes)
    and whether the text ends in whitespace (a new word is starting)."""
    words: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
            else:
                current.append(ch)
        elif ch in "\"'":
            quote = ch
        elif ch.isspace():
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(ch)
    ends_blank = not current and quote is None and (not text or text[-1].isspace())
    if current or quote:
        words.append("".join(current))
    open_option = words[-2] if quote and len(words) >= 2 else None
    return words, open_option, ends_blank


def _metadata() -> Any:
    """The current connection's metadata cache, if a connection exists (no import, no I/O)."""
    registry = sys.modules.get("d365nb.client.registry")
    conn = getattr(getattr(registry, "connections", None), "current", None)
    return getattr(conn, "metadata", None)


def _tables(meta: Any) -> list[str]:
    return list(meta.cached_table_names()) if meta is not None else []


def _columns(meta: Any, table: str) -> list[str]:
    return list(meta.cached_columns(table)) if meta is not None and table else []


def _flow_names() -> list[str]:
    module = sys.modules.get("d365nb.flows.flow")
    return sorted(getattr(module, "flows", {}) or {})


def _choice_labels(meta: Any, table: str, column: str) -> list[str]:
    cached = getattr(meta, "cached", None)
    table_meta = cached(table) if callable(cached) and table else None
    col = getattr(table_meta, "columns", {}).get(column) if table_meta is not None else None
    labels = [str(label) for label in (getattr(col, "options", None) or {}).values()]
    return [f'"{label}"' if " " in label else label for label in labels]


def candidates(line: str, meta: Any = None) -> list[str]:
    """Completions for the text before the cursor (``line`` starts with ``%d365``)."""
    text = _MAGIC_RE.sub("", line, count=1)
    words, open_option, ends_blank = _words(text)
    # The word being typed: "" when a new word starts.
    partial = "" if ends_blank else (words[-1] if words else "")
    done = words if ends_blank else words[:-1]
    if not done:
        return [name for name in COMMANDS if name.startswith(partial)]
    command = done[0]
    spec = COMMANDS.get(command)
    if spec is None:
        return []
    if command in ("flow",):
        if len(done) == 1:
            module = sys.modules.get("d365nb.notebook.flow_commands")
            return list(getattr(module, "FLOW_VERBS", _FLOW_VERBS))
        return _flow_names() if len(done) == 2 else []
    if command in ("action", "trigger") and len(done) == 1:
        return _flow_names()
    if command == "trigger":
        return _trigger(done, partial, open_option, meta)
    if command == "help" and len(done) == 1:
        return list(COMMANDS)
    if command == "use" and len(done) == 1:
        registry = sys.modules.get("d365nb.client.registry")
        conns = getattr(registry, "connections", None)
        return [alias for alias, _ in conns.items()] if conns is not None else []
    if command not in _TABLE_COMMANDS:
        return _options(spec, partial)
    if len(done) == 1:
        return _tables(meta)
    table = done[1]
    previous = done[-1] if done else ""
    if open_option in _FILTER_OPTIONS:
        return _columns(meta, table) + _ODATA_WORDS
    if open_option in _COLUMN_OPTIONS or (previous in _COLUMN_OPTIONS and not ends_blank):
        return _columns(meta, table) + (["asc", "desc"] if open_option == "--orderby" else [])
    if previous in _COLUMN_OPTIONS or previous in _FILTER_OPTIONS:
        return _columns(meta, table)
    if partial.startswith("-"):
        return _options(spec, partial)
    if command in ("create", "update") and "=" in partial:
        column = partial.split("=", 1)[0]
        return _choice_labels(meta, table, column)
    if command in ("create", "update"):
        return [f"{column}=" for column in _columns(meta, table)]
    return _options(spec, partial)


def _trigger(done: list[str], partial: str, open_option: str | None, meta: Any) -> list[str]:
    """``trigger <flow> created|updated|deleted <table> [--filter F] [--select a,b] ...``."""
    if len(done) == 2:
        return list(_TRIGGER_KINDS)
    if len(done) == 3:
        return _tables(meta)
    table, previous = done[3], done[-1]
    if open_option in _FILTER_OPTIONS:
        return _columns(meta, table) + _ODATA_WORDS
    if open_option in _TRIGGER_COLUMN_OPTIONS or previous in _TRIGGER_COLUMN_OPTIONS | {"--filter"}:
        return _columns(meta, table)
    return list(_TRIGGER_OPTIONS) if partial.startswith("-") or not partial else []


def _options(spec: Any, partial: str) -> list[str]:
    parser = spec.parser
    if parser is None:
        return []
    return [
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]


def complete(magic: Any, event: Any) -> list[str]:
    """IPython ``complete_command`` hook: completions for ``event.text_until_cursor``.

    IPython splits the token under the cursor at delimiters (space, ``= , ( "``) and keeps the
    answers that start with it, so answers are whole names (``statuscode=New`` -> ``New``).
    """
    text = getattr(event, "text_until_cursor", None) or getattr(event, "line", "")
    # Only the first line of a cell magic carries the command.
    text = text.splitlines()[-1] if text else ""
    if not _MAGIC_RE.match(text):
        return []
    return candidates(text, _metadata())


def install(ip: Any, magic: Any) -> None:
    """Register the completer for ``%d365`` and ``%%d365``."""

    def hook(_self: Any, event: Any) -> list[str]:
        return complete(magic, event)

    for key in _KEYS:
        ip.set_hook("complete_command", hook, str_key=key)


def uninstall(ip: Any) -> None:
    """Remove the completer (``%unload_ext``)."""
    dispatcher = getattr(ip, "strdispatchers", {}).get("complete_command")
    if dispatcher is None:
        return
    for key in _KEYS:
        dispatcher.strs.pop(key, None)
