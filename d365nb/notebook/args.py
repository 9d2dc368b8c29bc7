"""Argument declarations for every ``%d365`` command; they document themselves.

Each command is one :class:`Command`: a name, a one-line summary, examples and an argparse
parser. ``%d365?`` and ``%d365 help [command]`` are generated from these declarations, so the
help cannot drift from what the parser accepts. No ad-hoc syntax beyond options and
``field=value`` words (the JupySQL rule).

Only the standard library is imported here: this module loads with ``%load_ext``.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, field

from IPython.core.error import UsageError

from d365nb.client.names import closest

__all__ = ["Command", "COMMANDS", "parse", "split_line", "usage_line", "help_text"]


class HelpShown(Exception):  # noqa: N818 - a signal, not an error
    """Raised after ``-h``/``--help`` printed a command's help: nothing more to do."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises a one-line ``UsageError`` (usage line included) instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if message.startswith("unrecognized arguments: "):
            words = message.split(": ", 1)[1].split()
            options = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
            unknown = next((w for w in words if w.startswith("-")), None)
            hint = closest(unknown, options)[:1] if unknown else []
            if hint:
                message += f" (did you mean {', '.join(hint)}?)"
        # One line, like every other refusal: the message, then the usage in parentheses.
        raise UsageError(f"%d365 {self.prog}: {message} ({usage_line(self)})")

    # prog is the bare command name: argparse %-formats usage text (parse_intermixed_args even
    # feeds format_usage() back as a template), so "%d365" is added only to what users read.
    def format_help(self) -> str:
        return super().format_help().replace("usage: ", "usage: %d365 ", 1)

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message, end="")
        raise HelpShown()


@dataclass
class Command:
    """One ``%d365`` command: its parser and the text that documents it."""

    name: str
    summary: str
    examples: list[str] = field(default_factory=list)
    parser: argparse.ArgumentParser | None = None
    cell: str = ""  # what a %%d365 cell body means for this command ("" = no body)
    external: bool = False  # implemented by another module with its own argument parsing


def _parser(name: str, summary: str) -> _Parser:
    return _Parser(prog=name, description=summary, add_help=True, allow_abbrev=False)


