"""Forms on one record: create, update (fields from metadata), get and delete (record picker)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from d365nb.notebook.forms import columns as cols
from d365nb.notebook.forms.base import Form, current_connection
from d365nb.notebook.forms.fields import BLANK, Field, make_field, record_value
from d365nb.notebook.forms.picker import LookupPicker
from d365nb.notebook.forms.render import escape, key_value_table, one_line


def field_order(meta: Any, mode: str) -> list[Any]:
    """Editable columns: primary name first, then required ones, then the rest (metadata order)."""
    editable = [c for c in meta.columns.values() if cols.editable(c, mode)]
    return sorted(editable, key=lambda c: (c.name != meta.primary_name, not cols.is_required(c)))


def submit_button(description: str, style: str, icon: str, action: Callable[[], Any]) -> Any:
    """A form's main button (class ``d365nb-submit``, which browser tests click): ``action`` on
    click."""
    button = widgets.Button(description=description, button_style=style, icon=icon)
    button.add_class("d365nb-submit")
    button.on_click(lambda _b: action())
    return button


class TableForm(Form):
    """A form on one table: the connection, the table's metadata and a "<verb> <table>" title."""

    verb = ""

    def __init__(self, table: str, conn: Any = None) -> None:
        super().__init__()
        self.conn = current_connection(conn)
        self.meta = self.conn.metadata.table(table)
        self.title = f"{self.verb} {self.meta.display_name or self.meta.logical_name}"


class FieldsForm(TableForm):
    """A form whose body is one field per editable column of a table."""

    mode = "create"

    def __init__(self, table: str, conn: Any = None) -> None:
        super().__init__(table, conn)
        self.fields: dict[str, Field] = {
            c.name: make_field(c, self.conn) for c in field_order(self.meta, self.mode)
        }
        self.fields_box = widgets.VBox([f.widget for f in self.fields.values()])

    def set(self, **values: Any) -> None:
        """Fill fields as a person would type them: ``form.set(subject="Call", percentcomplete="5")``.

        Lookups take ``(target, id)``; choices a value or a label."""
        for name, value in values.items():
            if name not in self.fields:
                raise ValueError(
                    f"{name!r} is not a field of this form (fields: {', '.join(self.fields)})"
                )
            field = self.fields[name]
            if (
                isinstance(value, tuple)
                and len(value) == 2
                and cols.kind(field.column) == cols.LOOKUP
            ):
                value = (*value, None)
            field.set(value)

    def validate(self) -> bool:
        """Check every field, flag problems inline; True when all are valid."""
        results = [field.validate() for field in self.fields.values()]
        return all(results)

    def values(self, only_changed: bool = False) -> dict[str, Any] | None:
        """The values to send (None when some field is invalid); blank fields are left out on
        create and sent as null on update when they used to have a value."""
        if not self.validate():
            bad = [cols.label(f.column) for f in self.fields.values() if f.error.value]
            self.show_error(f"fix the marked field{'s' if len(bad) > 1 else ''}: {', '.join(bad)}")
            return None
        out: dict[str, Any] = {}
        for name, field in self.fields.items():
            value = field.value()
            if only_changed and not field.changed():
                continue
            if value is BLANK:
                if only_changed:
                    out[name] = None
                continue
            out[name] = value
        return out

    def _server_error(self, err: BaseException) -> None:
        """Show a server/client error on the status line and next to the field it is about."""
        self.show_error(err)
        field = self._field_named_in(str(err))
        if field is not None:
            field.show_error(one_line(err))

    def _field_named_in(self, message: str) -> Field | None:
        # Dataverse names a missing lookup target only by its id ("account With Id = ... Does
        # Not Exist"), so a picked id identifies the lookup field; otherwise the column's name.
        lowered = message.lower()
        for field in self.fields.values():
            picked = field.raw() if cols.kind(field.column) == cols.LOOKUP else BLANK
            if picked is not BLANK and str(picked[1]).lower() in lowered:
                return field
        for name, field in self.fields.items():
            if re.search(rf"(?<![\w@])'?{re.escape(name)}'?(?![\w])", message):
                return field
        return None

    def _fallback_body(self) -> str:
        rows = [
            (
                f"{cols.label(f.column)}{' *' if f.required else ''}",
                f"{f.column.type}" + _fallback_hint(f.column),
            )
            for f in self.fields.values()
        ]
        return key_value_table(rows)


def _fallback_hint(column: Any) -> str:
    if getattr(column, "max_length", None):
        return f" (max {column.max_length})"
    if cols.kind(column) == cols.CHOICE:
        return ": " + " | ".join(cols.options(column).values())
    if cols.kind(column) == cols.LOOKUP:
        return " → " + " | ".join(cols.targets(column))
    return ""


class CreateForm(FieldsForm):
    """Create a record: fields from metadata, inline validation, ``result`` = the new id.

    >>> form = CreateForm("tasks", d365); form.set(subject="Call back"); form.submit()
    """

    kind = "create"
    verb = "Create"
    mode = "create"

    def __init__(self, table: str, conn: Any = None) -> None:
        super().__init__(table, conn)
        self.button = submit_button("Create", "primary", "plus", self.submit)
        self._assemble(self.fields_box, self.button)

    def submit(self) -> str | None:
        """Validate, create the record, and return its id (None when invalid or refused)."""
        values = self.values()
        if values is None:
            return None
        try:
            record_id = self.conn.create(self.meta.entity_set, values)
        except Exception as err:  # shown inline, never as a traceback
            self._server_error(err)
            return None
        self.result = record_id
        self.show_ok(f"created {self.meta.logical_name} {record_id}")
        return record_id


