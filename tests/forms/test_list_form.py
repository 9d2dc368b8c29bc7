"""The list form builds OData from widgets, runs it, and keeps the DataFrame."""

from __future__ import annotations

import pytest

from d365nb.client.metadata import ColumnMeta
from d365nb.notebook.forms import ListForm
from d365nb.notebook.forms import columns as cols
from d365nb.notebook.forms.listform import OPERATORS, condition
from tests.support.forms import DEMO_TABLES, unique


@pytest.mark.parametrize("table", DEMO_TABLES)
def test_list_form_runs_a_filter_row_on_the_primary_name(conn, reader, table):
    form = ListForm(table, conn)
    meta = form.meta
    rows = reader.query(
        meta.entity_set, select=meta.primary_name, top="1", filter=f"{meta.primary_name} ne null"
    )
    name = rows[0][meta.primary_name]
    row = form.add_row(meta.primary_name)
    row.set("startswith", name[:3])
    form.columns.value = (meta.primary_name,)
    form.top.value = 0
    form.run_button.click()
    assert "d365nb-ok" in form.status.value, form.status.value
    expected = reader.query(
        meta.entity_set,
        select=meta.primary_name,
        filter=f"startswith({meta.primary_name},'{name[:3].replace(chr(39), chr(39) * 2)}')",
    )
    assert sorted(form.result.index) == sorted(r[meta.primary_id] for r in expected)
    assert (form.result[meta.primary_name].str.lower().str.startswith(name[:3].lower())).all()


def test_operators_fit_the_column_type(conn):
    form = ListForm("tasks", conn)
    ops = {
        name: [op for _, op in form.add_row(name).op.options]
        for name in (
            "subject",
            "percentcomplete",
            "scheduledend",
            "prioritycode",
            "regardingobjectid",
        )
    }
    assert "contains" in ops["subject"] and "gt" not in ops["subject"]
    assert "gt" in ops["percentcomplete"] and "contains" not in ops["percentcomplete"]
    assert "onorafter" in ops["scheduledend"]
    assert ops["prioritycode"][:2] == ["eq", "ne"]
    assert "contains" not in ops["regardingobjectid"]


def test_value_widget_follows_the_column_type(conn):
    form = ListForm("tasks", conn)
    row = form.add_row("prioritycode")
    assert [label for label, _ in row.field.input.options] == ["", "Low", "Normal", "High"]
    row.column.value = "scheduledend"
    assert hasattr(row.field, "picker")  # date picker beside the mm/dd/yyyy box
    row.op.value = "last7"
    assert row.value_box.children == ()  # "last 7 days" takes no value


def test_conditions_are_quoted_as_odata_literals():
    subject = ColumnMeta("subject", "String", "Subject")
    assert condition(subject, "eq", "O'Neil") == "subject eq 'O''Neil'"
    # A typed value is matched as typed: Dataverse's LIKE wildcards are bracketed.
    assert condition(subject, "contains", "50%") == "contains(subject,'50[%]')"
    assert condition(subject, "startswith", "a_b[") == "startswith(subject,'a[_]b[[]')"
    whole = ColumnMeta("percentcomplete", "Integer", "Percent")
    assert condition(whole, "ge", 50) == "percentcomplete ge 50"
    lookup = ColumnMeta("regardingobjectid", "Lookup", "Regarding", targets=["account"])
    guid = "0b8f9d4e-0000-4000-8000-000000000001"
    assert condition(lookup, "eq", ("accounts", guid)) == f"_regardingobjectid_value eq {guid}"
    assert condition(lookup, "null") == "_regardingobjectid_value eq null"
    date = ColumnMeta("scheduledend", "DateTime", "Due")
    assert condition(date, "onorafter", "2026-03-31") == (
        "Microsoft.Dynamics.CRM.OnOrAfter(PropertyName='scheduledend',PropertyValue='2026-03-31')"
    )
    assert set(OPERATORS) == {
        cols.TEXT,
        cols.MEMO,
        cols.WHOLE,
        cols.DECIMAL,
        cols.DATE,
        cols.BOOLEAN,
        cols.CHOICE,
        cols.LOOKUP,
    }


