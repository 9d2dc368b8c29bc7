"""``%d365 trigger``, ``%%d365 action`` and ``%d365 flow ...``: flows from notebook cells.

The magics dispatcher calls `trigger(magic, line)`, `action(magic, line, cell)` and
`flow(magic, line)`. Errors a user can fix are `FlowError` (a ValueError): the dispatcher shows
them as one line. Nothing here starts a flow unless asked to.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from d365nb.flows import Flow, FlowError, definitions, flows, get_flow
from d365nb.flows.flow import history_for
from d365nb.flows.history import DEFAULT_PATH

__all__ = ["trigger", "action", "scope", "flow"]

FLOW_VERBS = tuple(definitions.FLOW_VERBS)
_NEEDS_NAME = tuple(v.name for v in definitions.FLOW_VERBS.values() if v.needs == "flow")


class _Parser(argparse.ArgumentParser):
    """argparse that raises a one-line FlowError instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise FlowError(f"{self.prog}: {message} (usage: {self.format_usage().strip()[7:]})")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message, end="")
        raise FlowError(f"{self.prog}: see the help above")


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as err:
        raise FlowError(f"cannot read the command line: {err}") from None


def _interpolate(magic: Any, text: str | None, odata: bool = False) -> str | None:
    if not text:
        return text
    from d365nb.notebook import values

    if odata:
        return values.interpolate_filter(text, magic.namespace)
    return values.interpolate(text, magic.namespace)


# -- %d365 trigger ----------------------------------------------------------------------------
def _trigger_parser() -> _Parser:
    p = _Parser(prog="%d365 trigger", add_help=False, allow_abbrev=False)
    p.add_argument("flow", help="flow name (created on first use)")
    p.add_argument("kind", choices=tuple(definitions.TRIGGER_KINDS), help="what to react to")
    p.add_argument("table", help="table to watch (logical or entity-set name)")
    definitions.add_options(p, definitions.TRIGGER_OPTIONS)
    return p


def trigger(magic: Any, line: str) -> Any:
    """``%d365 trigger <flow> created|updated|deleted <table> --every 10s [--filter F]
    [--select cols] [--columns cols] [--since now|beginning|ISO] [--orderby "col desc"]
    [--top N] [--concurrency N]``.

    Re-running the cell redefines the trigger and keeps the flow's steps.
    """
    args = _trigger_parser().parse_args(_split(line))
    if args.columns and args.kind != "updated":
        raise FlowError("--columns only applies to updated triggers")
    if args.kind == "deleted" and args.filter:
        raise FlowError(
            "--filter cannot be used with a deleted trigger (deleted records have no columns)"
        )
    if args.concurrency is not None and args.concurrency < 1:
        raise FlowError(f"bad --concurrency {args.concurrency}: use 1 or more")
    conn = magic.connection(args.connection)
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
    _set_trigger(target, args, _interpolate(magic, args.filter, odata=True))
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


def _set_trigger(target: Flow, args: argparse.Namespace, filter_text: str | None) -> None:
    if args.kind == "deleted":
        if args.orderby or args.top:
            raise FlowError("--orderby and --top cannot be used with a deleted trigger")
        target.on_deleted(args.table, every=args.every, since=args.since)
        return
    define = target.on_updated if args.kind == "updated" else target.on_created
    extra = {"columns": args.columns} if args.kind == "updated" else {}
    define(
        args.table,
        every=args.every,
        filter=filter_text,
        select=args.select,
        since=args.since,
        mode=args.mode,
        orderby=args.orderby,
        top=args.top,
        **extra,
    )


# -- %%d365 action ----------------------------------------------------------------------------
def _action_parser() -> _Parser:
    p = _Parser(prog="%%d365 action", add_help=False, allow_abbrev=False)
    p.add_argument("flow", help="flow name (declare its trigger first)")
    p.add_argument("step", help="step name; re-running the cell replaces the step")
    definitions.add_options(p, definitions.ACTION_OPTIONS)
    return p


