"""The list form: table, columns, filter builder rows, raw OData, order by, top -> DataFrame.

Each filter row offers only the operators that make sense for its column's type and a value input
of that type (the same inputs as the create form), and turns into OData with every value quoted as
a literal, never pasted raw.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from d365nb.client.errors import D365Error
from d365nb.client.query import literal
from d365nb.notebook.forms import columns as cols
from d365nb.notebook.forms.base import Form, current_connection
from d365nb.notebook.forms.fields import BLANK, BooleanField, Field, make_field
from d365nb.notebook.forms.picker import like_literal, string_literal
from d365nb.notebook.forms.render import escape

NO_VALUE = {"null", "notnull", "last7", "next7"}

_NULL_OPS = [("is empty", "null"), ("is not empty", "notnull")]
_COMPARE = [("=", "eq"), ("≠", "ne"), (">", "gt"), ("≥", "ge"), ("<", "lt"), ("≤", "le")]

OPERATORS: dict[str, list[tuple[str, str]]] = {
    cols.TEXT: [("equals", "eq"), ("not equal", "ne"), ("contains", "contains"),
                ("starts with", "startswith"), ("ends with", "endswith"), *_NULL_OPS],
    cols.MEMO: [("contains", "contains"), ("starts with", "startswith"), *_NULL_OPS],
    cols.WHOLE: [*_COMPARE, *_NULL_OPS],
    cols.DECIMAL: [*_COMPARE, *_NULL_OPS],
    cols.DATE: [("on", "on"), ("on or after", "onorafter"), ("on or before", "onorbefore"),
                ("last 7 days", "last7"), ("next 7 days", "next7"), *_NULL_OPS],
    cols.BOOLEAN: [("is", "eq"), ("is not", "ne")],
    cols.CHOICE: [("is", "eq"), ("is not", "ne"), *_NULL_OPS],
    cols.LOOKUP: [("is", "eq"), ("is not", "ne"), *_NULL_OPS],
}  # fmt: skip

_DATE_FUNCTIONS = {
    "on": "On",
    "onorafter": "OnOrAfter",
    "onorbefore": "OnOrBefore",
    "last7": "Last7Days",
    "next7": "Next7Days",
}


def condition(column: Any, op: str, value: Any = BLANK) -> str:
    """One OData condition for a column, an operator of ``OPERATORS`` and a field value."""
    kind = cols.kind(column)
    name = column.read_name
    if op == "null":
        return f"{name} eq null"
    if op == "notnull":
        return f"{name} ne null"
    if op in _DATE_FUNCTIONS:
        fn = f"Microsoft.Dynamics.CRM.{_DATE_FUNCTIONS[op]}(PropertyName={string_literal(column.name)}"
        return fn + (
            ")" if op in NO_VALUE else f",PropertyValue={string_literal(str(value)[:10])})"
        )
    if value is BLANK:
        raise ValueError(f"enter a value for {cols.label(column)}")
    if op in ("contains", "startswith", "endswith"):  # the raw OData box keeps wildcards
        return f"{op}({name},{string_literal(like_literal(str(value)))})"
    if kind == cols.LOOKUP:
        value = value[1]  # (entity_set, id) -> bare GUID
    elif kind in (cols.TEXT, cols.MEMO):
        return f"{name} {op} {string_literal(str(value))}"
    return f"{name} {op} {literal(value)}"


class FilterRow:
    """Column dropdown, operator dropdown (by type) and a typed value input."""

    def __init__(self, form: ListForm, column: str | None = None) -> None:
        self.form = form
        filterable = form.filterable()
        self.column = widgets.Dropdown(
            options=[(f"{cols.label(c)} ({c.name})", c.name) for c in filterable],
            layout=widgets.Layout(width="240px"),
        )
        self.op = widgets.Dropdown(layout=widgets.Layout(width="130px"))
        self.value_box = widgets.HBox()
        self.remove = widgets.Button(
            icon="times", tooltip="remove this condition", layout=widgets.Layout(width="36px")
        )
        self.remove.on_click(lambda _b: form.remove_row(self))
        self.field: Field | None = None
        self.column.observe(lambda _c: self._column_changed(), "value")
        self.op.observe(lambda _c: self._op_changed(), "value")
        self.widget = widgets.HBox([self.column, self.op, self.value_box, self.remove])
        self.widget.add_class("d365nb-filter-row")
        if column is not None:
            self.column.value = column
        self._column_changed()

    @property
    def meta(self) -> Any:
        """The chosen column's metadata."""
        return self.form.meta.columns[self.column.value]

    def _column_changed(self) -> None:
        column = self.meta
        self.op.options = OPERATORS[cols.kind(column)]
        self.field = make_field(column, self.form.conn)
        self.field.required = False
        if isinstance(self.field, BooleanField):
            # In a condition an unticked box reads "is No"; on a create form it means "default".
            self.field.touched = True
        self._op_changed()

    def _op_changed(self) -> None:
        shown = self.field is not None and self.op.value not in NO_VALUE
        self.value_box.children = (
            (widgets.VBox([self.field.input, self.field.error]),) if shown else ()
        )
        self.form.refresh_preview()

    def set(self, op: str, value: Any = None) -> None:
        """Choose the operator and type the value (as a person would)."""
        self.op.value = op
        if value is not None:
            self.field.set(
                (*value, None)
                if cols.kind(self.meta) == cols.LOOKUP and isinstance(value, tuple)
                else value
            )

    def odata(self) -> str:
        """The condition; raises ValueError (also shown inline) when the value is bad."""
        value = BLANK
        if self.op.value not in NO_VALUE:
            try:
                value = self.field.value()
            except ValueError as err:
                self.field.show_error(str(err))
                raise
        self.field.show_error(None)
        return condition(self.meta, self.op.value, value)


