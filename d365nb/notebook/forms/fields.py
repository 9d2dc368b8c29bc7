"""One input per column, generated from its metadata, with inline validation.

A `Field` owns its widgets (label, input, inline error) and turns what the person typed into the
value the client accepts: text, ``int``, ``float``, ISO date text, choice value, ``bool`` or a
lookup ``(entity_set, id)``. ``validate()`` flags a bad value next to the input before anything is
sent.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import ipywidgets as widgets

from d365nb.notebook.forms import columns as cols
from d365nb.notebook.forms.picker import LookupPicker
from d365nb.notebook.forms.render import ERROR_STYLE, escape
from d365nb.notebook.forms.shared import make

LABEL_WIDTH = "190px"
INPUT_WIDTH = "320px"


class Blank:
    """Marker for an empty input (distinct from a value of None)."""

    def __repr__(self) -> str:
        return "BLANK"


BLANK = Blank()


class Field:
    """Base class: label + input + inline error for one column."""

    def __init__(self, column: Any, conn: Any = None) -> None:
        self.column = column
        self.name: str = column.name
        self.required = cols.is_required(column)
        self.original: Any = BLANK  # value loaded from a record (update forms send only changes)
        self.input = self._build()
        self.input.add_class("d365nb-input")
        mark = (
            " <span class='d365nb-required' title='required' style='color:#b00020'>*</span>"
            if self.required
            else ""
        )
        self.label = make(
            widgets.HTML,
            {"width": LABEL_WIDTH},
            value=f"<b title='{escape(self.name)}'>{escape(cols.label(column))}</b>{mark}",
        )
        self.error = make(widgets.HTML, {"margin": "0 0 0 " + LABEL_WIDTH})
        self.widget = make(
            widgets.VBox,
            children=[make(widgets.HBox, children=[self.label, self.input]), self.error],
        )
        self.widget.add_class("d365nb-field")
        self.widget.add_class(f"d365nb-field-{self.name}")

    # -- to override ------------------------------------------------------------------------
    def _build(self) -> widgets.Widget:
        raise NotImplementedError

    def raw(self) -> Any:
        """What is in the input, BLANK when empty."""
        raise NotImplementedError

    def set(self, value: Any) -> None:
        """Show a value (as read from a record); None clears the input."""
        raise NotImplementedError

    def convert(self, raw: Any) -> Any:
        """The client value for a non-blank input; raises ValueError with a one-line message."""
        return raw

    # -- shared ----------------------------------------------------------------------------
    def value(self) -> Any:
        """The client value, BLANK when empty; raises ValueError when invalid."""
        raw = self.raw()
        return BLANK if raw is BLANK else self.convert(raw)

    def check(self) -> str | None:
        """The problem with the current input, or None."""
        try:
            value = self.value()
        except ValueError as err:
            return str(err)
        if value is BLANK and self.required:
            return f"{cols.label(self.column)} is required"
        return None

    def validate(self) -> bool:
        """Check the input and show the problem inline; True when valid."""
        problem = self.check()
        self.show_error(problem)
        return problem is None

    def show_error(self, message: str | None) -> None:
        """Show ``message`` under the input (None clears it)."""
        self.error.value = (
            f"<span class='d365nb-error' style='{ERROR_STYLE}'>{escape(message)}</span>"
            if message
            else ""
        )

    def changed(self) -> bool:
        """Whether the input differs from the loaded value (an invalid input counts as changed)."""
        try:
            return self.value() != self.original
        except ValueError:
            return True

    def load(self, value: Any) -> None:
        """Show a record's value and remember it as the original."""
        self.set(value)
        self.original = self.value()
        self.show_error(None)

    def _revalidate_on_change(self, widget: widgets.Widget) -> None:
        # Flag a bad value as soon as it is typed, but leave "required" for submit time.
        def check(_change: dict) -> None:
            problem = self.check()
            self.show_error(problem if problem and self.raw() is not BLANK else None)

        widget.observe(check, "value")


