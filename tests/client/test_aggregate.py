"""`d365.aggregate(...)` and `d365.fetchxml(...)` against the sandbox over loopback HTTP.

Aggregates are sent as ONE `$apply` request
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/aggregate-data),
or FetchXML where `$apply` cannot say it (count of a column's values, date parts:
https://learn.microsoft.com/power-apps/developer/data-platform/fetchxml/aggregate-data);
`fetchxml(all_pages=True)` follows the paging cookies as
https://learn.microsoft.com/power-apps/developer/data-platform/fetchxml/page-results describes.
"""

from __future__ import annotations

import asyncio
import warnings

import pandas as pd
import pytest

from d365nb.client.api import Dataverse, TruncatedRead
from d365nb.client.errors import BadRequest, UnknownColumn, ValidationError

AGG = {
    "n": "count()",
    "total": "sum(estimatedvalue)",
    "avg_x": "avg(estimatedvalue)",
    "u": "countdistinct(ownerid)",
    "lo": "min(createdon)",
    "hi": "max(estimatedvalue)",
}


def _raw_groups(api, apply: str) -> list[dict]:
    r = api.get("leads", params={"$apply": apply})
    assert r.status_code == 200, r.text
    return r.json()["value"]


def _warm(d365) -> int:
    """Load the lead metadata once; return the request counter after it."""
    d365.metadata.table("leads")
    return d365.requests_sent


def test_aggregate_is_one_apply_request_with_one_row_per_group(d365, api):
    before = _warm(d365)
    frame = d365.aggregate("leads", groupby=["statuscode"], agg=AGG)
    assert d365.requests_sent - before == 1
    assert list(frame.columns) == ["statuscode", "n", "total", "avg_x", "u", "lo", "hi"]
    expected = _raw_groups(
        api,
        "groupby((statuscode),aggregate($count as n,estimatedvalue with sum as total,"
        "estimatedvalue with average as avg_x,_ownerid_value with countdistinct as u,"
        "createdon with min as lo,estimatedvalue with max as hi))",
    )
    assert len(frame) == len(expected) and len(frame) > 1
    for (_, row), want in zip(frame.iterrows(), expected, strict=True):
        assert row["statuscode"] == want["statuscode"]
        assert row["n"] == want["n"] and row["u"] == want["u"]
        assert row["total"] == pytest.approx(want["total"])
        assert row["avg_x"] == pytest.approx(want["avg_x"])
        assert row["hi"] == pytest.approx(want["hi"])
        assert row["lo"] == pd.Timestamp(want["lo"])
    assert frame.attrs["query"] == {"$apply": frame.attrs["query"]["$apply"]}
    assert str(frame["n"].dtype) == "Int64"
    assert str(frame["lo"].dtype).startswith("datetime64") and str(frame["lo"].dt.tz) == "UTC"


def test_agg_as_text_and_groupby_as_text(d365):
    frame = d365.aggregate(
        "leads", groupby="statuscode,statecode", agg="n=count(),t=sum(estimatedvalue)"
    )
    assert list(frame.columns) == ["statuscode", "statecode", "n", "t"]
    assert frame["n"].sum() == d365.aggregate("leads", agg="n=count()")["n"].iloc[0]


def test_aggregate_without_groupby_is_one_row(d365, api):
    frame = d365.aggregate("leads", agg={"n": "count()"}, filter="statuscode eq 1")
    expected = int(
        api.get("leads/$count", params={"$filter": "statuscode eq 1"}).text.lstrip("\ufeff")
    )
    assert frame.to_dict("records") == [{"n": expected}]


def test_groupby_without_agg_lists_the_distinct_values(d365):
    frame = d365.aggregate("leads", groupby="statecode")
    assert list(frame["statecode"]) == [0, 1, 2]


def test_labels_turn_choices_into_labels_and_name_lookups(d365):
    frame = d365.aggregate("leads", groupby=["statuscode", "ownerid"], agg={"n": "count()"},
                           labels=True)  # fmt: skip
    assert list(frame.columns) == ["statuscode", "_ownerid_value", "ownerid_label", "n"]
    assert isinstance(frame["statuscode"].dtype, pd.CategoricalDtype)
    assert set(frame["statuscode"].dropna()) <= {"New", "Contacted", "Qualified", "Lost",
                                                 "Cannot Contact", "No Longer Interested",
                                                 "Canceled"}  # fmt: skip
    assert frame["ownerid_label"].notna().all()


