"""Turning what the user wrote into a callable step, and what a step sees while it runs.

A Python step is a cell body run with ``trigger`` (the record), ``d365`` (the connection),
``steps`` (earlier steps' outputs by name), ``run`` (id, attempt, idempotency key) and
``display`` in scope; the value of its last expression is the step's output. A declarative step
is one ``%d365``-style command (``create tasks subject="Follow up: {trigger[subject]}"``).

Exactly-once creates: inside a step, ``d365.create(...)`` without an ``id`` gets one derived
from ``run.key`` (uuid5), so a run executed twice (crash, retry) writes the same record twice -
which the service turns into one record - instead of two.
"""

from __future__ import annotations

import ast
import inspect
import re
import shlex
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from d365nb.flows.model import FlowError

# Fixed namespace for run-key derived ids: same flow + key + step + call -> same GUID, forever.
RUN_NAMESPACE = uuid.UUID("6f1c3c2e-5d0b-4f57-9a53-1d365b0f10f5")

_VERBS = ("create", "update", "upsert", "delete", "get", "list")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Record(dict):
    """A trigger record: ``trigger["subject"]`` and ``trigger.subject`` both work."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"the trigger record has no column {name!r}") from None


@dataclass
class RunContext:
    """``run`` inside a step: which run this is and its idempotency key."""

    id: str
    key: str
    flow: str
    attempt: int = 1
    step: str = ""
    # Set when the engine gave up on the step (timeout, stop). Python cannot kill its thread,
    # so the step may still be running: its writes are refused from then on.
    abandoned: bool = field(default=False, repr=False)
    _calls: dict[str, int] = field(default_factory=dict, repr=False)

    def uuid(self, name: str = "") -> str:
        """A GUID that is the same every time this run's step asks for ``name``.

        >>> # d365.create("tasks", {...}, id=run.uuid("task"))
        """
        return str(uuid.uuid5(RUN_NAMESPACE, f"{self.flow}\x00{self.key}\x00{self.step}\x00{name}"))

    def next_create_id(self, table: str) -> str:
        """The deterministic id for this step's n-th create in ``table``."""
        n = self._calls.get(table, 0)
        self._calls[table] = n + 1
        return self.uuid(f"create:{table}:{n}")


class StepConnection:
    """The connection a step sees: the real one, plus exactly-once creates and the loop guard.

    Ids this step writes in the trigger's table are reported to ``note_write`` before the write
    (a poll may see the record the moment it lands), and taken back with ``undo=True`` when the
    write did not happen - otherwise the next change someone else makes would be ignored.
    """

    def __init__(
        self,
        conn: Any,
        run: RunContext,
        watched: set[str],
        note_write: Callable[..., None],
    ) -> None:
        self._conn = conn
        self._run = run
        self._watched = watched
        self._note = note_write

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def on(self, conn: Any) -> StepConnection:
        """The same run on another connection (a step's ``--alias``): creates keep their
        run-key ids; the loop guard only counts writes to the organisation the flow watches."""
        same_org = conn is self._conn or getattr(conn, "url", 1) == getattr(self._conn, "url", 2)
        recording = getattr(self._conn, "recording", None)  # a dry run records aliases' writes too
        if recording is not None:
            conn = recording(conn)
        return StepConnection(conn, self._run, self._watched if same_org else set(), self._note)

    def __repr__(self) -> str:
        return f"<step connection to {getattr(self._conn, 'url', '?')}>"

    def _write(self, table: str, record_id: Any, write: Callable[[], Any]) -> Any:
        if self._run.abandoned:
            raise FlowError(
                f"step {self._run.step!r} of run {self._run.id} timed out or was stopped; "
                "its late writes are refused"
            )
        mine = table in self._watched and record_id is not None
        if mine:
            self._note(str(record_id).lower())
        try:
            return write()
        except BaseException:
            if mine:
                self._note(str(record_id).lower(), undo=True)
            raise

    def create(
        self, table: str, values: dict[str, Any], id: str | None = None, **kwargs: Any
    ) -> str:
        derived = id is None
        record_id = id or self._run.next_create_id(table)
        try:
            return self._write(
                table, record_id, lambda: self._conn.create(table, values, id=record_id, **kwargs)
            )
        except Exception as err:
            # Same run key, same id: an earlier execution of this run already created it.
            if derived and _is_duplicate(err):
                return record_id
            raise

    def update(self, table: str, id: str, values: dict[str, Any], **kwargs: Any) -> Any:
        return self._write(table, id, lambda: self._conn.update(table, id, values, **kwargs))

    def upsert(self, table: str, id: str, values: dict[str, Any], **kwargs: Any) -> Any:
        return self._write(table, id, lambda: self._conn.upsert(table, id, values, **kwargs))

    def delete(self, table: str, id: str, **kwargs: Any) -> Any:
        return self._write(table, id, lambda: self._conn.delete(table, id, **kwargs))


