"""The action form: a create step for a flow, with a "dynamic content" picker of trigger fields.

As in the Logic Apps designer, dynamic content must match the type of the field it fills (the
seed's best-practice table): any trigger field can go into text, numbers only into numbers, dates
only into dates. Lookups cannot take dynamic content - they need a record id *and* a lookup type -
so a lookup that may point at the trigger's table offers "the trigger record" instead.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from d365nb.notebook.forms import columns as cols
from d365nb.notebook.forms.base import current_connection
from d365nb.notebook.forms.fields import BLANK, LABEL_WIDTH, Field
from d365nb.notebook.forms.record import CreateForm

# Field kind -> the trigger field kinds that may fill it (None: any, written as text).
ACCEPTS: dict[str, set[str | None] | None] = {
    cols.TEXT: None,
    cols.MEMO: None,
    cols.WHOLE: {cols.WHOLE},
    cols.DECIMAL: {cols.WHOLE, cols.DECIMAL},
    cols.DATE: {cols.DATE},
}

_KIND_NAMES = {cols.WHOLE: "whole number", cols.DECIMAL: "number", cols.DATE: "date"}


def trigger_token(name: str) -> str:
    """The template a step renders per run, e.g. ``{trigger[lastname]}``."""
    return "{trigger[" + name + "]}"


def dynamic_content(trigger_meta: Any) -> dict[str, Any]:
    """``{key in the trigger record: column}`` for every trigger column, sorted by label.

    A lookup sits in the record as ``_x_value`` (its id), not under its logical name, so that is
    the key its token must use."""
    ordered = sorted(trigger_meta.columns.values(), key=cols.label)
    return {(getattr(c, "read_name", None) or c.name): c for c in ordered}


def command_value(value: Any) -> str:
    """A value as written in a declarative step (``%d365``-style ``field=value``)."""
    if isinstance(value, tuple):
        return f"{value[0]}({value[1]})"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text_box(field: Field) -> widgets.Text:
    # A date field's input is an HBox (text box + picker); the token goes into its text box.
    return getattr(field, "text", field.input)


class ActionForm(CreateForm):
    """A create step for a flow: the create form of ``table`` plus a "dynamic content" picker that
    inserts trigger fields (``{trigger[lastname]}``) into fields of a matching type; "Add step"
    adds a declarative ``create`` step to the flow; ``result`` = that command."""

    kind = "action"

    def __init__(
        self, flow: Any, table: str, conn: Any = None, step_name: str | None = None
    ) -> None:
        if getattr(flow, "trigger", None) is None:
            raise ValueError(
                f"flow {getattr(flow, 'name', '?')!r} has no trigger yet: its dynamic content comes"
                " from the trigger's table (add one, e.g. %d365 trigger <flow> created leads)"
            )
        conn = current_connection(conn if conn is not None else getattr(flow, "conn", None))
        super().__init__(table, conn)
        self.flow = flow
        self.title = f"Action: create {self.meta.display_name or self.meta.logical_name}"
        self.trigger_meta = conn.metadata.table(flow.trigger.table)
        self.trigger_fields = dynamic_content(self.trigger_meta)
        fillable = [f for f in self.fields.values() if cols.kind(f.column) in ACCEPTS]
        self.insert_into = widgets.Dropdown(
            options=[(cols.label(f.column), f.name) for f in fillable], description="into"
        )
        self.dynamic = widgets.Dropdown(
            description="Dynamic content",
            style={"description_width": "120px"},
            layout=widgets.Layout(width="380px"),
        )
        self.dynamic.add_class("d365nb-dynamic")
        self.insert_into.observe(lambda _c: self._offer_dynamic(), "value")
        self._offer_dynamic()
        self.insert_button = widgets.Button(description="Insert", icon="bolt")
        self.insert_button.on_click(lambda _b: self._insert_clicked())
        self.use_trigger = self._trigger_record_boxes()
        self.step_name = widgets.Text(
            value=step_name or f"create_{self.meta.logical_name}", description="Step name"
        )
        self.button.description = "Add step"
        self.button.icon = "plus"
        self._assemble(
            widgets.HBox([self.dynamic, self.insert_into, self.insert_button]),
            self.fields_box,
            self.step_name,
            self.button,
        )

    def _trigger_record_boxes(self) -> dict[str, widgets.Checkbox]:
        # Lookups that can point at the trigger's table may take "the trigger record" itself.
        boxes: dict[str, widgets.Checkbox] = {}
        trigger_table = self.trigger_meta.logical_name
        for field in self.fields.values():
            column = field.column
            if cols.kind(column) == cols.LOOKUP and trigger_table in cols.targets(column):
                box = widgets.Checkbox(
                    description=f"the trigger {trigger_table}",
                    indent=False,
                    layout=widgets.Layout(margin=f"0 0 0 {LABEL_WIDTH}"),
                )
                box.add_class("d365nb-use-trigger")
                boxes[field.name] = box
                field.widget.children = (*field.widget.children, box)
        return boxes

    # -- dynamic content ---------------------------------------------------------------------
    def dynamic_options(self, into: str) -> list[str]:
        """The trigger record keys whose type fits the field ``into``."""
        accepted = ACCEPTS[cols.kind(self.fields[into].column)]
        return [
            key
            for key, column in self.trigger_fields.items()
            if accepted is None or cols.kind(column) in accepted
        ]

    def _offer_dynamic(self) -> None:
        keys = self.dynamic_options(self.insert_into.value) if self.insert_into.value else []
        self.dynamic.options = [(f"{cols.label(self.trigger_fields[k])} ({k})", k) for k in keys]
        if self.dynamic.value is None and keys:
            # A Dropdown given new options selects nothing: keep one picked, ready to insert.
            self.dynamic.value = keys[0]

    def _insert_clicked(self) -> None:
        try:
            self.insert()
        except ValueError as err:
            self.show_error(str(err))

    def insert(self, trigger_field: str | None = None, into: str | None = None) -> None:
        """Put ``{trigger[<field>]}`` into a field (what picking dynamic content does): appended
        to text, replacing the value of a number or date field. A field of another type is
        refused with a one-line ValueError."""
        name = into or self.insert_into.value
        key = trigger_field or self.dynamic.value
        if name not in self.fields or cols.kind(self.fields[name].column) not in ACCEPTS:
            choices = ", ".join(value for _, value in self.insert_into.options)
            raise ValueError(f"dynamic content cannot go into {name!r} (use one of {choices})")
        if key not in self.trigger_fields:
            raise ValueError(
                f"{key!r} is not a field of the trigger's {self.trigger_meta.logical_name} record"
            )
        field = self.fields[name]
        if key not in self.dynamic_options(name):
            source = self.trigger_fields[key]
            want = _KIND_NAMES.get(cols.kind(field.column), "value")
            raise ValueError(
                f"{cols.label(source)} is not a {want}: it cannot fill {cols.label(field.column)}"
            )
        box = _text_box(field)
        token = trigger_token(key)
        box.value = box.value + token if ACCEPTS[cols.kind(field.column)] is None else token
        field.show_error(None)  # a template is checked per run, not as typed text

    def values(self, only_changed: bool = False) -> dict[str, Any] | None:
        """Like the create form's, but a ``{trigger[...]}`` template or a ticked "the trigger
        record" is kept as is: it is filled in per run."""
        out: dict[str, Any] = {}
        problems = []
        for name, field in self.fields.items():
            if name in self.use_trigger and self.use_trigger[name].value:
                out[name] = (
                    self.trigger_meta.entity_set,
                    trigger_token(self.trigger_meta.primary_id),
                )
                field.show_error(None)
                continue
            raw = field.raw()
            if isinstance(raw, str) and "{trigger[" in raw:
                out[name] = raw  # filled in per run; its type is checked when the step runs
                field.show_error(None)
                continue
            if not field.validate():
                problems.append(cols.label(field.column))
                continue
            value = field.value()
            if value is not BLANK:
                out[name] = value
        if problems:
            self.show_error(
                f"fix the marked field{'s' if len(problems) > 1 else ''}: {', '.join(problems)}"
            )
            return None
        return out

    def command(self) -> str | None:
        """The declarative step, e.g. ``create tasks subject="Follow up: {trigger[lastname]}"``."""
        values = self.values()
        if values is None:
            return None
        assignments = " ".join(f"{k}={command_value(v)}" for k, v in values.items())
        return f"create {self.meta.entity_set} {assignments}".strip()

    def submit(self) -> str | None:
        """Add the step to the flow; returns the command (None when invalid)."""
        command = self.command()
        if command is None:
            return None
        name = self.step_name.value.strip()
        if not name.isidentifier():
            self.show_error(f"step name {name!r} must be a Python identifier, e.g. create_task")
            return None
        try:
            self.flow.step(name, command)
        except Exception as err:
            self.show_error(err)
            return None
        self.result = command
        self.show_ok(f"added step {name}: {command}")
        return command