def _output(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", metavar="VAR", help="store the result in the variable VAR")


def _query(p: argparse.ArgumentParser) -> None:
    p.add_argument("--filter", metavar="F", help="OData $filter; {expr} inserts a quoted literal")
    p.add_argument("--orderby", metavar="O", help='OData $orderby, e.g. "createdon desc"')
    p.add_argument("--select", metavar="a,b", help="columns to return (comma separated)")
    p.add_argument("--expand", metavar="E", help="OData $expand, e.g. ownerid($select=fullname)")


def _many(p: argparse.ArgumentParser, verb: str, yes: str) -> None:
    """``--where``, ``--all`` and ``--yes`` of a command that writes many records at once: the
    same words for update and delete, so both are previewed and confirmed alike."""
    p.add_argument("--where", metavar="F", help=f"{verb} every record matching this filter")
    p.add_argument(
        "--all", action="store_true", help=f"{verb} every record of the table (with --yes)"
    )
    p.add_argument("--yes", action="store_true", help=yes)


def export_options(p: argparse.ArgumentParser) -> None:
    """``--save FILE`` and ``--tz``: every reading command takes them (see commands.reading)."""
    p.add_argument(
        "--save",
        metavar="FILE",
        help="also write the result to FILE.csv, .parquet or .xlsx (parquet/xlsx: d365nb[save])",
    )
    p.add_argument(
        "--tz",
        metavar="ZONE",
        help="datetimes in UTC (default; %%config D365Magic.tz), local, naive or a zone name",
    )


def _build() -> dict[str, Command]:
    commands: dict[str, Command] = {}

    def add(cmd: Command) -> argparse.ArgumentParser:
        commands[cmd.name] = cmd
        if not cmd.external:
            cmd.parser = _parser(cmd.name, cmd.summary)
        return cmd.parser  # type: ignore[return-value]

    p = add(Command("help", "show help for all commands or one", ["%d365 help list"]))
    p.add_argument("topic", nargs="?", help="a command name, or filter")

    p = add(
        Command(
            "connect",
            "connect to the sandbox or an organisation and make it current",
            [
                "%d365 connect sandbox",
                "%d365 connect sandbox --db crm.sqlite",
                "%d365 connect https://contoso.crm.dynamics.com --device-code",
                "%d365 connect https://contoso.crm.dynamics.com --token {my_token} --alias prod",
            ],
        )
    )
    p.add_argument("target", help='"sandbox" or an org URL (https://org.crm.dynamics.com)')
    p.add_argument("--alias", "-a", help="name for this connection (default: host name)")
    p.add_argument(
        "--token",
        help="a bearer token, as {variable} (a literal token is refused: it would be saved)",
    )
    p.add_argument("--client-id", help="Entra ID application (client) id")
    p.add_argument("--tenant", help="Entra ID tenant id or domain")
    auth = p.add_mutually_exclusive_group()
    auth.add_argument("--device-code", action="store_true", help="sign in with a device code")
    auth.add_argument("--interactive", action="store_true", help="sign in in a browser")
    p.add_argument("--verify", metavar="CA", help="CA bundle for a TLS sandbox or proxy")
    p.add_argument(
        "--data",
        choices=("demo", "empty"),
        help="sandbox only: start with demo data (default) or empty",
    )
    p.add_argument(
        "--db",
        metavar="PATH",
        help="sandbox only: keep its data in this SQLite file (survives kernel restarts)",
    )

    add(
        Command(
            "connections", "list open connections and which one is current", ["%d365 connections"]
        )
    )
    p = commands["connections"].parser
    _output(p)

    p = add(Command("use", "make another open connection current", ["%d365 use prod"]))
    p.add_argument("alias", help="alias of an open connection")

    p = add(
        Command("whoami", "the signed-in user, business unit and organisation", ["%d365 whoami"])
    )
    _output(p)

    p = add(Command("tables", "tables of the organisation as a DataFrame", ["%d365 tables"]))
    _output(p)

    p = add(Command("describe", "columns of a table: types, required level, choices",
                    ["%d365 describe leads"]))  # fmt: skip
    p.add_argument("table", help="logical (lead) or entity-set (leads) name")
    _output(p)

    p = add(
        Command(
            "list",
            "query a table into a DataFrame",
            [
                '%d365 list leads --filter "statuscode eq 1"',
                '%d365 list leads --filter "lastname eq {name}" --select fullname,lastname',
                '%d365 list tasks --orderby "createdon desc" --top 50 -o recent',
                "%d365 list leads --all --labels",
                "%d365 list contacts --expand parentcustomerid_account($select=name) --save c.xlsx",
                "%%d365 list leads --select fullname\nstatuscode eq 1\n  and createdon ge 2026-01-01T00:00:00Z",
            ],
            cell="the filter (lines are joined), and/or option lines starting with --",
        )
    )
    p.add_argument("table", help="logical (lead) or entity-set (leads) name")
    _query(p)
    p.add_argument(
        "--explode",
        action="store_true",
        help="one row per child of a collection-valued --expand (else a list column)",
    )
    p.add_argument("--top", type=int, metavar="N", help="at most N rows")
    pages = p.add_mutually_exclusive_group()
    pages.add_argument("--all", action="store_true", help="read every page")
    pages.add_argument("--pages", type=int, metavar="N", help="read at most N pages")
    p.add_argument("--count", action="store_true", help="ask the server for the total count")
    p.add_argument("--labels", action="store_true", help="choices and lookups as labels")
    export_options(p)
    _output(p)

    p = add(Command("get", "one record by id", ["%d365 get leads {lead_id} --select fullname"]))
    p.add_argument("table", help="logical or entity-set name")
    p.add_argument("id", help="the record's GUID")
    p.add_argument("--select", metavar="a,b", help="columns to return (comma separated)")
    p.add_argument("--expand", metavar="E", help="OData $expand")
    export_options(p)
    _output(p)

    p = add(
        Command(
            "create",
            "create one record (field=value words or a cell body) or many (--from df)",
            [
                '%d365 create tasks subject="Call back" percentcomplete=0',
                "%d365 create tasks subject={subject} regardingobjectid=leads({lead_id})",
                "%d365 create tasks --from new_tasks",
                "%%d365 create tasks\nsubject: Call back\nprioritycode: High\nscheduledend: 12/31/2026",
            ],
            cell="JSON object (or array for many) or `field: value` lines",
        )
    )
    p.add_argument("table", help="logical or entity-set name")
    p.add_argument("values", nargs="*", metavar="field=value", help="column values")
    p.add_argument("--from", dest="source", metavar="DF", help="a DataFrame variable: bulk create")
    _output(p)

    p = add(
        Command(
            "update",
            "update one record, rows of a DataFrame (--from) or all matching rows (--where)",
            [
                "%d365 update tasks {task_id} percentcomplete=50",
                "%d365 update tasks --from changed",
                '%d365 update leads --where "statuscode eq 1" statuscode=2 --yes',
            ],
            cell="JSON object or `field: value` lines",
        )
    )
    p.add_argument("table", help="logical or entity-set name")
    p.add_argument("values", nargs="*", metavar="[id] field=value", help="record id then values")
    p.add_argument(
        "--from",
        dest="source",
        metavar="DF",
        help="a DataFrame variable: bulk update (ids: index or primary-id column); a frame "
        "read by list sends only its changed cells, with If-Match (preview unless --yes)",
    )
    _many(p, "update", yes="really write (--where and --from show a preview)")
    _output(p)

    p = add(
        Command(
            "delete",
            "delete one record or all matching rows (--where, preview unless --yes)",
            [
                "%d365 delete tasks {task_id}",
                "%d365 delete tasks --where \"subject eq 'tmp'\" --yes",
            ],
        )
    )
    p.add_argument("table", help="logical or entity-set name")
    p.add_argument("id", nargs="?", help="the record's GUID")
    _many(p, "delete", yes="really delete (--where shows a preview)")
    _output(p)

    p = add(
        Command(
            "changes",
            "change-tracking delta: rows with a change column (upserted/deleted)",
            ["%d365 changes leads -o snap", "%d365 changes leads --since last"],
        )
    )
    p.add_argument("table", help="a table with change tracking enabled")
    p.add_argument(
        "--since",
        metavar="TOKEN",
        help='delta token from a previous call, or "last" (default: all)',
    )
    p.add_argument("--select", metavar="a,b", help="columns to return (comma separated)")
    export_options(p)
    _output(p)

    p = add(
        Command(
            "aggregate",
            "count/sum/avg/min/max per group in one request ($apply, or FetchXML)",
            [
                '%d365 aggregate leads --groupby statuscode --agg "n=count(),total=sum(estimatedvalue)"',
                '%d365 aggregate leads --groupby ownerid --agg "n=count()" --labels --plot bar',
                '%d365 aggregate leads --groupby createdon:month --agg "n=count()" --plot line',
            ],
        )
    )
    p.add_argument("table", help="logical or entity-set name")
    p.add_argument("--groupby", metavar="a,b", help="group columns; dates by part: createdon:month")
    p.add_argument(
        "--agg",
        metavar="SPEC",
        help="name=method(col),...: count() count(col) countdistinct sum avg min max",
    )
    p.add_argument("--filter", metavar="F", help="OData $filter; {expr} inserts a quoted literal")
    p.add_argument("--labels", action="store_true", help="choice labels and lookup names")
    p.add_argument(
        "--plot", choices=("bar", "line", "pie"), help="draw the result (needs d365nb[plot])"
    )
    export_options(p)
    _output(p)

    p = add(
        Command(
            "fetchxml",
            "run the FetchXML query in the cell body",
            ["%%d365 fetchxml -o rows --all\n<fetch><entity name='lead'>...</entity></fetch>"],
            cell="a FetchXML query (<fetch>...</fetch>); {expr} inserts a Python value",
        )
    )
    p.add_argument("--all", action="store_true", help="read every page (follow paging cookies)")
    export_options(p)
    _output(p)

    # Commands implemented by other parts, which parse their own arguments.
    add(
        Command(
            "trigger",
            "declare a flow's trigger (when a record is created/updated/deleted)",
            ['%d365 trigger lead_followup created leads --every 10s --filter "statuscode eq 1"'],
            external=True,
        )
    )
    add(
        Command(
            "action",
            "add a step to a flow; the cell body is Python (trigger, d365 in scope)",
            ["%%d365 action lead_followup create_task\nd365.create('tasks', {...})"],
            cell="Python code of the step",
            external=True,
        )
    )
    add(
        Command(
            "scope",
            "group a flow's steps as one block (Logic Apps' Scope); body: the step names",
            ["%%d365 scope lead_followup work\nfind\nclose"],
            cell="the scope's step names, one per line",
            external=True,
        )
    )
    add(
        Command(
            "flow",
            "start/stop/status/runs/test/export a flow",
            ["%d365 flow start lead_followup", "%d365 flow runs lead_followup"],
            external=True,
        )
    )
    add(
        Command(
            "form",
            "an ipywidgets form for an operation",
            [
                "%d365 form list leads",
                "%d365 form create tasks",
                "%d365 form connect",
                "%d365 form flow lead_followup",
                "%d365 form action lead_followup tasks",
            ],
            external=True,
        )
    )
    return commands


COMMANDS: dict[str, Command] = _build()


def split_line(line: str) -> list[str]:
    """Shell-like words of a magic line; quotes group words (``--filter "statuscode eq 1"``)."""
    try:
        return shlex.split(line, posix=True)
    except ValueError as exc:  # "No closing quotation"
        raise UsageError(f"%d365: {exc} in: {line.strip()}") from None


# Commands whose %%d365 cell body is more of the query: filter lines and/or option lines.
QUERY_CELLS = {"list"}


def query_cell_words(body: str) -> list[str]:
    """Words a query cell adds to its line: lines starting with ``-`` are options (a quoted
    value may go on over several lines), ``#`` lines are comments, and the other lines are
    the filter, joined with spaces (``--filter <text>``). Line breaks inside an option's
    value become one space."""
    import re

    options: list[str] = []
    filter_lines: list[str] = []
    for line in body.splitlines():
        stripped = line.strip()
        if options and _open_quote("\n".join(options)):
            options.append(line)
        elif not stripped or stripped.startswith("#"):
            continue
        elif stripped.startswith("-"):
            options.append(stripped)
        else:
            filter_lines.append(stripped)
    words = [re.sub(r"\s*\n\s*", " ", w) for w in split_line("\n".join(options))]
    if filter_lines:
        if "--filter" in words:
            raise UsageError("%%d365: give the filter once: as body lines or as --filter")
        words += ["--filter", " ".join(filter_lines)]
    return words


def _open_quote(text: str) -> bool:
    try:
        shlex.split(text, posix=True)
    except ValueError:
        return True
    return False


def usage_line(parser: argparse.ArgumentParser) -> str:
    """``usage: %d365 list table [--filter F] ...`` on one line."""
    text = " ".join(parser.format_usage().split())
    return text.replace("usage: ", "usage: %d365 ", 1)


def parse(command: str, words: list[str]) -> argparse.Namespace:
    """Parse a command's words; raises ``UsageError`` with the usage line on bad input."""
    parser = COMMANDS[command].parser
    assert parser is not None
    return parser.parse_intermixed_args(_glue_values(parser, words))


def _glue_values(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """``--option value`` as ``--option=value`` when the value starts with ``-``. argparse
    takes such a value for an option and answers "expected one argument" - for a pasted
    token (random tokens start with ``-`` one time in 64) that skipped the literal-token
    refusal; for ``--where "-..."`` it hid the real mistake."""
    options = parser._option_string_actions  # noqa: SLF001 - argparse has no public lookup
    out: list[str] = []
    i = 0
    while i < len(words):
        action = options.get(words[i])
        value = words[i + 1] if i + 1 < len(words) else None
        if (
            action is not None
            and action.nargs is None  # takes exactly one value
            and value is not None
            and value.startswith("-")
            and value not in options
        ):
            out.append(f"{words[i]}={value}")
            i += 2
            continue
        out.append(words[i])
        i += 1
    return out


# `%d365 help filter`: OData $filter as Dataverse takes it. Every example runs against the
# sandbox in tests/notebook/test_explore_help.py. Source:
# https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/filter-rows
FILTER_EXAMPLES = [
    ("compare", "statuscode eq 1", "eq ne gt ge lt le (not == != > <)"),
    ("combine", "statuscode eq 1 and (revenue gt 100000 or numberofemployees ge 50)",
     "and or not, parentheses"),
    ("text", "lastname eq 'O''Neil'", "text in single quotes, a quote doubled"),
    ("contains", "contains(companyname,'Toys')", "also startswith(col,'x'), endswith(col,'x')"),
    ("empty", "emailaddress1 eq null", "null for no value (ne null: has one)"),
    ("dates", "createdon ge 2026-01-01T00:00:00Z", "ISO 8601 in UTC, no quotes"),
    ("choice", "statuscode eq 'Contacted'", "a label is sent as its value (here 2)"),
    ("lookup", "_ownerid_value eq {user_id}", "a lookup's id column; {expr} quotes a value"),
    ("related", "parentaccountid/name eq 'Contoso'", "a column of the related record"),
    ("relative", "Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue=30)",
     "Today, Yesterday, LastXDays, NextXDays, On, Between, In, ..."),
    ("in", "Microsoft.Dynamics.CRM.In(PropertyName='statuscode',PropertyValues=['1','2'])",
     "one of several values"),
]  # fmt: skip

TOPICS = {"filter": "OData $filter: operators, functions and examples"}


def filter_help() -> str:
    lines = [
        "%d365 help filter - OData $filter (--filter, --where, trigger --filter, query cells)",
        "",
        "operators: eq ne gt ge lt le   and or not   ( )",
        "functions: contains startswith endswith; Microsoft.Dynamics.CRM.<Today|Yesterday|",
        "  LastXDays|NextXDays|LastXMonths|On|OnOrAfter|OnOrBefore|Between|In|NotIn|...>",
        "literals:  'text' ('' for a quote)  42  3.5  true false null  2026-01-31T09:30:00Z",
        "  GUIDs bare; {expr} inserts a Python value (a datetime, a text) as a literal",
        "",
        "examples:",
    ]
    for _, text, note in FILTER_EXAMPLES:
        lines += [f"  {text}", f"      {note}"]
    lines += [
        "",
        "a long filter: a %%d365 list <table> cell whose body lines are the filter.",
        "mistakes get a one-line hint: == -> eq, 12/31/2026 -> 2026-12-31T00:00:00Z,",
        "  an unknown column -> the closest names.",
        "https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/filter-rows",
    ]
    return "\n".join(lines) + "\n"


def help_text(topic: str | None = None) -> str:
    """Help for all commands (an overview with examples) or for one command (its full help)."""
    if topic and topic in TOPICS:
        return filter_help()
    if topic:
        cmd = COMMANDS.get(topic)
        if cmd is None:
            hint = closest(topic, (*COMMANDS, *TOPICS))
            suggestion = f" Did you mean: {', '.join(hint)}?" if hint else ""
            raise UsageError(f"%d365 help: no command {topic!r}.{suggestion}")
        flow_parser = _flow_command_parser(cmd.name) if cmd.parser is None else None
        if cmd.parser is not None:
            text = cmd.parser.format_help()
        elif flow_parser is not None:
            text = f"%d365 {cmd.name}: {cmd.summary}\n\n" + flow_parser.format_help()
            if cmd.name == "flow":
                text += "\n" + _flow_export_help()
        else:
            text = f"%d365 {cmd.name}: {cmd.summary}\n"
        if cmd.cell:
            text += f"\ncell body (%%d365 {cmd.name} ...): {cmd.cell}\n"
        if cmd.examples:
            text += "\nexamples:\n" + "\n".join(_indent(e) for e in cmd.examples) + "\n"
        return text
    width = max(len(name) for name in COMMANDS)
    lines = [
        "%d365 <command> [arguments]  -  Dynamics 365 / Dataverse from a notebook.",
        "%%d365 <command> [arguments] with a cell body for create/update/action.",
        "",
        "commands:",
    ]
    lines += [f"  {name.ljust(width)}  {cmd.summary}" for name, cmd in COMMANDS.items()]
    lines += [
        "",
        "values: field=value (text, numbers, dates ISO or mm/dd/yyyy, choices by label or value,",
        "  lookups ownerid=systemusers(<id>)); {expr} brings in a Python value (quoted as an OData",
        "  literal inside --filter/--where); $ is left alone, so OData text passes untouched.",
        "options: %config D365Magic.<option> (see %config D365Magic), [tool.d365nb] in",
        "  pyproject.toml, or D365NB_<OPTION> environment variables.",
        "",
        "examples:",
    ]
    for name in ("connect", "list", "get", "create", "update", "delete", "changes"):
        lines += [_indent(COMMANDS[name].examples[0])]
    lines += [
        "",
        "%d365 help <command> (or %d365 <command> --help) for one command;",
        "%d365 help filter for OData filters.",
    ]
    return "\n".join(lines) + "\n"


def _flow_command_parser(name: str) -> argparse.ArgumentParser | None:
    """The argument parser the flows part uses for `trigger`/`action`/`flow`, so their help
    lists the options those commands really take. Imported only when help is asked for (loading
    the extension must stay light); None when flows are not available."""
    if name not in ("trigger", "action", "scope", "flow"):
        return None
    try:
        from d365nb.notebook import flow_commands
    except ImportError:
        return None
    factory = {
        "trigger": flow_commands._trigger_parser,
        "action": flow_commands._action_parser,
        "scope": flow_commands._scope_parser,
        "flow": flow_commands._flow_parser,
    }[name]
    return factory()


def _flow_export_help() -> str:
    """`%d365 flow export` parses its own options: show them under the flow help."""
    try:
        from d365nb.flows.export_command import _parser
    except ImportError:
        return ""
    return _parser().format_help()


def _indent(example: str) -> str:
    return "\n".join("    " + line for line in example.splitlines())