class ListForm(Form):
    """Build a query with widgets, Run it, see the DataFrame; ``result`` keeps the DataFrame."""

    kind = "list"

    title = "List records"

    def __init__(self, table: str | None = None, conn: Any = None) -> None:
        super().__init__()
        self.conn = current_connection(conn)
        self.rows: list[FilterRow] = []
        choices = _table_choices(self.conn)
        if table is not None:
            meta = self.conn.metadata.table(table)
            table = meta.logical_name
            if table not in [name for _, name in choices]:
                choices = sorted([*choices, (f"{meta.display_name or table} ({table})", table)])
        self.table = widgets.Dropdown(
            options=choices, value=table or choices[0][1], description="Table"
        )
        self.columns = widgets.SelectMultiple(
            description="Columns", rows=6, layout=widgets.Layout(width="420px")
        )
        self.rows_box = widgets.VBox()
        self.add_button = widgets.Button(description="Add condition", icon="plus")
        self.add_button.on_click(lambda _b: self.add_row())
        self.raw = widgets.Text(
            description="OData",
            placeholder="raw $filter, e.g. statuscode eq 1",
            layout=widgets.Layout(width="520px"),
        )
        self.orderby = widgets.Dropdown(description="Order by")
        self.descending = widgets.Checkbox(description="descending", indent=False)
        self.top = widgets.BoundedIntText(
            value=50, min=0, max=100_000, description="Top", layout=widgets.Layout(width="180px")
        )
        self.preview = widgets.HTML()
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.run_button.add_class("d365nb-submit")
        self.run_button.on_click(lambda _b: self.run())
        self.output = widgets.Output()
        for control in (self.raw, self.orderby, self.descending, self.top, self.columns):
            control.observe(lambda _c: self.refresh_preview(), "value")
        self.table.observe(lambda _c: self._table_changed(), "value")
        self._table_changed()
        self._assemble(
            self.table,
            self.columns,
            widgets.HTML("<b>Filter</b> (all conditions must hold)"),
            self.rows_box,
            self.add_button,
            self.raw,
            widgets.HBox([self.orderby, self.descending, self.top]),
            self.preview,
            self.run_button,
            self.output,
        )

    def filterable(self) -> list[Any]:
        """The columns a filter row may test."""
        # Helper columns (``owneridname``...) belong to their lookup: filter on the lookup itself.
        return [
            c
            for c in self.meta.columns.values()
            if cols.kind(c) is not None and not getattr(c, "attribute_of", None)
        ]

    def _table_changed(self) -> None:
        self.meta = self.conn.metadata.table(self.table.value)
        self.set_title(f"List {self.meta.display_name or self.meta.logical_name}")
        choices = _column_choices(self.meta)
        self.rows = []
        self.rows_box.children = ()
        self.columns.options = choices
        self.columns.value = ()
        self.orderby.options = [("", None), *choices]
        self.refresh_preview()

    def add_row(self, column: str | None = None) -> FilterRow:
        """Add a filter condition row (for ``column`` if given)."""
        row = FilterRow(self, column)
        self.rows.append(row)
        self.rows_box.children = tuple(r.widget for r in self.rows)
        self.refresh_preview()
        return row

    def remove_row(self, row: FilterRow) -> None:
        """Drop a filter condition row."""
        self.rows.remove(row)
        self.rows_box.children = tuple(r.widget for r in self.rows)
        self.refresh_preview()

    def query(self) -> dict[str, Any]:
        """The ``list`` arguments the widgets describe; raises ValueError for a bad value."""
        parts = [row.odata() for row in self.rows]
        if self.raw.value.strip():
            parts.append(f"({self.raw.value.strip()})" if parts else self.raw.value.strip())
        orderby = None
        if self.orderby.value:
            orderby = self.orderby.value + (" desc" if self.descending.value else "")
        return {
            "filter": " and ".join(parts) or None,
            "select": list(self.columns.value) or None,
            "orderby": orderby,
            "top": self.top.value or None,
        }

    def refresh_preview(self) -> None:
        """Show the OData the widgets describe (left as is while a value is invalid)."""
        if not hasattr(self, "preview"):
            return
        try:
            query = self.query()
        except ValueError:
            return
        shown = " · ".join(
            f"${k}={v if k != 'select' else ','.join(v)}" for k, v in query.items() if v
        )
        self.preview.value = f"<code class='d365nb-query'>{escape(shown)}</code>"

    def run(self) -> Any:
        """Run the query; show and return the DataFrame (None when refused, error shown inline)."""
        try:
            query = self.query()
        except ValueError as err:  # our own message about a row's value: no exception name
            self.show_error(str(err))
            return None
        try:
            frame = self.conn.list(self.meta.entity_set, **query)
        except Exception as err:  # inline, never a traceback
            self.show_error(err)
            return None
        self.result = frame
        self.output.clear_output()
        with self.output:
            from IPython.display import display

            display(frame)
        self.show_ok(f"{len(frame)} row{'s' if len(frame) != 1 else ''} of {self.meta.entity_set}")
        return frame

    def _fallback_body(self) -> str:
        return f"<p>table <code>{escape(self.meta.entity_set)}</code> · {self.preview.value}</p>"


def _table_choices(conn: Any) -> list[tuple[str, str]]:
    """``[("Account (account)", "account"), ...]`` for the org's tables (one request, cached by
    the client); the names already cached when the org cannot be asked."""
    try:
        frame = conn.tables()
    except D365Error:
        return [(name, name) for name in sorted(conn.metadata.cached_table_names())]
    return sorted(
        (f"{row.display_name or row.Index} ({row.Index})", str(row.Index))
        for row in frame.itertuples()
    )


def _column_choices(meta: Any) -> list[tuple[str, str]]:
    """``[("Topic (subject)", "subject"), ...]`` sorted by display name."""
    return sorted((f"{cols.label(c)} ({c.name})", c.name) for c in meta.columns.values())