class TextField(Field):
    """String (one line) or Memo (text area); the max length is enforced inline."""

    def _build(self) -> widgets.Widget:
        self.max_length = getattr(self.column, "max_length", None)
        cls = widgets.Textarea if cols.kind(self.column) == cols.MEMO else widgets.Text
        hint = f"up to {self.max_length} characters" if self.max_length else ""
        box = make(cls, {"width": INPUT_WIDTH}, placeholder=hint)
        self._revalidate_on_change(box)
        return box

    def raw(self) -> Any:
        return self.input.value if self.input.value != "" else BLANK

    def set(self, value: Any) -> None:
        self.input.value = "" if value is None else str(value)

    def convert(self, raw: Any) -> Any:
        if self.max_length and len(raw) > self.max_length:
            raise ValueError(f"{len(raw)} characters; at most {self.max_length} allowed")
        return raw


class NumberField(Field):
    """Whole numbers (Integer/BigInt) or decimals, typed as text so bad input can be flagged
    rather than silently clamped; the allowed range is shown and checked."""

    def _build(self) -> widgets.Widget:
        self.whole = cols.kind(self.column) == cols.WHOLE
        self.min_value = getattr(self.column, "min_value", None)
        self.max_value = getattr(self.column, "max_value", None)
        box = make(widgets.Text, {"width": "200px"}, placeholder=self._range_hint())
        self._revalidate_on_change(box)
        return box

    def _range_hint(self) -> str:
        what = "whole number" if self.whole else "number"
        lo, hi = self.min_value, self.max_value
        if lo is not None and hi is not None:
            return f"{what} {_num(lo)} to {_num(hi)}"
        if lo is not None:
            return f"{what} ≥ {_num(lo)}"
        if hi is not None:
            return f"{what} ≤ {_num(hi)}"
        return what

    def raw(self) -> Any:
        text = self.input.value.strip()
        return text if text else BLANK

    def set(self, value: Any) -> None:
        if value is None or isinstance(value, str):
            self.input.value = value or ""  # text is shown as typed, checked by validate()
        else:
            self.input.value = _num(value)

    def convert(self, raw: Any) -> Any:
        text = str(raw).strip()
        if _GROUPED.match(text):  # "12,500" is twelve thousand five hundred...
            text = text.replace(",", "")  # ...but "1,5" stays invalid rather than becoming 15
        try:
            number: int | float = int(text) if self.whole else float(text)
        except ValueError:
            raise ValueError(
                f"{raw!r} is not a {'whole number' if self.whole else 'number'}, e.g. 42"
            ) from None
        if self.min_value is not None and number < self.min_value:
            raise ValueError(f"{_num(number)} is below the minimum {_num(self.min_value)}")
        if self.max_value is not None and number > self.max_value:
            raise ValueError(f"{_num(number)} is above the maximum {_num(self.max_value)}")
        return number


_GROUPED = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")


def _num(value: Any) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class DateField(Field):
    """A text box accepting mm/dd/yyyy (the seed's format) or ISO, beside a date picker;
    picking a date fills the box."""

    def _build(self) -> widgets.Widget:
        self.text = make(widgets.Text, {"width": "140px"}, placeholder="mm/dd/yyyy")
        self.picker = make(widgets.DatePicker, {"width": "170px"})
        self._syncing = False
        self.picker.observe(self._picked, "value")
        self.text.observe(self._typed, "value")
        self._revalidate_on_change(self.text)
        return make(widgets.HBox, children=[self.text, self.picker])

    def _picked(self, change: dict) -> None:
        if not self._syncing and change["new"] is not None:
            self._syncing = True
            self.text.value = cols.format_mdy(change["new"])
            self._syncing = False

    def _typed(self, change: dict) -> None:
        if self._syncing:
            return
        try:
            parsed = cols.parse_date(change["new"]) if change["new"].strip() else None
        except ValueError:
            return
        self._syncing = True
        self.picker.value = parsed.date() if isinstance(parsed, datetime) else parsed
        self._syncing = False

    def raw(self) -> Any:
        return self.text.value if self.text.value.strip() else BLANK

    def set(self, value: Any) -> None:
        if value in (None, ""):
            self.text.value = ""
            return
        parsed = cols.parse_date(str(value)[:10]) if isinstance(value, str) else value
        self.text.value = cols.format_mdy(parsed)

    def convert(self, raw: Any) -> Any:
        parsed = cols.parse_date(raw)
        if isinstance(parsed, datetime):
            return parsed.isoformat().replace("+00:00", "Z")
        return parsed.isoformat()  # YYYY-MM-DD; the client widens it for date-time columns


