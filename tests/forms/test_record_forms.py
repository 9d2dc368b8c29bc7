"""Create / update / get / delete forms for every demo table, checked in the sandbox over HTTP."""

from __future__ import annotations

import html
import uuid

import pytest

from d365nb.notebook.forms import CreateForm, DeleteForm, GetForm, UpdateForm
from d365nb.notebook.forms import columns as cols
from tests.support.forms import DEMO_TABLES, fill, stored, unique


@pytest.mark.parametrize("table", DEMO_TABLES)
def test_create_form_creates_the_record_it_shows(conn, reader, table):
    form = CreateForm(table, conn)
    expected = fill(form)
    form.button.click()
    assert "d365nb-ok" in form.status.value, form.status.value
    record = reader.get(form.meta.entity_set, form.result)
    assert record is not None
    for name, value in expected.items():
        assert stored(record, form.meta.columns[name]) == value, name


@pytest.mark.parametrize("table", DEMO_TABLES)
def test_create_form_refuses_missing_required_fields_before_sending(conn, reader, table):
    form = CreateForm(table, conn)
    # A required Yes/No column is a checkbox: it always holds a value, so it is never missing.
    required = [f for f in form.fields.values() if f.required and f.column.type != "Boolean"]
    assert required, "every demo table has a required field"
    before = reader.count(form.meta.entity_set)
    form.button.click()
    assert form.result is None
    assert all("is required" in f.error.value for f in required)
    assert "fix the marked field" in form.status.value
    assert reader.count(form.meta.entity_set) == before


def test_create_form_flags_a_too_long_subject_inline_and_sends_nothing(conn, reader):
    form = CreateForm("tasks", conn)
    before = reader.count("tasks")
    form.fields["subject"].input.value = "x" * 201
    form.fields["percentcomplete"].input.value = "150"
    form.button.click()
    assert "at most 200" in form.fields["subject"].error.value
    assert "above the maximum 100" in form.fields["percentcomplete"].error.value
    assert reader.count("tasks") == before


def test_create_task_with_a_regarding_account_picked_by_search(conn, reader):
    account_name = unique("Picker Account")
    account_id = reader.create("accounts", {"name": account_name})
    form = CreateForm("tasks", conn)
    form.fields["subject"].input.value = "Call back"
    form.fields["scheduledend"].text.value = "12/24/2026"
    form.fields["prioritycode"].set("High")
    picker = form.fields["regardingobjectid"].picker
    picker.target.value = "account"
    found = picker.search(account_name[:-2])
    assert (account_name, account_id) in found
    picker.results.value = account_id
    form.button.click()
    record = reader.get("tasks", form.result)
    assert record["_regardingobjectid_value"] == account_id
    assert record["scheduledend"].startswith("2026-12-24")
    assert record["prioritycode"] == 2


def test_server_errors_show_inline_not_as_tracebacks(conn, reader):
    form = CreateForm("tasks", conn)
    form.fields["subject"].input.value = "Regarding nobody"
    form.fields["regardingobjectid"].picker.pick("account", str(uuid.uuid4()), "ghost")
    assert form.submit() is None
    assert "d365nb-error" in form.status.value
    assert "Traceback" not in form.status.value
    assert form.result is None


def test_a_missing_lookup_target_is_flagged_on_its_lookup_field(conn, reader):
    # Dataverse names the missing record only by id: the form finds the field that picked it.
    form = CreateForm("contacts", conn)
    form.fields["lastname"].input.value = unique("Orphan")
    ghost = str(uuid.uuid4())
    form.fields["parentcustomerid"].picker.pick("account", ghost, "ghost")
    before = reader.count("contacts")
    assert form.submit() is None
    assert "Does Not Exist" in form.fields["parentcustomerid"].error.value
    assert ghost in form.fields["parentcustomerid"].error.value
    assert not form.fields["lastname"].error.value
    assert reader.count("contacts") == before


def created_with_a_form(table, conn) -> str:
    """The id of a new record of ``table``, created by filling in and submitting its create form."""
    creator = CreateForm(table, conn)
    fill(creator)
    record_id = creator.submit()
    assert record_id, creator.status.value
    return record_id


def stored_name(form, field):
    return f"_{field.name}_value" if cols.kind(field.column) == cols.LOOKUP else field.name


@pytest.mark.parametrize("table", DEMO_TABLES)
def test_update_form_loads_the_picked_record_and_saves_only_changes(conn, reader, table):
    record_id = created_with_a_form(table, conn)
    form = UpdateForm(table, conn)
    meta = form.meta
    name_field = next(
        f
        for f in form.fields.values()
        if cols.kind(f.column) == cols.TEXT and f.name != meta.primary_name and not f.required
    )
    picker = form.picker
    found = picker.search(record_id)  # a pasted id finds its record
    assert [rid for _, rid in found] == [record_id]
    picker.results.value = record_id
    assert form.record_id == record_id
    before = reader.get(meta.entity_set, record_id)
    new_text = unique("Changed")[: name_field.column.max_length]
    name_field.input.value = new_text
    form.button.click()
    assert "updated 1 field" in form.status.value, form.status.value
    after = reader.get(meta.entity_set, record_id)
    assert after[name_field.name] == new_text
    # Every other editable column keeps its value (computed ones like fullname may follow).
    others = [stored_name(form, f) for f in form.fields.values() if f.name != name_field.name]
    unchanged = {k: before.get(k) for k in others}
    assert {k: after.get(k) for k in unchanged} == unchanged


