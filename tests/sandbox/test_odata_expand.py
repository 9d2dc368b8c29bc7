"""$expand: single-valued (incl. per-target polymorphic navs), one-to-many with nested options,
one query per navigation property and level (no N+1), and the documented refusals."""

from __future__ import annotations

import pytest

from d365nb.sandbox import odata, schema
from d365nb.sandbox.store import Store

USER = "11111111-1111-1111-1111-111111111111"
CONTOSO = "aaaaaaaa-0000-0000-0000-000000000001"
FABRIKAM = "aaaaaaaa-0000-0000-0000-000000000002"
ANN = "cccccccc-0000-0000-0000-000000000001"
LEAD = "dddddddd-0000-0000-0000-000000000001"


@pytest.fixture(scope="module")
def db():
    store = Store(schema.load(), None)
    store.insert_many(
        "systemuser",
        [{"systemuserid": USER, "firstname": "Cal", "lastname": "Ler", "domainname": "c@x"}],
    )
    owner = {"ownerid": USER, "ownerid__type": "systemuser"}
    store.insert_many(
        "contact", [{"contactid": ANN, "firstname": "Ann", "lastname": "Lee", **owner}]
    )
    store.insert_many(
        "account",
        [
            {
                "accountid": CONTOSO,
                "name": "Contoso",
                "primarycontactid": ANN,
                "primarycontactid__type": "contact",
                **owner,
            },
            {
                "accountid": FABRIKAM,
                "name": "Fabrikam",
                "parentaccountid": CONTOSO,
                "parentaccountid__type": "account",
                **owner,
            },
        ],
    )
    store.insert_many("lead", [{"leadid": LEAD, "subject": "Lead", "lastname": "L", **owner}])
    regarding = [(CONTOSO, "account")] * 3 + [
        (FABRIKAM, "account"),
        (ANN, "contact"),
        (LEAD, "lead"),
    ]
    store.insert_many(
        "task",
        [
            {
                "subject": f"task {i}",
                "regardingobjectid": rid,
                "regardingobjectid__type": kind,
                "percentcomplete": i * 10,
                "statecode": i % 2,
                **owner,
            }
            for i, (rid, kind) in enumerate(regarding)
        ],
    )
    yield store
    store.close()


def run(db, table, params):
    return odata.execute(db.conn, db.schema, table, params, user_id=USER, page_size=5000)


def by_name(result, key="name"):
    return {row[key]: row for row in result.rows}


def test_single_valued_expand_with_nested_select(db):
    result = run(
        db, "account", {"$select": "name", "$expand": "primarycontactid($select=fullname)"}
    )
    rows = by_name(result)
    contact = odata.expanded(rows["Contoso"], "primarycontactid")
    assert contact["contactid"] == ANN and contact["fullname"] == "Ann Lee"
    assert "lastname" not in contact
    assert rows["Contoso"]["primarycontactid"] == ANN  # the lookup id stays beside it
    assert odata.expanded(rows["Fabrikam"], "primarycontactid") is None
    plan = result.expand["primarycontactid"]
    assert (plan.kind, plan.table, plan.select) == ("single", "contact", ["fullname"])


def test_per_target_navigation_of_a_polymorphic_lookup(db):
    result = run(
        db,
        "task",
        {
            "$select": "subject",
            "$expand": "regardingobjectid_account_task($select=name),"
            "regardingobjectid_lead_task($select=subject)",
        },
    )
    rows = by_name(result, "subject")
    assert odata.expanded(rows["task 0"], "regardingobjectid_account_task")["name"] == "Contoso"
    assert odata.expanded(rows["task 0"], "regardingobjectid_lead_task") is None
    assert odata.expanded(rows["task 5"], "regardingobjectid_lead_task")["subject"] == "Lead"
    assert odata.expanded(rows["task 4"], "regardingobjectid_account_task") is None


def test_collection_expand_with_nested_select_filter_orderby_top(db):
    result = run(
        db,
        "account",
        {
            "$select": "name",
            "$expand": "Account_Tasks($select=subject;$filter=statecode eq 0;"
            "$orderby=percentcomplete desc;$top=1)",
        },
    )
    rows = by_name(result)
    contoso_tasks = odata.expanded(rows["Contoso"], "Account_Tasks")
    assert [t["subject"] for t in contoso_tasks] == ["task 2"]
    assert odata.expanded(rows["Fabrikam"], "Account_Tasks") == []
    plan = result.expand["Account_Tasks"]
    assert plan.kind == "collection" and plan.table == "task"
    assert plan.options.startswith("$select=subject;")