def test_count_of_a_column_is_sent_as_fetchxml_in_one_request(d365, api):
    before = _warm(d365)
    frame = d365.aggregate(
        "leads", groupby="statecode", agg={"n": "count()", "mail": "count(emailaddress1)"}
    )
    assert d365.requests_sent - before == 1
    assert "fetchXml" in frame.attrs["query"]
    for _, row in frame.iterrows():
        state = row["statecode"]
        with_mail = api.get("leads/$count", params={
            "$filter": f"statecode eq {state} and emailaddress1 ne null"}).text.lstrip("\ufeff")  # fmt: skip
        assert row["mail"] == int(with_mail)
        assert row["n"] >= row["mail"]


def test_group_by_a_date_part_is_sent_as_fetchxml(d365, api):
    frame = d365.aggregate("leads", groupby="createdon:year", agg="n=count()")
    assert list(frame.columns) == ["createdon_year", "n"]
    assert frame["n"].sum() == d365.aggregate("leads", agg="n=count()")["n"].iloc[0]
    assert all(2000 < year < 2100 for year in frame["createdon_year"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"groupby": "statuscod", "agg": "n=count()"}, "did you mean statuscode"),
        ({"agg": {"t": "sum(estimatedvalu)"}}, "did you mean estimatedvalue"),
        ({"agg": "n=cnt()"}, "did you mean count"),
        ({"agg": "n=sum(subject)"}, "sum needs a number"),
        ({"agg": "n=min(subject)"}, "min needs a number"),
        ({"agg": "n count"}, "expected alias=method(column)"),
        ({"agg": {"1n": "count()"}}, "must be an identifier"),
        ({"agg": {"n": "sum()"}}, "needs a column"),
        ({"agg": 5}, "agg must be a dict"),
        ({"groupby": "createdon"}, "createdon:month"),
        ({"groupby": "createdon:fortnight"}, "unknown date part"),
        ({"groupby": "subject:month"}, "not a date column"),
        ({}, "needs groupby columns, agg, or both"),
        ({"groupby": "statuscode", "agg": "statuscode=count()"}, "used twice"),
        ({"agg": "n=count()", "filter": "  "}, "blank"),
        ({"agg": "n=count(emailaddress1)", "filter": "statuscode eq 1"}, "d365.fetchxml"),
    ],
)
def test_bad_spec_is_one_line_and_sends_nothing(d365, kwargs, message):
    before = _warm(d365)
    with pytest.raises(ValidationError) as info:
        d365.aggregate("leads", **kwargs)
    text = str(info.value)
    assert message in text and "\n" not in text
    assert d365.requests_sent == before


def test_unknown_column_is_unknown_column(d365):
    with pytest.raises(UnknownColumn):
        d365.aggregate("leads", groupby="nosuch")


def test_over_the_aggregate_limit_says_how_to_narrow(sandbox, d365):
    sandbox.org.config["aggregate_limit"] = 10
    try:
        with pytest.raises(BadRequest) as info:
            d365.aggregate("leads", groupby="statuscode", agg="n=count()")
        assert info.value.code == "0x8004e023"
        assert any("filter=" in note for note in info.value.__notes__)
    finally:
        sandbox.org.config.pop("aggregate_limit", None)


def test_async_facade_aggregates_the_same(sandbox, d365):
    sync = d365.aggregate("leads", groupby="statuscode", agg="n=count()")

    async def run():
        adv = d365.aio()
        return await adv.aggregate("leads", groupby="statuscode", agg="n=count()")

    assert asyncio.run(run()).equals(sync)


def test_async_facade_runs_fetchxml_with_paging(d365):
    xml = LINKED.format(count=250)
    sync = d365.fetchxml(xml, all_pages=True)

    async def run():
        return await d365.aio().fetchxml(xml, all_pages=True)

    frame = asyncio.run(run())
    assert frame.attrs["pages"] == sync.attrs["pages"] > 1
    assert list(frame["contactid"]) == list(sync["contactid"])


# -- fetchxml ----------------------------------------------------------------------------------

LINKED = """<fetch count='{count}'>
  <entity name='contact'>
    <attribute name='fullname'/><attribute name='birthdate'/>
    <order attribute='contactid'/>
    <link-entity name='account' from='accountid' to='parentcustomerid' alias='acc' link-type='outer'>
      <attribute name='name'/>
    </link-entity>
  </entity>
</fetch>"""