def test_update_form_clears_a_field_emptied_by_the_person(conn, reader):
    record_id = reader.create("tasks", {"subject": unique("Clear me"), "category": "Phone"})
    form = UpdateForm("tasks", conn, record_id=record_id)
    assert form.fields["category"].input.value == "Phone"
    form.fields["category"].input.value = ""
    assert form.submit()
    assert reader.get("tasks", record_id)["category"] is None


def test_update_form_flags_bad_values_and_leaves_the_record_alone(conn, reader):
    record_id = reader.create("tasks", {"subject": unique("Keep"), "percentcomplete": 10})
    form = UpdateForm("tasks", conn, record_id=record_id)
    form.fields["percentcomplete"].input.value = "-1"
    assert not form.submit()
    assert "below the minimum 0" in form.fields["percentcomplete"].error.value
    assert reader.get("tasks", record_id)["percentcomplete"] == 10


@pytest.mark.parametrize("table", DEMO_TABLES)
def test_get_form_shows_the_picked_record(conn, reader, table):
    form = GetForm(table, conn)
    found = form.picker.search("")
    assert found
    label, record_id = found[0]
    form.picker.results.value = record_id
    assert form.result[form.meta.primary_id] == record_id
    assert reader.get(form.meta.entity_set, record_id)[form.meta.primary_id] == record_id
    assert record_id in form.view.value


@pytest.mark.parametrize("table", DEMO_TABLES)
def test_delete_form_asks_before_deleting(conn, reader, table):
    record_id = created_with_a_form(table, conn)
    form = DeleteForm(table, conn)
    form.picker.search(record_id)
    form.picker.results.value = record_id
    form.button.click()
    assert form.asking
    name = reader.get(form.meta.entity_set, record_id)[form.meta.primary_name]
    assert f"<b>{html.escape(name)}</b>" in form.question.value  # says which record goes
    assert f"{form.meta.entity_set}({record_id})" in form.question.value
    assert reader.get(form.meta.entity_set, record_id) is not None  # nothing deleted yet
    form.confirm_button.click()
    assert not form.asking
    assert reader.get(form.meta.entity_set, record_id) is None
    assert form.result == record_id


def test_delete_cancelled_keeps_the_record(conn, reader):
    record_id = reader.create("tasks", {"subject": unique("Keep me")})
    form = DeleteForm("tasks", conn)
    form.picker.pick("task", record_id)
    form.ask()
    form.cancel_button.click()
    assert reader.get("tasks", record_id) is not None
    assert not form.confirm()  # confirming without asking again deletes nothing
    assert reader.get("tasks", record_id) is not None


def test_delete_without_a_pick_says_so(conn):
    form = DeleteForm("tasks", conn)
    form.button.click()
    assert "pick a record first" in form.status.value
    assert not form.asking


def test_update_form_shows_the_current_lookup_and_can_repoint_it(conn, reader):
    first = reader.create("accounts", {"name": unique("First")})
    second_name = unique("Second")
    second = reader.create("accounts", {"name": second_name})
    task_id = reader.create(
        "tasks",
        {
            "subject": unique("Repoint"),
            "regardingobjectid_account_task@odata.bind": f"/accounts({first})",
        },
    )
    form = UpdateForm("tasks", conn, record_id=task_id)
    picker = form.fields["regardingobjectid"].picker
    assert picker.value == ("accounts", first)
    assert first in picker.chosen.value
    picker.search(second_name)
    picker.results.value = second
    assert form.submit()
    assert "regardingobjectid" in form.status.value
    assert reader.get("tasks", task_id)["_regardingobjectid_value"] == second


def test_set_fills_fields_like_typing_including_lookups_by_type_and_id(conn, reader):
    account_id = reader.create("accounts", {"name": unique("Set")})
    form = CreateForm("tasks", conn)
    form.set(
        subject="Set by code",
        prioritycode="Low",
        scheduledend="01/02/2027",
        regardingobjectid=("account", account_id),
    )
    record = reader.get("tasks", form.submit())
    assert (record["subject"], record["prioritycode"], record["_regardingobjectid_value"]) == (
        "Set by code",
        0,
        account_id,
    )
    assert record["scheduledend"].startswith("2027-01-02")
    with pytest.raises(
        ValueError, match=r"'colour' is not a field of this form \(fields: subject, "
    ):
        form.set(colour="red")


def test_update_form_loads_a_record_holding_a_removed_choice_value(conn, reader, sandbox_handle):
    # Dataverse keeps a removed option's value on old records; the store is written directly
    # because the Web API (rightly) refuses to write an unknown option.
    record_id = reader.create("tasks", {"subject": unique("Old option"), "prioritycode": 1})
    sandbox_handle.org.store.update("task", record_id, {"prioritycode": 7})
    form = UpdateForm("tasks", conn, record_id=record_id)
    assert form.record_id == record_id, form.status.value
    assert "7 is not a choice of Priority any more" in form.fields["prioritycode"].error.value
    assert form.fields["subject"].input.value.startswith("Old option")
    form.fields["category"].input.value = "Still editable"
    assert form.submit(), form.status.value
    after = reader.get("tasks", record_id)
    assert (after["category"], after["prioritycode"]) == ("Still editable", 7)  # left alone
