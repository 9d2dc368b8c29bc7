"""Tab completion for ``%d365``: commands, options, tables, columns, choice labels, flow names.

Answers come only from what is already in memory: the current connection's metadata cache
(``cached_table_names``/``cached_columns``/``cached``) and the flows defined in this kernel. A
keystroke never sends a request and never imports pandas, httpx or the flow engine (flow
commands read `d365nb.flows.definitions`, which is data only).

IPython merges every matcher's answers (Python names from Jedi, file names, ...). The d365
matcher is an IPython 8 ``context_matcher`` that claims a ``%d365`` line (and the body of a
``%%d365 list`` query cell): it answers with ``suppress=True``, so only its candidates are
offered, and names the fragment they replace (``matched_fragment``). Candidates are unique,
ranked (names starting with the typed text first, then names containing it) and at most
:data:`LIMIT`.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from d365nb.client.names import lookup_base
from d365nb.notebook.args import COMMANDS, QUERY_CELLS

__all__ = ["candidates", "complete", "install", "uninstall", "LIMIT"]

LIMIT = 50
_TABLE_COMMANDS = {"list", "get", "create", "update", "delete", "describe", "changes", "aggregate"}
_COLUMN_OPTIONS = {"--select", "--orderby", "--groupby"}
_FILTER_OPTIONS = {"--filter", "--where"}
_OPERATORS = ["eq", "ne", "gt", "ge", "lt", "le"]
_JOINERS = ["and", "or", "not"]
# Flow verbs, trigger kinds and options come from `d365nb.flows.definitions` (data only: it
# loads no engine, no pandas, no httpx), read when a flow command is completed.
_MAGIC_RE = re.compile(r"^\s*%{1,2}d365\b")
_CELL_RE = re.compile(r"^\s*%%d365\b")
_KEYS = ("%d365", "%%d365")
# Where a completed name starts: after a space, a quote, a comma, "=", "(" or "/".
_FRAGMENT_RE = re.compile(r"[^\s\"',=(/]*$")


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


def _column_meta(meta: Any, table: str, column: str) -> Any:
    cached = getattr(meta, "cached", None)
    table_meta = cached(table) if callable(cached) and table else None
    return getattr(table_meta, "columns", {}).get(column) if table_meta is not None else None


def _flow_names() -> list[str]:
    module = sys.modules.get("d365nb.flows.flow")
    return sorted(getattr(module, "flows", {}) or {})


def _choice_labels(meta: Any, table: str, column: str, quote: str = "") -> list[str]:
    col = _column_meta(meta, table, column)
    labels = [str(label) for label in (getattr(col, "options", None) or {}).values()]
    if quote:
        return [f"{quote}{label}{quote}" for label in labels]
    return [f'"{label}"' if " " in label else label for label in labels]


def rank(names: list[str], fragment: str, exclude: set[str] | frozenset = frozenset()) -> list[str]:
    """Unique names matching ``fragment``: those starting with it (in the given order), then
    those containing it; at most :data:`LIMIT`."""
    low = fragment.lower()
    seen: set[str] = set(exclude)
    starts: list[str] = []
    contains: list[str] = []
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        key = name.lower().lstrip("\"'")
        if key.startswith(low):
            starts.append(name)
        elif low and low in key:
            contains.append(name)
    return (starts + contains)[:LIMIT]


def _fragment(text: str) -> str:
    match = _FRAGMENT_RE.search(text)
    return match.group() if match else ""


def _filter_candidates(meta: Any, table: str, text: str) -> list[str]:
    """Inside filter text: a column, then an operator, then (for a choice) its labels."""
    before = text[: len(text) - len(_fragment(text))]
    tokens = re.findall(r"'(?:[^']|'')*'|[\w./]+|\S", before)
    last = tokens[-1] if tokens else ""
    if last.lower() in _OPERATORS and len(tokens) >= 2:
        return _choice_labels(meta, table, tokens[-2], quote="'")
    columns = _columns(meta, table)
    if last in columns or lookup_base(last) is not None:
        return _OPERATORS
    if last and (last.startswith("'") or last[0].isdigit() or last in ("null", "true", "false")):
        return _JOINERS
    return columns


def candidates(line: str, meta: Any = None, body: str | None = None) -> list[str]:
    """Every completion for the text before the cursor (``line`` starts with ``%d365``), not yet
    narrowed to the fragment being typed (see :func:`complete`). ``body`` is the text of a
    ``%%d365`` cell before the cursor when the cursor is below the first line."""
    text = _MAGIC_RE.sub("", line, count=1)
    words, open_option, ends_blank = _words(text)
    partial = "" if ends_blank else (words[-1] if words else "")
    done = words if ends_blank else words[:-1]
    if body is not None:  # a query cell's body is its filter (and option lines)
        if not done or done[0] not in QUERY_CELLS or len(words) < 2:
            return []
        return _filter_candidates(meta, words[1], body)
    if not done:
        return list(COMMANDS)
    command = done[0]
    spec = COMMANDS.get(command)
    if spec is None:
        return []
    if command == "flow":
        from d365nb.flows import definitions

        if len(done) == 1:
            return list(definitions.FLOW_VERBS)
        if len(done) == 2:
            return _flow_names()
        verb = done[1]
        options = definitions.EXPORT_OPTIONS if verb == "export" else definitions.FLOW_OPTIONS
        flags = [o.flag for o in options if not o.verbs or verb in o.verbs]
        return flags if partial.startswith("-") else []
    if command in ("action", "trigger") and len(done) == 1:
        return _flow_names()
    if command == "action":
        from d365nb.flows import definitions

        flags = definitions.option_flags(definitions.ACTION_OPTIONS)
        return flags if partial.startswith("-") or (len(done) > 2 and not partial) else []
    if command == "trigger":
        return _trigger(done, partial, open_option, meta, text)
    if command == "help" and len(done) == 1:
        from d365nb.notebook.args import TOPICS

        return [*COMMANDS, *TOPICS]
    if command == "use" and len(done) == 1:
        registry = sys.modules.get("d365nb.client.registry")
        conns = getattr(registry, "connections", None)
        return [alias for alias, _ in conns.items()] if conns is not None else []
    if command not in _TABLE_COMMANDS:
        return _options(spec) if partial.startswith("-") or not partial else []
    if len(done) == 1:
        return _tables(meta)
    table = done[1]
    previous = done[-1]
    if open_option in _FILTER_OPTIONS:
        return _filter_candidates(meta, table, text)
    if previous in _FILTER_OPTIONS:
        return _columns(meta, table) if not partial.startswith("-") else _options(spec)
    if open_option in _COLUMN_OPTIONS or previous in _COLUMN_OPTIONS:
        if open_option == "--orderby" and text.rstrip() != text:
            return ["asc", "desc"]
        return _columns(meta, table)
    if partial.startswith("-"):
        return _options(spec)
    if command in ("create", "update") and "=" in partial:
        column = partial.split("=", 1)[0]
        return _choice_labels(meta, table, column)
    if command in ("create", "update"):
        return [f"{column}=" for column in _columns(meta, table)]
    return _options(spec) if not partial else []


def _trigger(
    done: list[str], partial: str, open_option: str | None, meta: Any, text: str
) -> list[str]:
    """``trigger <flow> created|updated|deleted <table> [--filter F] [--select a,b] ...``."""
    from d365nb.flows import definitions

    if len(done) == 2:
        return list(definitions.TRIGGER_KINDS)
    if len(done) == 3:
        return _tables(meta)
    table, previous = done[3], done[-1]
    if open_option in _FILTER_OPTIONS:
        return _filter_candidates(meta, table, text)
    column_options = definitions.column_flags(definitions.TRIGGER_OPTIONS)
    if open_option in column_options or previous in column_options | {"--filter"}:
        return _columns(meta, table)
    # Options some kinds take and others not (each kind lists its own): only the typed kind's.
    by_kind = set().union(*(k.options for k in definitions.TRIGGER_KINDS.values()))
    kind = definitions.TRIGGER_KINDS.get(done[2])
    flags = [
        o.flag
        for o in definitions.TRIGGER_OPTIONS
        if kind is None or o.flag in kind.options or o.flag not in by_kind
    ]
    return flags if partial.startswith("-") or not partial else []


def _options(spec: Any) -> list[str]:
    parser = spec.parser
    if parser is None:
        return []
    return [
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]


def _already_listed(line: str) -> set[str]:
    """Columns already in the ``--select``/``--groupby`` list being typed (no duplicates)."""
    match = re.search(r"--(?:select|groupby)[ =]+[\"']?([\w,]*),[\w]*$", line)
    return set(match.group(1).split(",")) if match else set()


def complete(text_until_cursor: str, full_text: str | None = None) -> tuple[str, list[str]]:
    """(fragment replaced, ranked candidates) for the cursor at the end of ``text_until_cursor``
    (all the cell's text up to the cursor); ``("", [])`` when it is not a ``%d365`` line."""
    lines = text_until_cursor.split("\n")
    first, current = lines[0], lines[-1]
    body = None
    if len(lines) > 1:
        if not _CELL_RE.match(first):
            return "", []
        if current.lstrip().startswith("-"):  # an option line of a query cell
            current, body = first + " " + current, None
        else:
            body = "\n".join(lines[1:])
    elif not _MAGIC_RE.match(current):
        return "", []
    found = candidates(current if body is None else first, _metadata(), body=body)
    fragment = _fragment(body if body is not None else current)
    return fragment, rank(found, fragment, _already_listed(current))


def _matcher(context: Any) -> dict[str, Any]:
    """IPython 8 context matcher: the d365 candidates only, or nothing for other code."""
    from IPython.core.completer import SimpleCompletion

    lines = context.full_text.split("\n")
    # cursor_position counts within the cursor's line (cursor_line).
    before = "\n".join([*lines[: context.cursor_line], context.text_until_cursor])
    fragment, found = complete(before)
    if not _MAGIC_RE.match(lines[0] if context.cursor_line else context.text_until_cursor):
        return {"completions": [], "suppress": False}
    return {
        "completions": [SimpleCompletion(name, type="d365") for name in found],
        "suppress": True,
        "matched_fragment": fragment,
        "ordered": True,
    }


_matcher.matcher_api_version = 2  # type: ignore[attr-defined]
_matcher.matcher_priority = 100  # type: ignore[attr-defined] - before Python names


def install(ip: Any, magic: Any) -> None:
    """Register the completer for ``%d365`` and ``%%d365`` (replacing an earlier one)."""
    completer = getattr(ip, "Completer", None)
    if completer is None:
        return
    uninstall(ip)
    completer.custom_matchers.insert(0, _matcher)


def uninstall(ip: Any) -> None:
    """Remove the completer (``%unload_ext``)."""
    completer = getattr(ip, "Completer", None)
    if completer is None:
        return
    completer.custom_matchers[:] = [m for m in completer.custom_matchers if m is not _matcher]