def test_collection_expand_without_top_returns_all_children_in_order(db):
    result = run(db, "account", {"$expand": "Account_Tasks($orderby=subject desc)"})
    contoso = by_name(result)["Contoso"]
    assert [t["subject"] for t in odata.expanded(contoso, "Account_Tasks")] == [
        "task 2",
        "task 1",
        "task 0",
    ]


def test_nested_expand_inside_a_collection(db):
    result = run(
        db,
        "account",
        {
            "$filter": "name eq 'Contoso'",
            "$expand": "Account_Tasks($select=subject;$expand=ownerid($select=fullname))",
        },
    )
    tasks = odata.expanded(result.rows[0], "Account_Tasks")
    assert {odata.expanded(t, "ownerid")["fullname"] for t in tasks} == {"Cal Ler"}


def test_one_query_per_expand_level_whatever_the_row_count(db):
    statements = []
    db.conn.set_trace_callback(statements.append)
    try:
        run(
            db,
            "task",
            {
                "$expand": "regardingobjectid_account_task($select=name;"
                "$expand=primarycontactid($select=fullname)),ownerid($select=fullname)"
            },
        )
    finally:
        db.conn.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # tasks, their accounts, those accounts' contacts, and the owners (users; teams have no ids)
    assert len(selects) == 4


def test_expand_of_unknown_navigation(db):
    with pytest.raises(odata.ODataError, match="Could not find a property named 'Nope'"):
        run(db, "account", {"$expand": "Nope"})


def test_more_than_fifteen_expands_are_refused(db):
    items = ",".join(["primarycontactid"] * 8 + ["parentaccountid"] * 8)
    with pytest.raises(odata.ODataError, match="maximum limit"):
        run(db, "account", {"$expand": items})


def test_ref_on_collection_is_refused(db):
    with pytest.raises(odata.ODataError, match=r"Expand with \$ref is only supported"):
        run(db, "account", {"$expand": "Account_Tasks/$ref"})


def test_unsupported_nested_option(db):
    with pytest.raises(odata.ODataError, match=r"\$skip"):
        run(db, "account", {"$expand": "Account_Tasks($skip=1)"})


def test_collection_rows_carry_the_lookup_back_to_their_parent(db):
    """The plan keeps exactly what was selected (the context URL echoes it); the rows still carry
    the lookup back to the parent, which the HTTP writer adds to single-level expansions as
    Dataverse does (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/
    join-tables)."""
    result = run(db, "account", {"$select": "name", "$expand": "Account_Tasks($select=subject)"})
    assert result.expand["Account_Tasks"].select == ["subject"]
    children = [t for r in result.rows for t in odata.expanded(r, "Account_Tasks")]
    assert children and all(t["regardingobjectid"] for t in children)


def test_top_or_orderby_beside_a_nested_expand_is_refused_as_dataverse_does(db):
    message = r"Only \$select and \$filter clause can be provided"
    with pytest.raises(odata.ODataError, match=message):
        run(db, "account", {"$expand": "Account_Tasks($top=1;$expand=ownerid($select=fullname))"})
    with pytest.raises(odata.ODataError, match=message):
        run(
            db,
            "account",
            {"$expand": "Account_Tasks($orderby=subject),primarycontactid($expand=createdby)"},
        )
    with pytest.raises(odata.ODataError, match=message):
        run(db, "account", {"$expand": "primarycontactid($top=1)"})


def test_an_expanded_collection_stops_at_5000_rows_per_parent():
    store = Store(schema.load(), None)
    try:
        store.insert_many("account", [{"accountid": CONTOSO, "name": "Contoso"}])
        store.insert_many(
            "task",
            [
                {
                    "subject": f"t{i}",
                    "regardingobjectid": CONTOSO,
                    "regardingobjectid__type": "account",
                }
                for i in range(5001)
            ],
        )
        result = run(store, "account", {"$expand": "Account_Tasks($select=subject)"})
        assert len(odata.expanded(result.rows[0], "Account_Tasks")) == 5000
    finally:
        store.close()
