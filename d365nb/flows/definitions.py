"""What a flow is made of, as data: trigger kinds, step kinds, flow verbs and their options.

One place to read them from: the notebook parsers (``%d365 trigger``, ``%%d365 action``,
``%d365 flow``) and their help, tab completion, the Logic Apps export and the README's flow
table (``python -m d365nb.flows.definitions`` prints it) are all built from these tables.
Adding a trigger kind is one `TriggerKind` here plus its detector (`d365nb.flows.detect`).

This module imports nothing else of the package, so completion can read it at a keystroke.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, TypeVar


@dataclass(frozen=True)
class Option:
    """One ``--option`` of a command, as argparse takes it; ``verbs``: the flow verbs it
    applies to (a flow option given to another verb is refused); ``columns``: completion
    offers the table's column names."""

    flag: str
    help: str
    dest: str | None = None
    action: str | None = None  # store_true | append
    default: Any = None
    choices: tuple[str, ...] | None = None
    type: Any = None
    verbs: tuple[str, ...] = ()
    columns: bool = False
    short: str | None = None

    @property
    def name(self) -> str:
        return self.dest or self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class TriggerKind:
    """A trigger kind: when it fires, how it exports, which options it takes."""

    name: str  # created | updated | deleted
    help: str
    method: str  # the Flow method that declares it (on_created, ...)
    message: int  # Dataverse callbackregistration SdkMessage (Create 1, Delete 2, Update 3)
    legacy: tuple[str, str, str]  # Dynamics 365 polling trigger: path, swagger id, name
    fired_by: tuple[str, ...]  # the writes that make it fire (an upsert may create or update)
    options: tuple[str, ...]  # the trigger options it takes besides --every/--since/...


@dataclass(frozen=True)
class StepKind:
    name: str
    help: str


@dataclass(frozen=True)
class Verb:
    name: str
    help: str
    needs: str | None = "flow"  # flow | run | None: what the target names


_Named = TypeVar("_Named", TriggerKind, StepKind, Verb)


def _by_name(*entries: _Named) -> dict[str, _Named]:
    """A table keyed by each entry's name, in declaration order (help lists them so)."""
    return {e.name: e for e in entries}


TRIGGER_KINDS: dict[str, TriggerKind] = _by_name(
    TriggerKind(
        "created",
        "a record of the table is created",
        "on_created",
        1,
        ("onnewitems", "GetOnNewItems", "When_a_record_is_created"),
        ("create", "upsert"),
        ("--filter", "--select", "--orderby", "--top", "--mode"),
    ),
    TriggerKind(
        "updated",
        "a record is updated (with --columns: one of those columns)",
        "on_updated",
        3,
        ("onupdateditems", "GetOnUpdatedItems", "When_a_record_is_updated"),
        ("update", "upsert"),
        ("--filter", "--select", "--columns", "--orderby", "--top", "--mode"),
    ),
    TriggerKind(
        "deleted",
        "a record is deleted (needs change tracking on the table)",
        "on_deleted",
        2,
        ("ondeleteditems", "GetOnDeletedItems", "When_a_record_is_deleted"),
        ("delete",),
        (),
    ),
)

STEP_KINDS: dict[str, StepKind] = _by_name(
    StepKind("python", "notebook Python; trigger, steps, d365, run (and item) in scope"),
    StepKind("declarative", "one command: create|update|upsert|delete|get|list <table> ..."),
    StepKind("callable", "a Python function (Flow.step in code; not restored from the store)"),
)

TRIGGER_OPTIONS: tuple[Option, ...] = (
    Option("--every", "polling interval: 10s, 3m, 1h, 1d (default 3m)", default="3m"),
    Option("--filter", "OData $filter the record must match ({expr} as literal)"),
    Option("--select", "columns fetched and handed to the steps (comma separated)", columns=True),
    Option("--columns", "updated only: react only when one of these changed", columns=True),
    Option("--since", "now (default), beginning, or an ISO date/time"),
    Option("--orderby", "order of one poll's runs: column [asc|desc], ...", columns=True),
    Option("--top", "records one poll takes at most; the rest wait for the next poll"),
    Option(
        "--mode",
        "how changes are found: auto, watermark (versionnumber) or changes (change tracking)",
        default="auto",
        choices=("auto", "watermark", "changes"),
    ),
    Option("--concurrency", "runs at the same time (default 1)", type=int),
    Option(
        "--self-trigger",
        "let the flow's own writes fire it again (default: they are ignored)",
        action="store_true",
    ),
    Option("--connection", "connection alias (default: the current one)", short="-c"),
)

ACTION_OPTIONS: tuple[Option, ...] = (
    Option("--if", "Python condition on trigger; skip the step if false", dest="when"),
    Option("--else", "with --if: the step that runs when it is false", dest="otherwise"),
    Option(
        "--after",
        "run after this step ended so: step[:succeeded|failed|skipped|timedout] (repeatable)",
        action="append",
    ),
    Option("--foreach", 'run once per item: "{steps[find]}" or a Python expression; item in scope'),
    Option("--concurrency", "--foreach: iterations at the same time (1-50)"),
    Option("--retry", "none, default, fixed:5s:3 or exponential:2s:4"),
    Option("--timeout", "e.g. 30s, 2m; past it the step is TimedOut and its writes refused"),
    Option("--remove", "remove the step", action="store_true"),
)