def action(magic: Any, line: str, cell: str | None, connection: Any = None) -> Any:
    """``%%d365 action <flow> <step> [--if EXPR [--else STEP]] [--after step[:status]]...
    [--foreach ITEMS [--concurrency N]] [--retry P] [--timeout T]`` with the step's
    Python (or one declarative command) as the cell body. Re-running replaces the step.
    ``connection(alias)`` resolves a declarative step's ``--alias`` (default: as ``%d365``)."""
    args = _action_parser().parse_args(_split(line))
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
        namespace=magic.namespace,
        connection=connection or magic.connection,  # a declarative step's --alias
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
def _scope_parser() -> _Parser:
    p = _Parser(prog="%%d365 scope", add_help=False, allow_abbrev=False)
    p.add_argument("flow", help="flow name")
    p.add_argument("scope", help="scope name; re-running the cell replaces the scope")
    definitions.add_options(p, definitions.SCOPE_OPTIONS)
    return p


def scope(magic: Any, line: str, cell: str | None) -> Any:
    """``%%d365 scope <flow> <name> [--after step[:status]]`` with the scope's step names as
    the cell body (one per line, or comma separated): they run as one block (Logic Apps'
    Scope); ``--after <name>:failed`` on a later step catches a failure of any of them."""
    args = _scope_parser().parse_args(_split(line))
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


# -- %d365 flow ...----------------------------------------------------------------------------
def _flow_parser() -> _Parser:
    p = _Parser(prog="%d365 flow", add_help=False, allow_abbrev=False)
    p.add_argument("verb", choices=FLOW_VERBS, help="what to do (export takes the options below)")
    p.add_argument("target", nargs="?", help="flow name, or run id for run/resubmit")
    definitions.add_options(p, definitions.FLOW_OPTIONS)
    return p


def flow(magic: Any, line: str) -> Any:
    """``%d365 flow start|stop|pause|resume|status|steps|runs|run <id>|resubmit <id>|test
    [--record <id>]|list|delete|output|poll <flow>``."""
    words = _split(line)
    if words[:1] == ["export"]:  # its own options (--to, -o file, --arm, --legacy, --org)
        from d365nb.flows.export_command import export_command

        return export_command([_interpolate(magic, w) or w for w in words[1:]])
    args = _flow_parser().parse_args(words)
    args.target = _interpolate(magic, args.target)  # `flow run {run_id}`
    verb = args.verb
    if verb in _NEEDS_NAME and not args.target:
        raise FlowError(
            f"%d365 flow {verb} needs a flow name, e.g. %d365 flow {verb} lead_followup"
        )
    if definitions.FLOW_VERBS[verb].needs == "run" and not args.target:
        raise FlowError(f"%d365 flow {verb} needs a run id (see %d365 flow runs <flow>)")
    misplaced = definitions.misplaced(verb, args)
    if misplaced:
        raise FlowError(misplaced)
    result = _FLOW_VERBS[verb](magic, args)
    if args.out and result is not None:
        magic.namespace[args.out] = result
        return None
    return result


def _start(magic: Any, args: argparse.Namespace) -> Any:
    target = _flow(magic, args.target).start(from_=args.from_)
    print(f"flow {target.name} started: {target.trigger.describe()}")  # type: ignore[union-attr]
    _show_output(target)
    return target.status()


def _show_output(target: Flow) -> None:
    """Put the flow's own output area under this cell: step prints land there, not elsewhere."""
    if target.output.widget is not None:
        from IPython.display import display

        display(target.output.widget)


def _simple(verb: str) -> Any:
    def run(magic: Any, args: argparse.Namespace) -> None:
        target = get_flow(args.target)
        getattr(target, verb)()
        print(f"flow {target.name}: {target.state.lower()}")

    return run


def _status(magic: Any, args: argparse.Namespace) -> Any:
    return _flow(magic, args.target).status()


def _steps(magic: Any, args: argparse.Namespace) -> Any:
    import pandas as pd

    target = _flow(magic, args.target)
    rows = [
        {
            "step": s.name,
            "kind": s.kind,
            "if": s.when,
            "retry": s.retry.type,
            "retries": s.retry.retries,
            "timeout": s.timeout,
            "source": s.source,
        }
        for s in target.steps
    ]
    return pd.DataFrame(
        rows, columns=["step", "kind", "if", "retry", "retries", "timeout", "source"]
    )


def _runs(magic: Any, args: argparse.Namespace) -> Any:
    return _flow(magic, args.target).runs(limit=args.top, all_orgs=args.all_orgs)


