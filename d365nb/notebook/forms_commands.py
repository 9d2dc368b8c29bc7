"""``%d365 form <operation> [table] [--alias A] [-o name]``: show a form for an operation.

Operations: ``list [table]``, ``get|create|update|delete <table>``, ``connect``,
``flow <flow name>`` (diagram + run history) and ``action <flow name> <table>`` (a create step
with dynamic content). ``-o name`` also stores the form in the notebook namespace so
``name.result`` can be read after clicking.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

USAGE = "usage: %d365 form {list,get,create,update,delete,connect,flow,action} [table|flow] [table] [--alias A] [-o name]"


class FormUsageError(ValueError):
    """A bad ``%d365 form`` line; its message is one line with the usage."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="%d365 form", add_help=False, exit_on_error=False)
    parser.add_argument("operation")
    parser.add_argument("args", nargs="*")
    parser.add_argument("--alias", default=None)
    parser.add_argument("-o", "--out", default=None)
    return parser


def parse(line: str) -> argparse.Namespace:
    """Parse a ``form`` line (with or without the leading word ``form``)."""
    words = shlex.split(line)
    if words[:1] == ["form"]:
        words = words[1:]
    if not words:
        raise FormUsageError(USAGE)
    try:
        args, unknown = _parser().parse_known_args(words)
    except (argparse.ArgumentError, SystemExit) as err:
        raise FormUsageError(f"{err}; {USAGE}") from None
    if unknown:
        raise FormUsageError(f"unknown option {unknown[0]!r}; {USAGE}")
    return args


def build(args: argparse.Namespace, conn_for: Any) -> Any:
    """The form an argument set describes; ``conn_for(alias)`` returns a connection."""
    from d365nb.notebook import forms

    op, rest = args.operation, args.args
    most = {"connect": 0, "connection": 0, "flow": 1, "action": 2}.get(op, 1)
    if len(rest) > most:  # a stray word is a typo to report, not something to drop silently
        raise FormUsageError(f"too many arguments: {' '.join(rest)}; {USAGE}")
    if op in ("connect", "connection"):
        return forms.ConnectionForm(alias=args.alias)
    if op in ("flow", "action"):
        if not rest:
            raise FormUsageError(f"`form {op}` needs a flow name; {USAGE}")
        flow = _find_flow(rest[0])
        if op == "flow":
            return forms.FlowView(flow)
        if len(rest) < 2:
            raise FormUsageError(
                f"`form action {rest[0]}` needs the table to create in, e.g. tasks"
            )
        return forms.ActionForm(flow, rest[1], conn_for(args.alias))
    if op not in forms.OPERATIONS:
        raise FormUsageError(f"unknown form {op!r}; {USAGE}")
    table = rest[0] if rest else None
    return forms.form(op, table, conn_for(args.alias))


def _find_flow(name: str) -> Any:
    from d365nb.flows import get_flow

    try:
        return get_flow(name)
    except ValueError as err:  # FlowError: its message already lists the defined flows
        raise FormUsageError(str(err)) from None


def form(magic: Any, line: str) -> None:
    """Entry point for the ``%d365`` dispatcher: build the form and display it."""
    from IPython.display import display

    args = parse(line)

    def conn_for(alias: str | None) -> Any:
        return magic.connection(alias) if alias else magic.connection()

    built = build(args, conn_for)
    if args.out:
        magic.shell.user_ns[args.out] = built
    display(built)
