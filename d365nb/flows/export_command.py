"""``%d365 flow export <flow> --to logicapp [-o file.json] [--arm] [--legacy] [--org URL]
[--placeholders] [--connection oauth|service-principal]``.

Without ``-o`` the document is returned (the notebook shows it; ``x = %d365 flow export ...``
keeps it); with ``-o`` it is written as JSON and a one-line summary is printed. Warnings
(placeholders to rewrite, settings not carried over) are printed as one line each.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from d365nb.flows.definitions import EXPORT_OPTIONS, add_options
from d365nb.flows.model import FlowError

TARGETS = ("logicapp",)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise FlowError(f"%d365 flow export: {message} (usage: {self.format_usage().strip()[7:]})")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message, end="")
        raise FlowError("%d365 flow export: see the help above")


def _parser() -> _Parser:
    p = _Parser(prog="%d365 flow export", add_help=False, allow_abbrev=False)
    p.add_argument("flow", help="the flow to export")
    add_options(p, EXPORT_OPTIONS)
    return p


def export_with(flow: Any, args: argparse.Namespace, org: str | None) -> Any:
    """`export.export` with the options both command lines share (``--legacy``, ``--arm``,
    ``--placeholders``, ``--connection``) and the organisation ``org``."""
    from d365nb.flows.export import export

    return export(
        flow,
        legacy=args.legacy,
        arm=args.arm,
        org=org,
        placeholders=args.placeholders,
        connection=args.connection,
    )


def export_command(argv: list[str]) -> Any:
    """Run the export command on already split (and interpolated) words."""
    from d365nb.flows.flow import get_flow

    args = _parser().parse_args(argv)
    if args.to.lower().replace("-", "").replace("_", "") not in TARGETS:
        raise FlowError(f"cannot export to {args.to!r}: the only target is logicapp")
    flow = get_flow(args.flow)
    result = export_with(flow, args, args.org)
    for note in result.warnings:
        print(f"warning: {note}")
    if not args.out:
        return result.document
    path = Path(args.out).expanduser()
    try:
        path.write_text(json.dumps(result.document, indent=2) + "\n", encoding="utf-8")
    except OSError as err:
        raise FlowError(f"cannot write {path}: {err.strerror or err}") from None
    kind = "ARM template" if args.arm else "workflow definition"
    actions = len(result.definition["actions"])
    print(f"flow {flow.name} exported to {path} (Logic Apps {kind}, {actions} action(s))")
    return None
