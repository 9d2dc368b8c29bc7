"""``%d365 trigger``, ``%%d365 action`` and ``%d365 flow ...``: flows from notebook cells.

The magics dispatcher calls `trigger(magic, line)`, `action(magic, line, cell)` and
`flow(magic, line)`. Errors a user can fix are `FlowError` (a ValueError): the dispatcher shows
them as one line. Nothing here starts a flow unless asked to.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from d365nb.flows import Flow, FlowError, cells, definitions, flows, get_flow
from d365nb.flows.flow import history_for
from d365nb.flows.history import DEFAULT_PATH
from d365nb.notebook import flow_views

__all__ = ["trigger", "action", "scope", "flow"]

FLOW_VERBS = tuple(definitions.FLOW_VERBS)
_NEEDS_NAME = tuple(v.name for v in definitions.FLOW_VERBS.values() if v.needs == "flow")


# The parser and the line splitter of every flow command (one-line FlowError, never exit).
_Parser = cells.Parser
_split = cells.split


def _interpolate(magic: Any, text: str | None, odata: bool = False) -> str | None:
    if not text:
        return text
    from d365nb.notebook import values

    if odata:
        return values.interpolate_filter(text, magic.namespace)
    return values.interpolate(text, magic.namespace)


# -- %d365 trigger / %%d365 action / %%d365 scope ------------------------------------------------
class _Cells:
    """What `d365nb.flows.cells` needs from ``%d365``: its connections, the notebook's
    namespace, and ``{expr}`` interpolation of a trigger's --filter."""

    def __init__(self, magic: Any) -> None:
        self.magic = magic

    @property
    def namespace(self) -> dict[str, Any]:
        return self.magic.namespace

    def connection(self, alias: str | None = None) -> Any:
        return self.magic.connection(alias)

    def interpolate(self, text: str | None, odata: bool = False) -> str | None:
        return _interpolate(self.magic, text, odata)


_trigger_parser = cells.trigger_parser
_action_parser = cells.action_parser
_scope_parser = cells.scope_parser


def trigger(magic: Any, line: str) -> Any:
    """``%d365 trigger <flow> created|updated|deleted <table> ...`` (see `cells.trigger`)."""
    return cells.trigger(_Cells(magic), line)


def action(magic: Any, line: str, cell: str | None, connection: Any = None) -> Any:
    """``%%d365 action <flow> <step> ...`` with the step as the cell body (`cells.action`)."""
    return cells.action(_Cells(magic), line, cell, connection=connection or magic.connection)


def scope(magic: Any, line: str, cell: str | None) -> Any:
    """``%%d365 scope <flow> <name>`` with the step names as the cell body (`cells.scope`)."""
    return cells.scope(_Cells(magic), line, cell)


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
    widget = flow_views.output_widget(target.output)
    if widget is not None:
        from IPython.display import display

        display(widget)


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
    scope_of = {m: sc.name for sc in target.scopes for m in sc.members}
    rows = [
        {
            "step": s.name,
            "kind": s.kind,
            "if": s.when,
            "retry": s.retry.type,
            "retries": s.retry.retries,
            "timeout": s.timeout,
            "source": s.source,
            # Control flow: run-after, for-each, else branch, scope (blank for a plain step).
            "after": ", ".join(f"{k}:{'|'.join(v)}" for k, v in (s.after or {}).items()) or None,
            "foreach": s.foreach,
            "else": s.otherwise,
            "scope": scope_of.get(s.name),
        }
        for s in target.steps
    ]
    return pd.DataFrame(rows, columns=_STEP_COLUMNS)


_STEP_COLUMNS = [
    "step", "kind", "if", "retry", "retries", "timeout", "source", "after", "foreach", "else", "scope"
]  # fmt: skip


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
    if flow_views.output_widget(target.output) is None:
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