def _is_duplicate(err: BaseException) -> bool:
    try:
        from d365nb.client.errors import D365Error
        from d365nb.client.operations import is_duplicate
    except ImportError:  # pragma: no cover
        return False
    return isinstance(err, D365Error) and err.status in (400, 409, 412) and is_duplicate(err)


# -- Python steps ---------------------------------------------------------------------------
def compile_python(name: str, source: str) -> Callable[[dict[str, Any]], Any]:
    """Compile a cell body; a syntax error is refused now, naming the line."""
    try:
        tree = ast.parse(source, filename=f"<step {name}>", mode="exec")
    except SyntaxError as err:
        raise FlowError(
            f"step {name!r} has a syntax error at line {err.lineno}: {err.msg}"
        ) from None
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    body = compile(tree, f"<step {name}>", "exec")
    tail = compile(last, f"<step {name}>", "eval") if last is not None else None

    def run_python(namespace: dict[str, Any]) -> Any:
        exec(body, namespace)
        return eval(tail, namespace) if tail is not None else None

    return run_python


def compile_callable(name: str, func: Callable[..., Any]) -> Callable[[dict[str, Any]], Any]:
    """A Python function as a step: called with the names it declares (trigger, d365, steps, run)."""
    if not callable(func):
        raise FlowError(f"step {name!r} must be code (text) or a callable")
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        params = {}
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    wanted = [
        p
        for p in params
        if params[p].kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]

    def run_callable(namespace: dict[str, Any]) -> Any:
        if takes_all:
            return func(**{k: namespace[k] for k in ("trigger", "d365", "steps", "run", "display")})
        return func(**{k: namespace[k] for k in wanted if k in namespace})

    return run_callable


def compile_condition(name: str, expression: str | None) -> Callable[[dict[str, Any]], bool] | None:
    """``--if EXPR``: checked before the step; false skips it."""
    if not expression:
        return None
    try:
        code = compile(expression, f"<step {name} --if>", "eval")
    except SyntaxError as err:
        raise FlowError(f"step {name!r} has a bad --if expression: {err.msg}") from None

    def check(namespace: dict[str, Any]) -> bool:
        return bool(eval(code, namespace))

    return check


# -- declarative steps ----------------------------------------------------------------------
def looks_declarative(source: str) -> bool:
    """One line that starts with a connector verb and a table, e.g. ``create tasks a=b``."""
    lines = [
        ln for ln in source.strip().splitlines() if ln.strip() and not ln.strip().startswith("#")
    ]
    if len(lines) != 1:
        return False
    words = lines[0].split(None, 2)
    return (
        len(words) >= 2
        and words[0] in _VERBS
        and bool(_NAME.match(words[1]))
        and (len(words) == 2 or not words[2].lstrip().startswith(("=", "(", ".")))
    )


# Options a declarative step takes, per verb (``--alias`` names the connection the step writes
# to). Anything else is refused when the step is defined: an option is honoured or refused,
# never silently dropped.
_STEP_OPTIONS: dict[str, tuple[str, ...]] = {
    "create": ("alias",),
    "update": ("alias",),
    "upsert": ("alias",),
    "delete": ("alias",),
    "get": ("alias", "select"),
    "list": ("alias", "filter", "orderby", "select", "top"),
}
_OPTION_SPELLINGS = {"connection": "alias", "c": "alias", "a": "alias"}


