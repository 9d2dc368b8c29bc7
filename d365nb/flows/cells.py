"""Flow cells: ``%d365 trigger``, ``%%d365 action`` and ``%%d365 scope`` lines, parsed and
applied to the flows registry. The kernel's magics (`d365nb.notebook.flow_commands`) and the
headless runner (`d365nb.flows.headless`) both go through these, so a flow built from a notebook
is the same flow - same definition, same checkpoint signature - wherever it is built.

``env`` is what a cell needs from its host: ``connection(alias)``, ``namespace`` (the
notebook's globals, for Python steps) and ``interpolate(text, odata=False)`` (``{expr}`` in a
trigger's --filter; headless there are no notebook variables).
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from d365nb.flows import definitions
from d365nb.flows.flow import Flow, flows, get_flow
from d365nb.flows.model import FlowError

__all__ = ["Parser", "split", "trigger", "action", "scope"]


class Parser(argparse.ArgumentParser):
    """argparse that raises a one-line FlowError instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise FlowError(f"{self.prog}: {message} (usage: {self.format_usage().strip()[7:]})")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message, end="")
        raise FlowError(f"{self.prog}: see the help above")


def split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as err:
        raise FlowError(f"cannot read the command line: {err}") from None


def _parser(prog: str, options: tuple[definitions.Option, ...], **words: dict[str, Any]) -> Parser:
    """A flow cell's parser: its positional words in order (name -> argparse keywords), then
    the options its `definitions` table declares."""
    p = Parser(prog=prog, add_help=False, allow_abbrev=False)
    for name, keywords in words.items():
        p.add_argument(name, **keywords)
    definitions.add_options(p, options)
    return p


# -- %d365 trigger ----------------------------------------------------------------------------
def trigger_parser() -> Parser:
    return _parser(
        "%d365 trigger",
        definitions.TRIGGER_OPTIONS,
        flow={"help": "flow name (created on first use)"},
        kind={"choices": tuple(definitions.TRIGGER_KINDS), "help": "what to react to"},
        table={"help": "table to watch (logical or entity-set name)"},
    )


def trigger(env: Any, line: str) -> Any:
    """``%d365 trigger <flow> created|updated|deleted <table> --every 10s [--filter F]
    [--select cols] [--columns cols] [--since now|beginning|ISO] [--orderby "col desc"]
    [--top N] [--concurrency N]``.

    Re-running the cell redefines the trigger and keeps the flow's steps.
    """
    args = trigger_parser().parse_args(split(line))
    trigger_options(args)  # an option of another kind: refused before anything changes
    if args.concurrency is not None and args.concurrency < 1:
        raise FlowError(f"bad --concurrency {args.concurrency}: use 1 or more")
    conn = env.connection(args.connection)
    existing = flows.get(args.flow)
    # Bad input must change nothing: the trigger is checked on a detached flow first, so a
    # typo neither registers a flow nor stops or redefines the one already running.
    target = Flow(
        args.flow,
        conn,
        concurrency=args.concurrency or (existing.concurrency if existing else 1),
        self_trigger=args.self_trigger,
        history=existing.history if existing else None,
        register=False,
    )
    _set_trigger(target, args, env.interpolate(args.filter, odata=True) if args.filter else None)
    if existing is not None and existing.conn is conn:
        existing.concurrency = target.concurrency
        existing.self_trigger = target.self_trigger
        existing.set_trigger(target.trigger)  # type: ignore[arg-type]
        target = existing
    else:
        if existing is not None:  # another connection: keep the steps written so far
            existing.stop()
            for step in existing.steps:
                target._steps[step.name] = step
        target.register()
    print(
        f"flow {target.name}: {target.trigger.describe()}; "  # type: ignore[union-attr]
        f"{len(target.steps)} step(s); {target.state.lower()}"
    )
    return None


# The options only some trigger kinds take (`TriggerKind.options`); the rest apply to all.
_KIND_OPTIONS = frozenset(f for k in definitions.TRIGGER_KINDS.values() for f in k.options)


