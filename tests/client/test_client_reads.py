"""Reading over real loopback HTTP: list, paging, get, labels, whoami, metadata."""

import asyncio

import pandas as pd

from d365nb.client.api import AsyncDataverse
from d365nb.client.query import format_filter


def test_list_returns_a_frame_indexed_by_primary_id_with_metadata_dtypes(d365):
    df = d365.list("leads", select="subject,statuscode,ownerid,createdon", top=20)
    assert df.index.name == "leadid" and len(df) == 20
    assert list(df.columns) == ["subject", "statuscode", "_ownerid_value", "createdon"]
    assert str(df["subject"].dtype) == "string"
    assert str(df["statuscode"].dtype) == "Int64"
    assert str(df["createdon"].dt.tz) == "UTC"
    assert df.attrs["table"] == "lead" and df.attrs["pages"] == 1


def test_tables_are_accepted_by_logical_or_entity_set_name(d365):
    a = d365.list("lead", select="subject", orderby="subject", top=3)
    b = d365.list("leads", select="subject", orderby="subject", top=3)
    pd.testing.assert_frame_equal(a.drop(columns=[]), b, check_like=True)


def test_paging_follows_next_links_and_keeps_the_page_size(d365):
    total = d365.list("leads", select="leadid", count=True, top=None, page_size=5000)
    pages = list(d365.iter_pages("leads", select="subject", page_size=40))
    assert all(len(p) <= 40 for p in pages) and len(pages) > 1
    assert sum(len(p) for p in pages) == len(total)
    ids = [r["leadid"] for p in pages for r in p]
    assert len(set(ids)) == len(ids)


def test_list_collects_all_pages_and_reports_progress(d365):
    seen = []
    df = d365.list(
        "leads",
        select="subject",
        page_size=100,
        count=True,
        progress=lambda rows, count: seen.append(rows),
    )
    assert df.attrs["pages"] == len(seen) > 1
    assert seen[-1] == len(df)


def test_max_pages_stops_early(d365):
    df = d365.list("leads", select="subject", page_size=10, max_pages=2)
    assert len(df) == 20 and df.attrs["pages"] == 2


def test_filter_with_safe_interpolation(d365):
    some = d365.list("leads", select="lastname", top=1)
    name = some["lastname"].iloc[0]
    df = d365.list("leads", filter=format_filter("lastname eq {n}", n=name), select="lastname")
    assert len(df) >= 1 and set(df["lastname"].str.lower()) == {name.lower()}


def test_empty_result_keeps_its_columns(d365):
    df = d365.list("leads", filter="lastname eq 'no-such-name-xyz'", select="subject,ownerid")
    assert len(df) == 0
    assert list(df.columns) == ["subject", "_ownerid_value"] and df.index.name == "leadid"


def test_labels_turn_choice_codes_into_labels(d365):
    df = d365.list("leads", select="statuscode", top=50, labels=True)
    assert set(df["statuscode"].dropna()) <= {
        "New",
        "Contacted",
        "Qualified",
        "Lost",
        "Cannot Contact",
        "No Longer Interested",
        "Canceled",
    }


def test_get_returns_the_record_with_formatted_values(d365):
    lead_id = d365.list("leads", select="subject", top=1).index[0]
    record = d365.get("leads", lead_id)
    assert record["leadid"] == lead_id
    assert "statuscode@OData.Community.Display.V1.FormattedValue" in record


def test_whoami_names_user_business_unit_and_organisation(d365):
    me = d365.whoami()
    assert set(me) == {"UserId", "BusinessUnitId", "OrganizationId"} and all(me.values())


def test_tables_and_describe(d365):
    tables = d365.tables()
    assert {"lead", "task", "account"} <= set(tables.index)
    assert tables.loc["task", "entity_set"] == "tasks"
    desc = d365.describe("tasks")
    assert desc.loc["subject", "type"] == "String" and desc.loc["subject", "max_length"] == 200
    assert desc.loc["subject", "required"] == "ApplicationRequired"  # the level, not a bool
    assert desc.loc["ownerid", "required"] == "SystemRequired"
    assert desc.loc["description", "required"] == "None"
    assert d365.metadata.table("tasks").columns["subject"].required is True
    assert desc.loc["prioritycode", "choices"] == {0: "Low", 1: "Normal", 2: "High"}
    assert desc.loc["regardingobjectid", "targets"] == ["account", "contact", "lead", "opportunity"]


def test_metadata_cache_answers_without_requests_once_loaded(d365):
    assert d365.metadata.cached_columns("leads") == []
    d365.metadata.table("leads")
    d365.metadata.table("tasks")
    sent = d365.requests_sent
    assert "subject" in d365.metadata.cached_columns("leads")
    assert "leads" in d365.metadata.cached_table_names()
    assert d365.metadata.table("lead").navigation("ownerid", "team") == "ownerid"
    assert d365.metadata.table("task").navigation("regardingobjectid", "lead") == (
        "regardingobjectid_lead_task"
    )
    assert d365.requests_sent == sent


def test_async_connection_does_the_same_reads(sandbox):
    async def main():
        async with AsyncDataverse(sandbox.url, token=sandbox.token) as conn:
            df = await conn.list("leads", select="subject", page_size=25, max_pages=2)
            pages = [
                p
                async for p in conn.iter_pages("leads", select="subject", page_size=10, max_pages=3)
            ]
            me = await conn.whoami()
            return df, pages, me

    df, pages, me = asyncio.run(main())
    assert len(df) == 50 and df.index.name == "leadid"
    assert [len(p) for p in pages] == [10, 10, 10]
    assert me["UserId"]


def test_labels_put_each_lookups_record_name_beside_its_id(d365):
    # Other tests add tasks to the shared sandbox: ask for ones with a regarding record.
    regarding = "_regardingobjectid_value ne null"
    df = d365.list(
        "tasks", select="subject,regardingobjectid,ownerid", filter=regarding, top=20, labels=True
    )
    assert list(df.columns) == [
        "subject",
        "_regardingobjectid_value",
        "regardingobjectid_label",
        "_ownerid_value",
        "ownerid_label",
    ]
    assert str(df["ownerid_label"].dtype) == "string"
    task_id = df["_regardingobjectid_value"].first_valid_index()
    record = d365.get("tasks", task_id)  # the service's own formatted values, read raw
    formatted = "@OData.Community.Display.V1.FormattedValue"
    assert (
        df.loc[task_id, "regardingobjectid_label"] == record[f"_regardingobjectid_value{formatted}"]
    )
    assert df.loc[task_id, "ownerid_label"] == record[f"_ownerid_value{formatted}"]
    owner = d365.get("systemusers", df.loc[task_id, "_ownerid_value"], select="fullname")
    assert df.loc[task_id, "ownerid_label"] == owner["fullname"]
    empty = d365.list("tasks", filter="subject eq 'no such task'", select="ownerid", labels=True)
    assert list(empty.columns) == ["_ownerid_value", "ownerid_label"]  # same shape when empty
    plain = d365.list("tasks", select="subject,ownerid", top=1)
    assert list(plain.columns) == ["subject", "_ownerid_value"]  # labels only when asked