@dataclass
class Declarative:
    verb: str
    table: str
    record_id: str | None
    values: dict[str, str]
    options: dict[str, str]

    @property
    def alias(self) -> str | None:
        return self.options.get("alias")


def _option_name(name: str, word: str, verb: str) -> str:
    """``--filter`` -> ``filter``; an option the verb does not take is refused (one line)."""
    option = _OPTION_SPELLINGS.get(word, word)
    accepted = _STEP_OPTIONS[verb]
    if option not in accepted:
        takes = ", ".join(f"--{o}" for o in accepted)
        raise FlowError(f"step {name!r}: {verb} does not take --{word} (it takes {takes})")
    return option


def parse_declarative(name: str, source: str) -> Declarative:
    """Parse ``create tasks subject="..." regardingobjectid=leads({trigger[leadid]})``."""
    line = next(
        ln for ln in source.strip().splitlines() if ln.strip() and not ln.strip().startswith("#")
    )
    try:
        words = shlex.split(line)
    except ValueError as err:
        raise FlowError(f"step {name!r}: cannot read the command: {err}") from None
    verb, table, rest = words[0], words[1], words[2:]
    record_id = None
    if verb in ("update", "upsert", "delete", "get"):
        if not rest or "=" in rest[0] or rest[0].startswith("-"):
            raise FlowError(
                f"step {name!r}: {verb} needs a record id, e.g. {verb} {table} {{trigger[leadid]}}"
            )
        record_id, rest = rest[0], rest[1:]
    values: dict[str, str] = {}
    options: dict[str, str] = {}
    pending: str | None = None
    for word in rest:
        if pending:
            options[pending] = word
            pending = None
        elif re.match(r"^--?[A-Za-z]", word):
            flag, sep, inline = word.lstrip("-").partition("=")
            option = _option_name(name, flag, verb)
            if option in options:
                raise FlowError(f"step {name!r}: --{flag} is given twice")
            if sep:
                options[option] = inline
            else:
                pending = option
        elif "=" in word:
            key, value = word.split("=", 1)
            if not _NAME.match(key.split("@")[0]):
                raise FlowError(f"step {name!r}: {key!r} is not a column name")
            if key in values:
                raise FlowError(f"step {name!r}: column {key} is given twice")
            values[key] = value
        else:
            raise FlowError(f"step {name!r}: expected column=value, got {word!r}")
    if pending:
        raise FlowError(f"step {name!r}: --{pending} needs a value")
    if verb in ("create", "update", "upsert") and not values:
        raise FlowError(f"step {name!r}: {verb} needs at least one column=value")
    if verb in ("get", "list", "delete") and values:
        raise FlowError(
            f"step {name!r}: {verb} takes no column=value ({', '.join(values)}); "
            + ("use --filter" if verb == "list" else "it names one record by id")
        )
    for option, value in options.items():
        if not value.strip():
            raise FlowError(f"step {name!r}: --{option} is empty")
    if "top" in options and not re.fullmatch(r"\s*\d+\s*", options["top"]):
        raise FlowError(f"step {name!r}: --top {options['top']!r} is not a whole number")
    if "alias" in options and "{" in options["alias"]:
        raise FlowError(f"step {name!r}: --alias must name a connection, not a template")
    # Check the templates now so a typo is refused when the cell runs, not at the first event.
    for text in [*values.values(), record_id or "", *options.values()]:
        try:
            list(_FORMATTER.parse(text))
        except ValueError as err:
            raise FlowError(f"step {name!r}: bad template {text!r}: {err}") from None
    return Declarative(verb, table, record_id, values, options)