def trigger_options(args: argparse.Namespace) -> dict[str, Any]:
    """The kind-specific options given, as keywords of the kind's `Flow` method; one another
    kind takes (``--columns`` on created, ``--filter`` on deleted) raises `FlowError`. Read
    from `definitions.TRIGGER_KINDS`, so a new kind needs no code here."""
    kind = definitions.TRIGGER_KINDS[args.kind]
    given: dict[str, Any] = {}
    for option in definitions.TRIGGER_OPTIONS:
        value = getattr(args, option.name)
        if option.flag not in _KIND_OPTIONS or value is None or value == option.default:
            continue
        if option.flag not in kind.options:
            takes = ", ".join(kind.options) or "no table options"
            raise FlowError(
                f"{option.flag} cannot be used with a {kind.name} trigger (it takes {takes})"
            )
        given[option.name] = value
    return given


def _set_trigger(target: Flow, args: argparse.Namespace, filter_text: str | None) -> None:
    given = trigger_options(args)
    if "filter" in given:
        given["filter"] = filter_text  # interpolated
    method = getattr(target, definitions.TRIGGER_KINDS[args.kind].method)
    method(args.table, every=args.every, since=args.since, **given)


# -- %%d365 action ----------------------------------------------------------------------------
def action_parser() -> Parser:
    return _parser(
        "%%d365 action",
        definitions.ACTION_OPTIONS,
        flow={"help": "flow name (declare its trigger first)"},
        step={"help": "step name; re-running the cell replaces the step"},
    )


def action(env: Any, line: str, cell: str | None, connection: Any = None) -> Any:
    """``%%d365 action <flow> <step> [--if EXPR [--else STEP]] [--after step[:status]]...
    [--foreach ITEMS [--concurrency N]] [--retry P] [--timeout T]`` with the step's
    Python (or one declarative command) as the cell body. Re-running replaces the step.
    ``connection(alias)`` resolves a declarative step's ``--alias`` (default: as ``%d365``)."""
    args = action_parser().parse_args(split(line))
    target = get_flow(args.flow)
    if args.remove:
        target.remove_step(args.step)
        print(f"flow {target.name}: step {args.step} removed")
        return None
    if cell is None or not cell.strip():
        raise FlowError(f"%%d365 action {args.flow} {args.step} needs a cell body: the step's code")
    target.step(
        args.step,
        cell,
        when=args.when,
        retry=args.retry,
        timeout=args.timeout,
        namespace=env.namespace,
        connection=connection or env.connection,  # a declarative step's --alias
        after=args.after,
        foreach=args.foreach,
        concurrency=args.concurrency,
        otherwise=args.otherwise,
    )
    names = [s.name for s in target.steps]
    print(
        f"flow {target.name}: step {names.index(args.step) + 1}/{len(names)} {args.step} "
        f"({target._steps[args.step].kind})"
    )
    return None


# -- %%d365 scope ----------------------------------------------------------------------------
def scope_parser() -> Parser:
    return _parser(
        "%%d365 scope",
        definitions.SCOPE_OPTIONS,
        flow={"help": "flow name"},
        scope={"help": "scope name; re-running the cell replaces the scope"},
    )


def scope(env: Any, line: str, cell: str | None) -> Any:
    """``%%d365 scope <flow> <name> [--after step[:status]]`` with the scope's step names as
    the cell body (one per line, or comma separated): they run as one block (Logic Apps'
    Scope); ``--after <name>:failed`` on a later step catches a failure of any of them."""
    args = scope_parser().parse_args(split(line))
    target = get_flow(args.flow)
    if args.remove:
        if args.scope not in {s.name for s in target.scopes}:
            raise FlowError(f"flow {target.name!r} has no scope {args.scope!r}")
        target._scopes.pop(args.scope)
        target._save()
        print(f"flow {target.name}: scope {args.scope} removed")
        return None
    names = [n for line_ in (cell or "").splitlines() for n in line_.replace(",", " ").split()]
    if not names:
        raise FlowError(
            f"%%d365 scope {args.flow} {args.scope} needs its steps as the cell body, one per line"
        )
    target.scope(args.scope, names, after=args.after)
    print(f"flow {target.name}: scope {args.scope} ({', '.join(names)})")
    return None
