"""The table definitions: the columns, limits and option sets of the wire doc §2, consistent."""

from __future__ import annotations

import pytest

from d365nb.sandbox import schema
from d365nb.sandbox.schema.model import LOOKUP_TYPES, REQUIRED_LEVELS


@pytest.fixture(scope="module")
def tables():
    return schema.load()


def test_the_six_tables_with_their_sets_keys_and_names(tables):
    expected = {
        "lead": ("leads", "leadid", "fullname"),
        "task": ("tasks", "activityid", "subject"),
        "account": ("accounts", "accountid", "name"),
        "contact": ("contacts", "contactid", "fullname"),
        "systemuser": ("systemusers", "systemuserid", "fullname"),
        "team": ("teams", "teamid", "name"),
    }
    found = {n: (t.entity_set, t.primary_id, t.primary_name) for n, t in tables.items()}
    assert {n: found.get(n) for n in expected} == expected


@pytest.mark.parametrize(
    ("table", "column", "kind", "max_length", "required"),
    [
        ("lead", "subject", "String", 300, "ApplicationRequired"),
        ("lead", "lastname", "String", 50, "ApplicationRequired"),
        ("lead", "firstname", "String", 50, "Recommended"),
        ("lead", "companyname", "String", 100, "Recommended"),
        ("lead", "emailaddress1", "String", 100, "None"),
        ("lead", "description", "Memo", 2000, "None"),
        ("lead", "mobilephone", "String", 20, "None"),
        ("lead", "fullname", "String", 160, "None"),
        ("task", "subject", "String", 200, "ApplicationRequired"),
        ("task", "category", "String", 250, "None"),
        ("account", "name", "String", 160, "ApplicationRequired"),
        ("contact", "lastname", "String", 50, "ApplicationRequired"),
    ],
)
def test_text_columns_match_the_wire_doc(tables, table, column, kind, max_length, required):
    col = tables[table].columns[column]
    assert (col.type, col.max_length, col.required) == (kind, max_length, required)


def test_lead_topic_display_name_and_dates(tables):
    lead = tables["lead"].columns
    assert lead["subject"].display == "Topic"
    assert lead["estimatedclosedate"].date_behavior == "DateOnly"
    assert lead["ownerid"].type == "Owner" and lead["ownerid"].required == "SystemRequired"
    assert set(lead["ownerid"].targets) == {"systemuser", "team"}
    assert set(lead["customerid"].targets) == {"account", "contact"}


def test_task_numbers_and_priority(tables):
    task = tables["task"].columns
    assert (task["percentcomplete"].min_value, task["percentcomplete"].max_value) == (0, 100)
    assert task["actualdurationminutes"].max_value == 2147483647
    assert {o.value: o.label for o in task["prioritycode"].options} == {
        0: "Low",
        1: "Normal",
        2: "High",
    }
    assert task["prioritycode"].default == 1
    assert set(task["regardingobjectid"].targets) == {"account", "contact", "lead", "opportunity"}
    navs = {r.navigation for r in task["regardingobjectid"].relationships}
    assert navs == {
        "regardingobjectid_account_task",
        "regardingobjectid_contact_task",
        "regardingobjectid_lead_task",
        "regardingobjectid_opportunity_task",
    }


@pytest.mark.parametrize(
    ("table", "states", "statuses"),
    [
        ("lead", {0: 1, 1: 3, 2: 4}, {1: 0, 2: 0, 3: 1, 4: 2, 5: 2, 6: 2, 7: 2}),
        ("task", {0: 2, 1: 5, 2: 6}, {2: 0, 3: 0, 4: 0, 7: 0, 5: 1, 6: 2}),
        ("account", {0: 1, 1: 2}, {1: 0, 2: 1}),
        ("contact", {0: 1, 1: 2}, {1: 0, 2: 1}),
    ],
)
def test_state_and_status_option_sets(tables, table, states, statuses):
    cols = tables[table].columns
    assert {o.value: o.default_status for o in cols["statecode"].options} == states
    assert {o.value: o.state for o in cols["statuscode"].options} == statuses


def test_every_table_is_consistent(tables):
    for table in tables.values():
        cols = table.columns
        assert table.primary_id in cols and table.primary_name in cols
        # activityparty is documented without audit columns (it lives inside its activity)
        audit = (
            ("versionnumber",)
            if table.logical_name == "activityparty"
            else ("createdon", "modifiedon", "createdby", "modifiedby", "versionnumber")
        )
        for name in audit:
            assert name in cols, (table.logical_name, name)
        assert ("ownerid" in cols) == (table.ownership == "UserOwned")
        for col in cols.values():
            assert col.required in REQUIRED_LEVELS
            if col.type in LOOKUP_TYPES:
                assert col.relationships and all(r.target in tables for r in col.relationships)
            if col.type in ("String", "Memo"):
                assert col.max_length
        # navigation names are unique within a table, except the shared owner navigation
        navs = [r.navigation for c in cols.values() for r in c.relationships if c.name != "ownerid"]
        assert len(navs) == len(set(navs))


def test_one_to_many_counterparts_have_their_real_names(tables):
    names = {
        r.schema_name for t in tables.values() for c in t.columns.values() for r in c.relationships
    }
    for expected in (
        "Account_Tasks",
        "Contact_Tasks",
        "Lead_Tasks",
        "contact_customer_accounts",
        "account_primary_contact",
        "lead_parent_account",
        "lk_leadbase_createdby",
    ):
        assert expected in names


def test_schema_derived_values_are_shared_by_the_same_tables_only():
    """Every organisation loads the same shipped tables into its own dict: one catalog serves
    them all, and a schema with a changed table (a metadata write) gets its own."""
    from dataclasses import replace

    from d365nb.sandbox.metadata.catalog import catalog_for
    from d365nb.sandbox.schema.cache import PerSchema

    first, second = schema.load(), schema.load()
    assert first is not second
    assert catalog_for(first) is catalog_for(second)
    changed = {**first, "lead": replace(first["lead"], columns=dict(first["lead"].columns))}
    assert catalog_for(changed) is not catalog_for(first)

    built = []
    cache = PerSchema(lambda s: built.append(len(s)) or len(built), size=2)
    assert [cache(first), cache(second), cache(changed)] == [1, 1, 2]
    third = {**first, "task": replace(first["task"])}
    cache(third)  # a third schema pushes out the least recently used (`first`)
    assert cache(changed) == 2 and cache(first) == 4