class _Formatter:
    """str.format over the run namespace (``{trigger[subject]}``, ``{trigger.subject}``,
    ``{steps[create_task]}``). Null fields follow Logic Apps: inside text ``@{...}`` of a null
    is the empty string, never the word "None"; a template that is one field and nothing else
    is the field's value itself (`compile_declarative`), so a null stays null."""

    def __init__(self) -> None:
        import string

        class _NullAsEmpty(string.Formatter):
            def format_field(self, value: Any, format_spec: str) -> Any:
                return "" if value is None else super().format_field(value, format_spec)

            def convert_field(self, value: Any, conversion: str | None) -> Any:
                return None if value is None else super().convert_field(value, conversion)

        self._formatter = _NullAsEmpty()

    def parse(self, text: str) -> Any:
        return self._formatter.parse(text)

    def render(self, text: str, namespace: dict[str, Any]) -> str:
        return self._formatter.vformat(text, (), namespace)

    def whole_field(self, text: str) -> str | None:
        """The field name when `text` is exactly one plain ``{field}``, else None."""
        parts = list(self._formatter.parse(text))
        if len(parts) != 1:
            return None
        literal, field, spec, conversion = parts[0]
        if literal or field is None or spec or conversion:
            return None
        return field

    def field_value(self, field: str, namespace: dict[str, Any]) -> Any:
        """The value of one ``{field}`` (``trigger[x]``, ``trigger.x``, ``steps[s]``)."""
        value, _ = self._formatter.get_field(field, (), namespace)
        return value


_FORMATTER = _Formatter()