class BooleanField(Field):
    """A checkbox labelled with the column's Yes label; never blank."""

    def _build(self) -> widgets.Widget:
        labels = cols.options(self.column)
        box = make(widgets.Checkbox, value=False, description=labels.get(1, ""), indent=False)
        self.touched = False
        box.observe(lambda _c: setattr(self, "touched", True), "value")
        return box

    def raw(self) -> Any:
        # Untouched on create means "leave the default" rather than "No".
        return bool(self.input.value) if self.touched else BLANK

    def set(self, value: Any) -> None:
        self.input.value = bool(value)
        self.touched = value is not None

    def check(self) -> str | None:
        return None  # a checkbox always holds a valid value


class ChoiceField(Field):
    """A dropdown of the choice's labels; the value sent is the option's number."""

    def _build(self) -> widgets.Widget:
        self.choices = cols.options(self.column)
        entries = [("", None)] + [(label, value) for value, label in self.choices.items()]
        return make(widgets.Dropdown, {"width": "240px"}, options=entries, value=None)

    def raw(self) -> Any:
        return BLANK if self.input.value is None else self.input.value

    def set(self, value: Any) -> None:
        if value is None:
            self.input.value = None
            return
        if isinstance(value, str) and not value.lstrip("-").isdigit():
            by_label = {label.lower(): v for v, label in self.choices.items()}
            if value.lower() not in by_label:
                raise ValueError(f"{value!r} is not a choice of {cols.label(self.column)}")
            value = by_label[value.lower()]
        if int(value) not in self.choices:
            # Dataverse keeps a removed option's value on old records: say so, don't crash.
            raise ValueError(f"{value} is not a choice of {cols.label(self.column)} any more")
        self.input.value = int(value)


class LookupField(Field):
    """The lookup picker: lookup type + search by primary name; the value is ``(entity_set, id)``."""

    def __init__(self, column: Any, conn: Any = None) -> None:
        self.conn = conn
        super().__init__(column, conn)

    def _build(self) -> widgets.Widget:
        self.picker = LookupPicker(self.conn, cols.targets(self.column), name=self.column.name)
        self.picker.on_change(lambda _v: self.show_error(None))
        return self.picker.widget

    def raw(self) -> Any:
        return self.picker.value if self.picker.value else BLANK

    def set(self, value: Any) -> None:
        if value is None:
            self.picker.clear()
        else:
            target, record_id, label = value
            self.picker.pick(target, record_id, label)


FIELD_CLASSES: dict[str, type[Field]] = {
    cols.TEXT: TextField,
    cols.MEMO: TextField,
    cols.WHOLE: NumberField,
    cols.DECIMAL: NumberField,
    cols.DATE: DateField,
    cols.BOOLEAN: BooleanField,
    cols.CHOICE: ChoiceField,
    cols.LOOKUP: LookupField,
}


def make_field(column: Any, conn: Any = None) -> Field:
    """The field for a column, chosen by its type."""
    kind = cols.kind(column)
    if kind is None:
        raise ValueError(f"column {column.name!r} of type {column.type!r} has no form input")
    return FIELD_CLASSES[kind](column, conn)


def record_value(record: dict, column: Any) -> Any:
    """A column's value from a JSON record, shaped for ``Field.load`` (lookups as
    ``(logical target, id, label)``)."""
    name = column.name
    if cols.kind(column) != cols.LOOKUP:
        return record.get(name)
    key = column.read_name
    record_id = record.get(key)
    if not record_id:
        return None
    target = (
        record.get(f"{key}@Microsoft.Dynamics.CRM.lookuplogicalname") or cols.targets(column)[0]
    )
    label = record.get(f"{key}@OData.Community.Display.V1.FormattedValue")
    return (target, record_id, label)


__all__ = ["Field", "make_field", "record_value", "BLANK"]