def test_choice_date_and_number_rows_with_raw_odata_order_and_top(conn, reader):
    tag = unique("ListForm")
    for pct, priority in ((10, 2), (60, 2), (90, 0)):
        reader.create(
            "tasks",
            {
                "subject": f"{tag} {pct}",
                "percentcomplete": pct,
                "prioritycode": priority,
                "scheduledend": "2026-05-01T00:00:00Z",
            },
        )
    form = ListForm("tasks", conn)
    form.add_row("prioritycode").set("eq", "High")
    form.add_row("percentcomplete").set("ge", "50")
    form.add_row("scheduledend").set("onorafter", "04/30/2026")
    form.raw.value = f"startswith(subject,'{tag}')"
    form.orderby.value = "percentcomplete"
    form.descending.value = True
    form.top.value = 5
    frame = form.run()
    assert list(frame["subject"]) == [f"{tag} 60"]
    assert "$filter=" in form.preview.value and "$top=5" in form.preview.value


def test_a_bad_value_is_flagged_on_its_row_and_nothing_runs(conn):
    form = ListForm("tasks", conn)
    row = form.add_row("percentcomplete")
    row.set("gt", "lots")
    assert form.run() is None
    assert "not a whole number" in row.field.error.value
    assert form.result is None


def test_a_malformed_raw_filter_shows_the_server_message_inline(conn):
    form = ListForm("tasks", conn)
    form.raw.value = "subject eq 'unterminated"
    assert form.run() is None
    assert "d365nb-error" in form.status.value
    assert "Traceback" not in form.status.value


def test_changing_the_table_rebuilds_columns_and_clears_rows(conn):
    form = ListForm("tasks", conn)
    form.add_row("subject")
    form.table.value = "lead"
    assert form.rows == []
    assert ("Last Name (lastname)", "lastname") in form.columns.options
    assert form.meta.entity_set == "leads"


def test_an_unticked_boolean_condition_means_no(conn, reader):
    form = ListForm("accounts", conn)
    form.add_row("creditonhold").set("eq")  # the box is left unticked
    form.columns.value = ("name",)
    form.top.value = 0
    frame = form.run()
    assert frame is not None, form.status.value
    expected = reader.query("accounts", select="name", filter="creditonhold eq false")
    assert sorted(frame.index) == sorted(r["accountid"] for r in expected)
    everyone = reader.count("accounts")
    assert 0 < len(frame) < everyone  # a real condition, not "no filter"


def test_a_bad_row_value_is_one_plain_line_in_the_status(conn):
    form = ListForm("tasks", conn)
    form.add_row("percentcomplete").set("gt", "lots")
    form.run()
    assert "not a whole number" in form.status.value
    assert "ValueError" not in form.status.value


def test_a_contains_row_matches_percent_and_underscore_as_typed(conn, reader):
    tag = unique("Wild").replace(" ", "")
    for subject in (f"{tag} 50% off", f"{tag} 500 off", f"{tag} a_b", f"{tag} axb"):
        reader.create("tasks", {"subject": subject})
    form = ListForm("tasks", conn)
    row = form.add_row("subject")
    form.columns.value = ("subject",)
    row.set("contains", f"{tag} 50%")
    assert sorted(form.run()["subject"]) == [f"{tag} 50% off"]
    row.set("contains", f"{tag} a_b")
    assert sorted(form.run()["subject"]) == [f"{tag} a_b"]
    form.remove_row(row)
    form.raw.value = f"contains(subject,'{tag} a_b') or contains(subject,'{tag} a%b')"
    # The raw OData box is OData as written: its wildcards stay wildcards.
    assert sorted(form.run()["subject"]) == [f"{tag} a_b", f"{tag} axb"]