def _typed(text: str) -> Any:
    """How the Logic Apps export writes a literal it cannot type from metadata: plain numbers
    and true/false/null as JSON values, everything else as text. A running step never uses this:
    there, what the user wrote stays text and the client types it per column."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+", text):
        return float(text)
    return text


_TEXT_TYPES = ("String", "Memo")


def _for_column(meta: Any, column: str, value: Any) -> Any:
    """A whole-field template keeps the field's value; a number sent to a text column becomes
    its text (as Logic Apps' string interpolation would). Everything else is typed - or refused
    with one line naming the column - by the client, from the column's metadata."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    col = getattr(meta, "columns", {}).get(column) if meta is not None else None
    if col is not None and getattr(col, "type", None) in _TEXT_TYPES:
        return str(value)
    return value


def odata_filter(
    pieces: Iterable[tuple[str, Any]],
    value_of: Callable[[Any], Any],
    refused: Callable[[Any, ValueError], Exception],
    text_of: Callable[[Any], str] = str,
) -> str:
    """A filter template put together from its pieces (literal text, then a field or None), each
    field's value written as OData: outside quotes its literal (``'O''Neil'``, a bare GUID,
    ``null``), inside a quoted string its text (``text_of``) with the quotes doubled - never
    pasted as filter syntax. ``refused(field, err)``: the error for a value with no literal.
    ``--filter`` of a declarative step and ``%d365``'s ``--filter``/``--where`` both use it."""
    from d365nb.client.query import literal

    parts: list[str] = []
    in_string = False  # inside an OData '...' literal, where '' is an escaped quote
    for literal_text, slot in pieces:
        parts.append(literal_text)
        in_string ^= literal_text.count("'") % 2 == 1  # '' toggles twice: parity is exact
        if slot is None:
            continue
        value = value_of(slot)
        if in_string:
            parts.append(text_of(value).replace("'", "''"))
        else:
            try:
                parts.append(literal(value))
            except ValueError as err:
                raise refused(slot, err) from None
    return "".join(parts)


def render_filter(text: str, namespace: dict[str, Any]) -> str:
    """A ``--filter`` template with each ``{field}`` written as an OData literal (`odata_filter`);
    a null field inside a quoted string is empty text."""

    def value_of(slot: tuple[str, str, str | None]) -> Any:
        name, spec, conversion = slot
        value = _FORMATTER.field_value(name, namespace)
        if conversion:
            value = _FORMATTER._formatter.convert_field(value, conversion)
        if spec:
            value = _FORMATTER._formatter.format_field(value, spec)
        return value

    pieces = (
        (literal_text, None if name is None else (name, spec, conversion))
        for literal_text, name, spec, conversion in _FORMATTER.parse(text)
    )
    return odata_filter(
        pieces,
        value_of,
        refused=lambda slot, err: FlowError(f"{{{slot[0]}}} cannot be a filter value: {err}"),
        text_of=lambda value: "" if value is None else str(value),
    )


def compile_declarative(
    name: str, source: str, connection: Callable[[str], Any] | None = None
) -> tuple[Callable[[dict[str, Any]], Any], Declarative]:
    """A declarative command as a step; creates get their id from ``run.key`` automatically.

    Values: a template that is one field and nothing else (``{trigger[x]}``) is the field's
    value itself - ``"Null"``, ``"007"`` or ``"true"`` stay those strings, a null stays null;
    a template with text around fields renders to text; the literal word ``null`` clears the
    column (as in ``%d365``); any other literal stays text. Typing per column (numbers, dates,
    choices by value or label, lookups) is the client's, from metadata, before any request.

    ``--alias A`` runs the step on connection ``A``, resolved now by ``connection(alias)``
    (an unknown alias is refused when the step is defined, never sent to the default one).
    """
    command = parse_declarative(name, source)

    def aliased() -> Any:
        """The ``--alias`` connection, looked up when the step is defined (an unknown alias is
        refused there) and again at each run (a reconnected alias is the new connection)."""
        if connection is None:
            raise FlowError(f"step {name!r}: --alias {command.alias} cannot be resolved here")
        try:
            target = connection(command.alias)  # type: ignore[arg-type]
        except FlowError as err:
            raise FlowError(f"step {name!r}: {err}") from None
        except Exception as err:  # noqa: BLE001 - the lookup's own one-line message
            raise FlowError(f"step {name!r}: {' '.join(str(err).split())}") from None
        if target is None:
            raise FlowError(f"step {name!r}: no connection {command.alias!r}")
        return target

    if command.alias is not None:
        aliased()

    def run_declarative(namespace: dict[str, Any]) -> Any:
        def failed(text: str, err: BaseException) -> FlowError:
            return FlowError(f"step {name!r}: template {text!r} failed: {err}")

        def render(text: str) -> str:
            try:
                return _FORMATTER.render(text, namespace)
            except (KeyError, AttributeError, IndexError, TypeError, ValueError) as err:
                raise failed(text, err) from None

        def value_of(column: str, text: str) -> Any:
            if "{" not in text:
                return None if text == "null" else text
            try:
                field = _FORMATTER.whole_field(text)
                if field is not None:
                    value = _FORMATTER.field_value(field, namespace)
                    return _for_column(meta, column, value)
            except (KeyError, AttributeError, IndexError, TypeError) as err:
                raise failed(text, err) from None
            return render(text)

        d365 = namespace["d365"]
        if command.alias is not None:
            target = aliased()
            d365 = d365.on(target) if hasattr(d365, "on") else target
        meta = None
        if command.values:
            try:
                meta = d365.metadata.table(command.table)
            except Exception:  # noqa: BLE001 - the write itself names an unknown table
                meta = None
        values = {k: value_of(k, v) for k, v in command.values.items()}
        record_id = render(command.record_id) if command.record_id else None
        namespace["_inputs"] = {
            "verb": command.verb,
            "table": command.table,
            "id": record_id,
            "values": values,
        }
        options = command.options
        if command.alias is not None:
            namespace["_inputs"]["alias"] = command.alias
        if command.verb == "create":
            return d365.create(command.table, values)  # StepConnection derives the id from run.key
        if command.verb == "update":
            d365.update(command.table, record_id, values)
            return record_id
        if command.verb == "upsert":
            return d365.upsert(command.table, record_id, values)
        if command.verb == "delete":
            d365.delete(command.table, record_id)
            return record_id
        select = render(options["select"]) if "select" in options else None
        if command.verb == "get":
            return d365.get(command.table, record_id, select=select)
        query: dict[str, Any] = {"select": select}
        if "filter" in options:
            try:
                query["filter"] = render_filter(options["filter"], namespace)
            except (KeyError, AttributeError, IndexError, TypeError) as err:
                raise failed(options["filter"], err) from None
            if not query["filter"].strip():
                raise FlowError(f"step {name!r}: --filter rendered empty; it would match every row")
        if "orderby" in options:
            query["orderby"] = render(options["orderby"])
        if "top" in options:
            query["top"] = int(options["top"])
        namespace["_inputs"]["query"] = {k: v for k, v in query.items() if v is not None}
        return d365.list(command.table, **query)

    return run_declarative, command
