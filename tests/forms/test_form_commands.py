"""`%d365 form <operation> [table]` through a real IPython shell with the extension loaded, and the
HTML fallback every form carries for front-ends without widgets."""

from __future__ import annotations

from html import escape

import pytest
from IPython.core.error import UsageError

from d365nb.notebook import forms
from d365nb.notebook.forms_commands import FormUsageError, parse
from tests.support.forms import DEMO_TABLES
from tests.support.shells import connected


@pytest.fixture
def shell(bare_shell, sandbox_handle):
    with connected(bare_shell, sandbox_handle, "formstest"):
        yield bare_shell


def run(ip, line):
    result = ip.run_cell(line)
    return result.error_before_exec or result.error_in_exec


@pytest.mark.parametrize(("operation", "cls"), [("create", forms.CreateForm), ("update", forms.UpdateForm),
                                                ("get", forms.GetForm), ("delete", forms.DeleteForm),
                                                ("list", forms.ListForm)])  # fmt: skip
def test_form_magic_builds_and_stores_the_form(shell, operation, cls):
    assert run(shell, f"%d365 form {operation} tasks -o my_form") is None
    built = shell.user_ns["my_form"]
    assert isinstance(built, cls)
    from d365nb.client.registry import connections

    assert built.conn is connections.get("formstest")
    assert built.meta.entity_set == "tasks"


def test_list_form_without_a_table_offers_the_table_dropdown(shell):
    assert run(shell, "%d365 form list -o lf") is None
    options = dict(shell.user_ns["lf"].table.options)  # label -> logical name
    assert {"task", "lead", "account"} <= set(options.values())
    assert options["Lead (lead)"] == "lead"  # display names, as the designer's Entity Name


def test_connect_form_from_the_magic(shell):
    assert run(shell, "%d365 form connect -o cf") is None
    assert isinstance(shell.user_ns["cf"], forms.ConnectionForm)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%d365 form", "usage: %d365 form"),
        ("%d365 form frobnicate tasks", "unknown form 'frobnicate'"),
        ("%d365 form create", "needs a table"),
        ("%d365 form create nosuchtable", "nosuchtable"),
        ("%d365 form flow no_such_flow", "no_such_flow"),
        ("%d365 form list tasks leads", "too many arguments: tasks leads"),
        ("%d365 form connect sandbox", "too many arguments: sandbox"),
        ("%d365 form flow f1 tasks", "too many arguments: f1 tasks"),
    ],
)
def test_bad_form_lines_are_one_line_errors(shell, line, message):
    error = run(shell, line)
    assert isinstance(error, UsageError)
    assert message in str(error) and "\n" not in str(error).strip()


def test_parse_accepts_the_leading_word_and_options():
    args = parse("form create tasks --alias prod -o f")
    assert (args.operation, args.args, args.alias, args.out) == ("create", ["tasks"], "prod", "f")
    with pytest.raises(FormUsageError, match="unknown option"):
        parse("create tasks --colour red")


@pytest.mark.parametrize("table", DEMO_TABLES)
def test_every_form_carries_an_html_fallback_beside_the_widget(conn, sandbox_handle, table):
    for built in (forms.create_form(table, conn), forms.update_form(table, conn), forms.get_form(table, conn),
                  forms.delete_form(table, conn), forms.list_form(table, conn)):  # fmt: skip
        bundle = built._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle
        html = bundle["text/html"]
        assert built.title in html
        assert sandbox_handle.token not in html + bundle["text/plain"]
    create = forms.create_form(table, conn)
    html = create.fallback_html()
    # Labels are HTML-escaped in the fallback ("Children's Names" -> "Children&#x27;s Names").
    assert all(escape(f.column.display_name or f.name) in html for f in create.fields.values())


def test_create_fallback_lists_fields_with_required_marks_and_choices(conn):
    html = forms.create_form("tasks", conn).fallback_html()
    assert "Subject *" in html and "max 200" in html
    assert "Low | Normal | High" in html
    assert "account | contact | lead" in html


def test_form_function_refuses_unknown_operations_in_one_line(conn):
    with pytest.raises(ValueError, match=r"unknown form 'nope': use one of list, get, create"):
        forms.form("nope", "tasks", conn)
    assert isinstance(forms.form("create", "tasks", conn), forms.CreateForm)


def _widget_tree(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _widget_tree(child)


def test_forms_use_only_the_core_ipywidgets_front_end(conn):
    # What lets JupyterLab, Notebook 7 and VS Code render them with no extension to install.
    from ipywidgets import _version as shipped

    core = {
        "@jupyter-widgets/controls": shipped.__jupyter_widgets_controls_version__,
        "@jupyter-widgets/base": shipped.__jupyter_widgets_base_version__,
        "@jupyter-widgets/output": shipped.__jupyter_widgets_output_version__,
    }
    for built in (forms.create_form("tasks", conn), forms.list_form("leads", conn),
                  forms.update_form("contacts", conn), forms.delete_form("accounts", conn),
                  forms.connection_form()):  # fmt: skip
        for widget in _widget_tree(built.widget):
            assert core.get(widget._model_module) == widget._model_module_version, widget
            assert widget._view_module in core, widget