SCOPE_OPTIONS: tuple[Option, ...] = (
    Option(
        "--after",
        "run the scope after this step ended so: step[:succeeded|failed|skipped|timedout]",
        action="append",
    ),
    Option("--remove", "remove the scope (its steps stay, outside any scope)", action="store_true"),
)

FLOW_VERBS: dict[str, Verb] = _by_name(
    Verb("start", "start polling (--from checkpoint|now|ISO: what to do with the backlog)"),
    Verb("stop", "stop at once; unfinished runs run on the next start"),
    Verb("pause", "stop polling, let runs in progress finish"),
    Verb("resume", "poll again after a pause"),
    Verb("status", "state, polls, runs, last error; stopped: changes waiting"),
    Verb("steps", "the flow's steps as a table"),
    Verb("runs", "run history, newest first"),
    Verb("run", "one run: every step, iteration and branch", needs="run"),
    Verb("resubmit", "run a stored run again with the same trigger record", needs="run"),
    Verb("test", "run the steps once on a record (--dry-run: writes listed, not sent)"),
    Verb("list", "flows defined here and stored beside the notebook", needs=None),
    Verb("delete", "stop the flow and forget it, run history included"),
    Verb("output", "show the flow's output area under this cell"),
    Verb("poll", "check the trigger now"),
    Verb("export", "the flow as an Azure Logic Apps workflow (see its own options)"),
)

FLOW_OPTIONS: tuple[Option, ...] = (
    Option("--record", "run the flow once on this record id", verbs=("test",)),
    Option(
        "--dry-run",
        "reads are real, writes are listed (table, operation, payload), not sent",
        action="store_true",
        verbs=("test",),
    ),
    Option(
        "--from",
        "checkpoint (default: run what waits), now (skip it) or an ISO time",
        dest="from_",
        verbs=("start",),
    ),
    Option("--top", "how many runs to show", type=int, verbs=("runs",)),
    Option(
        "--all-orgs",
        "also runs on other organisations (the org column says where each ran)",
        action="store_true",
        verbs=("runs",),
    ),
    Option(
        "--no-wait",
        "return without waiting for the run to end",
        action="store_true",
        verbs=("resubmit",),
    ),
    Option("-o", "store the result in this notebook variable", dest="out", short="--out"),
)

EXPORT_OPTIONS: tuple[Option, ...] = (
    Option("--to", "target (only logicapp)", default="logicapp"),
    Option("-o", "write the JSON to this file", dest="out", short="--out"),
    Option("--arm", "wrap in an ARM template", action="store_true"),
    Option("--legacy", "legacy Dynamics 365 polling trigger", action="store_true"),
    Option("--org", "organisation URL to target (required for a sandbox flow)"),
    Option("--placeholders", "export Python steps as Compose placeholders", action="store_true"),
    Option(
        "--connection",
        "the ARM template's API connection",
        default="oauth",
        choices=("oauth", "service-principal"),
    ),
)


def add_options(parser: argparse.ArgumentParser, options: tuple[Option, ...]) -> None:
    """Declare ``options`` on an argparse parser."""
    for o in options:
        flags = [o.flag] + ([o.short] if o.short else [])
        kwargs: dict[str, Any] = {"help": o.help}
        if o.dest:
            kwargs["dest"] = o.dest
        if o.action:
            kwargs["action"] = o.action
        else:
            if o.type is not None:
                kwargs["type"] = o.type
            if o.choices:
                kwargs["choices"] = o.choices
        if o.default is not None:
            kwargs["default"] = o.default
        parser.add_argument(*flags, **kwargs)


def misplaced(verb: str, args: argparse.Namespace) -> str | None:
    """The first flow option given to a verb it does not apply to, as a one-line message."""
    for o in FLOW_OPTIONS:
        if not o.verbs or verb in o.verbs:
            continue
        value = getattr(args, o.name, None)
        if value not in (None, False):
            where = " or ".join(f"%d365 flow {v}" for v in o.verbs)
            return f"{o.flag} only applies to {where}, not {verb}"
    return None


def option_flags(options: tuple[Option, ...]) -> list[str]:
    return [o.flag for o in options]


def column_flags(options: tuple[Option, ...]) -> set[str]:
    return {o.flag for o in options if o.columns}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table() -> str:
    """The README's flow table: every command, kind, verb and option, from the tables above."""
    rows = ["| What | Name | Meaning |", "| --- | --- | --- |"]
    sections: tuple[tuple[str, Any], ...] = (
        ("trigger kind", TRIGGER_KINDS.values()),
        ("`%d365 trigger` option", TRIGGER_OPTIONS),
        ("step kind", STEP_KINDS.values()),
        ("`%%d365 action` option", ACTION_OPTIONS),
        ("`%%d365 scope` option", SCOPE_OPTIONS),
        ("`%d365 flow` verb", FLOW_VERBS.values()),
        ("`%d365 flow` option", FLOW_OPTIONS),
        ("`%d365 flow export` option", EXPORT_OPTIONS),
    )
    for what, entries in sections:
        for e in entries:
            # an option by its flag, and the verbs it is limited to (only flow options have any)
            name = e.flag if isinstance(e, Option) else e.name
            where = f" ({', '.join(e.verbs)})" if getattr(e, "verbs", ()) else ""
            rows.append(f"| {what} | `{name}`{where} | {_cell(e.help)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