def record_picker(conn: Any, meta: Any) -> LookupPicker:
    """A record picker (search one table by primary name, or paste an id) to top a form."""
    picker = LookupPicker(conn, [meta.logical_name], name="record")
    picker.widget.children = (widgets.HTML("<b>Record</b>"), *picker.widget.children)
    return picker


class RecordPickerForm(TableForm):
    """Base of the get and delete forms: a table's metadata and a record picker."""

    def __init__(self, table: str, conn: Any = None) -> None:
        super().__init__(table, conn)
        self.picker = record_picker(self.conn, self.meta)


class UpdateForm(FieldsForm):
    """Pick a record, edit its fields, save only what changed."""

    kind = "update"
    verb = "Update"
    mode = "update"

    def __init__(self, table: str, conn: Any = None, record_id: str | None = None) -> None:
        super().__init__(table, conn)
        self.record_id: str | None = None
        self.picker = record_picker(self.conn, self.meta)
        self.picker.on_change(lambda value: value and self.load(value[1]))
        self.button = submit_button("Save changes", "primary", "save", self.submit)
        self._assemble(self.picker.widget, self.fields_box, self.button)
        if record_id:
            self.load(record_id)

    def load(self, record_id: str) -> bool:
        """Read the record and show its values in the fields."""
        try:
            record = self.conn.get(self.meta.entity_set, record_id)
        except Exception as err:
            self.show_error(err)
            return False
        self.record_id = str(record_id)
        for field in self.fields.values():
            try:
                field.load(record_value(record, field.column))
            except ValueError as err:
                # Data the metadata does not describe (a removed option, a lookup type the
                # column no longer targets): shown on the field, which stays blank and is
                # not sent unless the person fills it in.
                field.set(None)
                field.original = BLANK
                field.show_error(str(err))
        self.show_ok(f"loaded {record.get(self.meta.primary_name) or record_id}")
        return True

    def submit(self) -> bool:
        """Send the changed fields; True when saved."""
        if self.record_id is None:
            self.show_error("pick a record first")
            return False
        values = self.values(only_changed=True)
        if values is None:
            return False
        if not values:
            self.show_ok("nothing changed")
            return True
        try:
            self.conn.update(self.meta.entity_set, self.record_id, values)
        except Exception as err:
            self._server_error(err)
            return False
        for field in self.fields.values():
            field.original = field.value()
        self.result = self.record_id
        self.show_ok(
            f"updated {len(values)} field{'s' if len(values) > 1 else ''}: {', '.join(values)}"
        )
        return True


class GetForm(RecordPickerForm):
    """Pick a record and show it; ``result`` = the record (dict)."""

    kind = "get"
    verb = "Get"

    def __init__(self, table: str, conn: Any = None) -> None:
        super().__init__(table, conn)
        self.picker.on_change(lambda value: value and self.fetch(value[1]))
        self.view = widgets.HTML()
        self._assemble(self.picker.widget, self.view)

    def fetch(self, record_id: str) -> dict | None:
        """Read the record, show it and keep it as ``result`` (None when refused)."""
        try:
            record = self.conn.get(self.meta.entity_set, record_id)
        except Exception as err:
            self.show_error(err)
            return None
        self.result = record
        formatted = "@OData.Community.Display.V1.FormattedValue"
        rows = [
            (key, record.get(key + formatted, value))
            for key, value in record.items()
            if "@" not in key and value is not None
        ]
        self.view.value = key_value_table(rows)
        self.show_ok(f"{len(rows)} fields")
        return record


class DeleteForm(RecordPickerForm):
    """Pick a record, click Delete, confirm; ``result`` = the deleted id."""

    kind = "delete"
    verb = "Delete"

    def __init__(self, table: str, conn: Any = None) -> None:
        super().__init__(table, conn)
        self.button = submit_button("Delete…", "danger", "trash", self.ask)
        self.question = widgets.HTML()
        self.confirm_button = widgets.Button(description="Yes, delete", button_style="danger")
        self.confirm_button.add_class("d365nb-confirm")
        self.cancel_button = widgets.Button(description="Cancel")
        self.confirm_box = widgets.HBox([self.question, self.confirm_button, self.cancel_button])
        self.confirm_box.layout.display = "none"
        self.confirm_button.on_click(lambda _b: self.confirm())
        self.cancel_button.on_click(lambda _b: self.cancel())
        self._assemble(self.picker.widget, self.button, self.confirm_box)

    @property
    def asking(self) -> bool:
        """True while the confirmation question is shown."""
        return self.confirm_box.layout.display != "none"

    def ask(self) -> None:
        """Show the confirmation question for the picked record (nothing is deleted yet)."""
        if self.picker.value is None:
            self.show_error("pick a record first")
            return
        entity_set, record_id = self.picker.value
        self.question.value = (
            f"Delete {escape(self.meta.logical_name)} <b>{escape(self.picker.label or '(no name)')}"
            f"</b> <code>{entity_set}({record_id})</code>? This cannot be undone."
        )
        self.confirm_box.layout.display = ""
        self.status.value = ""

    def cancel(self) -> None:
        """Hide the question; nothing is deleted."""
        self.confirm_box.layout.display = "none"
        self.show_ok("not deleted")

    def confirm(self) -> bool:
        """Delete the picked record (only after ``ask``)."""
        if not self.asking or self.picker.value is None:
            self.show_error("click Delete… and confirm first")
            return False
        self.confirm_box.layout.display = "none"
        record_id = self.picker.value[1]
        try:
            self.conn.delete(self.meta.entity_set, record_id)
        except Exception as err:
            self.show_error(err)
            return False
        self.result = record_id
        self.picker.clear()
        self.picker.results.options = [o for o in self.picker.results.options if o[1] != record_id]
        self.show_ok(f"deleted {self.meta.logical_name} {record_id}")
        return True