def test_fetchxml_all_pages_follows_paging_cookies(d365, api):
    before = _warm(d365)
    frame = d365.fetchxml(LINKED.format(count=100), all_pages=True)
    total = int(api.get("contacts/$count").text.lstrip("\ufeff"))
    assert len(frame) == total and frame["contactid"].is_unique
    assert frame.attrs["pages"] == -(-total // 100) and frame.attrs["pages"] > 1
    assert not frame.attrs["truncated"]
    assert d365.requests_sent - before >= frame.attrs["pages"]
    assert list(frame["contactid"]) == sorted(frame["contactid"])


def test_fetchxml_link_columns_are_alias_dot_column(d365, api):
    frame = d365.fetchxml(LINKED.format(count=5000))
    assert {"fullname", "birthdate", "acc.name", "contactid"} <= set(frame.columns)
    assert str(frame["birthdate"].dtype).startswith("datetime64")
    some = frame[frame["acc.name"].notna()].iloc[0]
    contact = api.get(f"contacts({some['contactid']})",
                      params={"$expand": "parentcustomerid_account($select=name)"}).json()  # fmt: skip
    assert contact["parentcustomerid_account"]["name"] == some["acc.name"]


def test_fetchxml_first_page_only_warns_that_more_match(d365):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = d365.fetchxml(LINKED.format(count=10))
    assert len(frame) == 10 and frame.attrs["truncated"]
    assert any(issubclass(w.category, TruncatedRead) and "all_pages=True" in str(w.message)
               for w in caught)  # fmt: skip


def test_fetchxml_aggregate(d365):
    xml = ("<fetch aggregate='true'><entity name='lead'>"
           "<attribute name='statuscode' alias='status' groupby='true'/>"
           "<attribute name='leadid' alias='n' aggregate='count'/><order alias='status'/>"
           "</entity></fetch>")  # fmt: skip
    frame = d365.fetchxml(xml)
    apply = d365.aggregate("leads", groupby="statuscode", agg="n=count()")
    assert list(frame["status"]) == list(apply["statuscode"])
    assert list(frame["n"]) == list(apply["n"])


@pytest.mark.parametrize(
    "xml",
    ["", "<fetch><entity name='lead'>", "<query/>", "<fetch><entity/></fetch>", None],
)
def test_fetchxml_bad_text_is_refused_before_any_request(d365, xml):
    before = d365.requests_sent
    with pytest.raises(ValidationError):
        d365.fetchxml(xml)
    assert d365.requests_sent == before


def test_fetchxml_server_refusal_is_a_bad_request(d365):
    with pytest.raises(BadRequest) as info:
        d365.fetchxml("<fetch><entity name='lead'><attribute name='nosuch'/></entity></fetch>")
    assert info.value.code == "0x80041103"


def test_aggregate_on_an_empty_table_is_an_empty_frame(empty_sandbox):
    with Dataverse(empty_sandbox.url, token=empty_sandbox.token) as conn:
        frame = conn.aggregate("leads", groupby="statuscode", agg="n=count(),t=sum(estimatedvalue)")
    assert list(frame.columns) == ["statuscode", "n", "t"] and len(frame) == 0


def _long_query(attribute: str = "fullname") -> str:
    """A FetchXML whose URL-encoded form is longer than a GET URL may be (32,768)."""
    values = "".join(f"<value>nobody number {i}</value>" for i in range(1200))
    return (
        f"<fetch><entity name='contact'><attribute name='{attribute}'/><filter>"
        f"<condition attribute='lastname' operator='in'>{values}<value>O'Neil</value>"
        "</condition></filter></entity></fetch>"
    )


def test_fetchxml_too_long_for_a_url_goes_in_a_batch(d365, api):
    """retrieve-data.md: a FetchXML too long for a GET URL is sent inside `$batch`."""
    from urllib.parse import quote

    xml = _long_query()
    assert len(quote(xml, safe="")) > 32_768
    d365.metadata.table("contacts")
    before = d365.requests_sent
    frame = d365.fetchxml(xml)
    assert d365.requests_sent - before == 1
    expected = api.get(
        "contacts", params={"$filter": "lastname eq 'O''Neil'", "$select": "contactid"}
    ).json()["value"]
    assert set(frame["contactid"]) == {row["contactid"] for row in expected} and len(frame)


def test_fetchxml_refused_inside_a_batch_is_the_same_error(d365):
    with pytest.raises(BadRequest) as info:
        d365.fetchxml(_long_query("nosuch"))
    assert info.value.code == "0x80041103"


def test_aggregate_equals_pandas_on_the_rows_list_reads(d365):
    """The server's GROUP BY agrees with pandas grouping the very rows `list` returns."""
    rows = d365.list("leads", select="statuscode,estimatedvalue,ownerid,createdon")
    frame = d365.aggregate(
        "leads",
        groupby="statuscode",
        agg="n=count(),total=sum(estimatedvalue),u=countdistinct(ownerid),last=max(createdon)",
    ).set_index("statuscode")
    grouped = rows.groupby("statuscode")
    assert frame["n"].to_dict() == grouped.size().to_dict()
    for status, total in grouped["estimatedvalue"].sum().items():
        assert frame.loc[status, "total"] == pytest.approx(total)
    assert frame["u"].to_dict() == grouped["_ownerid_value"].nunique().to_dict()
    assert frame["last"].to_dict() == grouped["createdon"].max().to_dict()
