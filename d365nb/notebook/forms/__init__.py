"""ipywidgets forms for every connector operation, generated from table metadata.

    >>> from d365nb import forms
    >>> f = forms.create_form("tasks")      # display f; fill it in; click Create; f.result -> id
    >>> forms.form("list", "leads")          # the same as `%d365 form list leads`

Forms: `ListForm`, `CreateForm`, `UpdateForm`, `GetForm`, `DeleteForm`, `ConnectionForm`, and
`FlowView` (diagram + run history of a flow) with `ActionForm` (a create step for a flow, with a
"dynamic content" picker of trigger fields). Each displays as ipywidgets and, where widgets are not
rendered, as readable HTML.
"""

from __future__ import annotations

from typing import Any

from d365nb.notebook.forms.action import ActionForm
from d365nb.notebook.forms.base import Form
from d365nb.notebook.forms.connection import ConnectionForm
from d365nb.notebook.forms.flowview import FlowView
from d365nb.notebook.forms.listform import ListForm
from d365nb.notebook.forms.picker import LookupPicker, RecordSearch
from d365nb.notebook.forms.record import CreateForm, DeleteForm, GetForm, UpdateForm

OPERATIONS: dict[str, type[Form]] = {
    "list": ListForm,
    "get": GetForm,
    "create": CreateForm,
    "update": UpdateForm,
    "delete": DeleteForm,
}
NEEDS_TABLE = {"get", "create", "update", "delete"}


def form(operation: str, table: str | None = None, conn: Any = None) -> Form:
    """The form for a connector operation (list, get, create, update, delete, connect)."""
    if operation in ("connect", "connection"):
        return ConnectionForm()
    if operation not in OPERATIONS:
        raise ValueError(
            f"unknown form {operation!r}: use one of {', '.join([*OPERATIONS, 'connect'])}"
        )
    if operation in NEEDS_TABLE and not table:
        raise ValueError(f"`form {operation}` needs a table, e.g. form {operation} tasks")
    return OPERATIONS[operation](table, conn)


def list_form(table: str | None = None, conn: Any = None) -> ListForm:
    """The list form (optionally preset to ``table``)."""
    return ListForm(table, conn)


def create_form(table: str, conn: Any = None) -> CreateForm:
    """A create form for ``table``."""
    return CreateForm(table, conn)


def update_form(table: str, conn: Any = None, record_id: str | None = None) -> UpdateForm:
    """An update form for ``table`` (optionally loaded with ``record_id``)."""
    return UpdateForm(table, conn, record_id)


def get_form(table: str, conn: Any = None) -> GetForm:
    """A record picker that shows the picked record."""
    return GetForm(table, conn)


def delete_form(table: str, conn: Any = None) -> DeleteForm:
    """A record picker with a confirmed Delete."""
    return DeleteForm(table, conn)


def connection_form() -> ConnectionForm:
    """Connect to an org (URL + auth method, device code with live status) or to the sandbox."""
    return ConnectionForm()


def flow_view(flow: Any) -> FlowView:
    """The diagram and run history of a flow."""
    return FlowView(flow)


__all__ = [
    "form",
    "list_form",
    "create_form",
    "update_form",
    "get_form",
    "delete_form",
    "connection_form",
    "flow_view",
    "Form",
    "ListForm",
    "CreateForm",
    "UpdateForm",
    "GetForm",
    "DeleteForm",
    "ConnectionForm",
    "FlowView",
    "ActionForm",
    "LookupPicker",
    "RecordSearch",
]