def _stored() -> Any:
    """The flow store beside the notebook, if there is one (a lookup never creates it)."""
    beside = Path.cwd() / DEFAULT_PATH
    return history_for(beside) if beside.is_file() else None


def _flow(magic: Any, name: str) -> Flow:
    """The flow called ``name``: defined in this kernel, or stored beside the notebook (after a
    kernel restart), rebuilt on the current connection with its checkpoint and history."""
    if name in flows:
        return flows[name]
    store = _stored()
    if store is not None and name in store.flow_names():
        return Flow.load(name, magic.connection(None), history=store)
    return get_flow(name)  # the one-line "unknown flow" error


def _find_run(magic: Any, run_id: str) -> Flow:
    """The flow a run belongs to (run ids are unique across flows)."""
    histories = {id(f.history): f.history for f in flows.values()}
    beside = Path.cwd() / DEFAULT_PATH  # runs of flows not defined in this kernel (yet)
    if beside.is_file():  # a lookup must not create the store
        histories.setdefault(0, history_for(beside))
    for history in histories.values():
        data = history.run(run_id)
        if data is not None:
            return _flow(magic, data["flow"])
    raise FlowError(f"no run {run_id!r}; see %d365 flow runs <flow> for run ids")


def _run(magic: Any, args: argparse.Namespace) -> Any:
    return _find_run(magic, args.target).run(args.target)


def _resubmit(magic: Any, args: argparse.Namespace) -> Any:
    return _find_run(magic, args.target).resubmit(args.target, wait=not args.no_wait)


def _test(magic: Any, args: argparse.Namespace) -> Any:
    record = _interpolate(magic, args.record)
    if getattr(args, "dry_run", False):
        return _flow(magic, args.target).test(record, dry_run=True)
    return _flow(magic, args.target).test(record)


def _list(magic: Any, args: argparse.Namespace) -> Any:
    import pandas as pd

    rows = []
    for f in flows.values():
        data = f.status_data(backlog=False)
        rows.append(
            {
                "flow": f.name,
                "state": data["state"],
                "trigger": data["trigger"],
                "steps": len(f.steps),
                "succeeded": data["succeeded"],
                "failed": data["failed"],
                "last_poll": data["last_poll"],
            }
        )
    store = _stored()
    for name in store.flow_names() if store is not None else []:
        if name in flows:
            continue
        # Stored beside the notebook but not defined in this kernel (yet): after a restart.
        definition = store.flow_definition(name) or {}
        counts = store.counts(name)
        checks = store.checks(name, 1)
        trigger = definition.get("trigger") or {}
        rows.append(
            {
                "flow": name,
                "state": "Stored",
                "trigger": f"{trigger.get('kind', '?')} {trigger.get('table', '?')}",
                "steps": len(definition.get("steps", [])),
                "succeeded": counts.get("Succeeded", 0),
                "failed": counts.get("Failed", 0),
                "last_poll": checks[0]["at"] if checks else None,
            }
        )
    return pd.DataFrame(
        rows, columns=["flow", "state", "trigger", "steps", "succeeded", "failed", "last_poll"]
    )


def _delete(magic: Any, args: argparse.Namespace) -> None:
    target = _flow(magic, args.target)
    target.delete()
    print(f"flow {target.name} deleted (with its run history)")


def _output(magic: Any, args: argparse.Namespace) -> None:
    target = get_flow(args.target)
    if target.output.widget is None:
        print(f"flow {target.name}: no widget output here; step output is in %d365 flow run <id>")
    _show_output(target)


def _poll(magic: Any, args: argparse.Namespace) -> None:
    get_flow(args.target).poll_now()


def _export(magic: Any, args: argparse.Namespace) -> Any:
    target = get_flow(args.target)
    exporter = getattr(target, "to_logic_app", None)
    if exporter is None:
        raise FlowError("export is not available in this install")
    return exporter()


_FLOW_VERBS = {
    "start": _start,
    "stop": _simple("stop"),
    "pause": _simple("pause"),
    "resume": _simple("resume"),
    "status": _status,
    "steps": _steps,
    "runs": _runs,
    "run": _run,
    "resubmit": _resubmit,
    "test": _test,
    "list": _list,
    "delete": _delete,
    "output": _output,
    "poll": _poll,
    "export": _export,
}
