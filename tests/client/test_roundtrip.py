"""A DataFrame read by ``list``, edited, goes back with ``update_many(table, df)``: only the
changed cells are sent, each record with ``If-Match`` on the etag it was read with, and columns
that cannot be written are skipped and named. Over loopback HTTP against a fresh sandbox.

https://learn.microsoft.com/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api
"""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture
def leads(empty_d365):
    ids = [
        empty_d365.create("leads", {"lastname": f"Round{i}", "subject": f"s{i}", "revenue": 10.0 * i})
        for i in range(4)
    ]
    return empty_d365, ids


def _read(conn):
    return conn.list(
        "leads",
        select="lastname,subject,revenue,statuscode,createdon,modifiedon,ownerid",
        orderby="lastname asc",
        labels=True,
    )


def test_only_changed_cells_are_planned_and_written(leads):
    conn, ids = leads
    df = _read(conn)
    df.loc[ids[0], "subject"] = "changed"
    df.loc[ids[1], "revenue"] = 99.5
    df.loc[ids[2], "statuscode"] = "Contacted"  # a label: sent as its value
    df.loc[ids[3], "createdon"] = pd.Timestamp("2020-01-01", tz="UTC")  # read-only: skipped

    plan = conn.update_many("leads", df, dry_run=True).plan
    assert sorted(plan.ids) == sorted(ids[:3])
    assert sorted(map(tuple, plan.changes[["column", "new"]].astype(str).values)) == sorted(
        [("subject", "changed"), ("revenue", "99.5"), ("statuscode", "Contacted")]
    )
    skipped = plan.skipped
    assert (skipped["createdon"], skipped["modifiedon"]) == ("read-only", "read-only")
    assert skipped["ownerid_label"] == "formatted"  # the owner's name, not a column
    assert skipped["_ownerid_value"].startswith("lookups to several tables")  # user or team
    assert not set(skipped) & {"lastname", "subject", "revenue", "statuscode"}
    assert "1 edited cell in them not sent" in plan.skipped_line()
    versions = {i: conn.get("leads", i, select="versionnumber")["versionnumber"] for i in ids}
    after_dry = {i: conn.get("leads", i, select="versionnumber")["versionnumber"] for i in ids}
    assert versions == after_dry  # the dry run wrote nothing

    sent_before = conn.requests_sent
    result = conn.update_many("leads", df)
    assert result.ok and result.succeeded == 3
    assert conn.requests_sent - sent_before == 1  # one $batch: metadata is cached
    now = {i: conn.get("leads", i, select="subject,revenue,statuscode,versionnumber") for i in ids}
    assert now[ids[0]]["subject"] == "changed"
    assert now[ids[1]]["revenue"] == 99.5
    assert now[ids[2]]["statuscode"] == 2
    assert now[ids[3]]["versionnumber"] == versions[ids[3]]  # untouched row: not written

    again = conn.update_many("leads", df, dry_run=True).plan
    assert again.ids == []  # the same edits are not sent twice


def test_a_record_changed_since_the_read_fails_alone_with_412(leads):
    conn, ids = leads
    df = _read(conn)
    conn.update("leads", ids[0], {"subject": "someone else"})
    df["subject"] = "mine"
    result = conn.update_many("leads", df)
    assert result.failed == 1 and result.errors[list(result.plan.ids).index(ids[0])].status == 412
    assert "changed by someone else" in str(result.errors[list(result.plan.ids).index(ids[0])])
    assert conn.get("leads", ids[0], select="subject")["subject"] == "someone else"
    assert all(conn.get("leads", i, select="subject")["subject"] == "mine" for i in ids[1:])


def test_a_frame_not_read_by_list_is_a_plain_bulk_update(leads):
    conn, ids = leads
    frame = pd.DataFrame({"subject": ["plain"] * 2}, index=pd.Index(ids[:2], name="leadid"))
    result = conn.update_many("leads", frame)
    assert result.ok and not hasattr(result, "plan")
    assert conn.get("leads", ids[0], select="subject")["subject"] == "plain"
