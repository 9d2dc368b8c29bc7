"""`$apply` aggregation on the sandbox, over loopback HTTP, against a small known data set.

Shapes and wording from Microsoft's "Aggregate data using OData" page:
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/aggregate-data
(50,000-row limit and its error code from
https://learn.microsoft.com/power-apps/developer/data-platform/fetchxml/aggregate-data#limitations).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from d365nb import sandbox as sandbox_module
from tests.support.records import create, present
from tests.support.sandboxes import api_client

FORMATTED = "@OData.Community.Display.V1.FormattedValue"
PREFER_FORMATTED = {
    "Prefer": 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'
}

# (subject, lastname, statecode, statuscode, estimatedvalue, numberofemployees, leadsourcecode,
#  parent account key)
LEADS = [
    ("s1", "Lane", 0, 1, 100.0, 10, 1, "alpha"),
    ("s2", "Moss", 0, 1, 200.0, 20, 1, "alpha"),
    ("s3", "Reed", 0, 1, None, 5, None, "beta"),
    ("s4", "Shaw", 0, 2, 50.0, 7, 2, None),
    ("s5", "Lane", 0, 2, 150.0, None, 2, "beta"),
    ("s6", "Todd", 2, 4, 1000.0, 3, 1, None),
]


@pytest.fixture(scope="module")
def known() -> Iterator[tuple]:
    """A fresh sandbox holding exactly the accounts and leads above (created over HTTP)."""
    with sandbox_module.start(data="empty") as handle:
        client = api_client(handle)
        accounts = {}
        for key, name in (("alpha", "Alpha Ltd"), ("beta", "Beta Inc")):
            accounts[key] = create(client, "accounts", {"name": name})
        for subject, last, state, status, value, employees, source, parent in LEADS:
            body = present(
                subject=subject,
                lastname=last,
                statecode=state,
                statuscode=status,
                estimatedvalue=value,  # a Double column
                revenue=value,  # a Money (currency) column
                numberofemployees=employees,
                leadsourcecode=source,
            )
            if parent is not None:
                body["parentaccountid@odata.bind"] = f"/accounts({accounts[parent]})"
            create(client, "leads", body)
        yield handle, client, accounts
        client.close()


def _apply(client: httpx.Client, apply: str, headers=None, **params) -> httpx.Response:
    return client.get("leads", params={"$apply": apply, **params}, headers=headers or {})


def test_groupby_lists_the_distinct_values_in_order(known):
    _, client, _ = known
    r = _apply(client, "groupby((statuscode))")
    assert r.status_code == 200
    body = r.json()
    assert body["@odata.context"].endswith("/api/data/v9.2/$metadata#leads")
    assert body["value"] == [{"statuscode": 1}, {"statuscode": 2}, {"statuscode": 4}]


def test_count_sum_average_min_max_countdistinct_per_group(known):
    _, client, _ = known
    r = _apply(
        client,
        "groupby((statuscode),aggregate($count as n,estimatedvalue with sum as total,"
        "estimatedvalue with average as avg,numberofemployees with min as lo,"
        "numberofemployees with max as hi,lastname with countdistinct as names))",
    )
    assert r.status_code == 200
    assert r.json()["value"] == [
        # status 1: values 100, 200 and a null (nulls are not aggregated)
        {"statuscode": 1, "n": 3, "total": 300.0, "avg": 150.0, "lo": 5, "hi": 20, "names": 3},
        {"statuscode": 2, "n": 2, "total": 200.0, "avg": 100.0, "lo": 7, "hi": 7, "names": 2},
        {"statuscode": 4, "n": 1, "total": 1000.0, "avg": 1000.0, "lo": 3, "hi": 3, "names": 1},
    ]


def test_values_are_typed_like_the_columns(known):
    _, client, _ = known
    row = _apply(
        client, "aggregate(estimatedvalue with sum as total,$count as n,createdon with max as last)"
    ).json()["value"][0]
    assert isinstance(row["n"], int) and row["n"] == 6
    assert isinstance(row["total"], float) and row["total"] == 1500.0
    assert isinstance(row["last"], str) and row["last"].endswith("Z")


def test_whole_number_average_is_a_whole_number(known):
    """SQL Server averages an Integer column as an integer (10+20+5+7+3 = 45, /5 = 9)."""
    _, client, _ = known
    row = _apply(client, "aggregate(numberofemployees with average as avg)").json()["value"][0]
    assert row == {"avg": 9}


def test_filter_transformation_restricts_the_rows(known):
    _, client, _ = known
    r = _apply(client, "filter(statecode eq 0 and estimatedvalue ge 100)/groupby((statuscode),"
               "aggregate($count as n))")  # fmt: skip
    assert r.json()["value"] == [{"statuscode": 1, "n": 2}, {"statuscode": 2, "n": 1}]


def test_filter_option_beside_apply_also_restricts(known):
    _, client, _ = known
    r = _apply(client, "aggregate($count as n)", **{"$filter": "lastname eq 'Lane'"})
    assert r.json()["value"] == [{"n": 2}]


def test_null_group_value_is_left_out_of_the_record(known):
    _, client, _ = known
    r = _apply(client, "groupby((leadsourcecode),aggregate($count as n))")
    assert r.json()["value"] == [
        {"n": 1},
        {"leadsourcecode": 1, "n": 3},
        {"leadsourcecode": 2, "n": 2},
    ]


def test_formatted_values_only_when_asked(known):
    _, client, _ = known
    apply = "groupby((statuscode),aggregate($count as n,revenue with sum as total))"
    plain = _apply(client, apply).json()["value"][0]
    assert not any("@" in k for k in plain)
    r = _apply(client, apply, headers=PREFER_FORMATTED)
    first = r.json()["value"][0]
    assert first[f"statuscode{FORMATTED}"] == "New"
    assert first[f"n{FORMATTED}"] == "3"
    assert first[f"total{FORMATTED}"] == "$300.00"
    assert list(first) == [f"statuscode{FORMATTED}", "statuscode", f"n{FORMATTED}", "n",
                           f"total{FORMATTED}", "total"]  # fmt: skip
    assert r.headers.get_list("Preference-Applied") == [
        'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'
    ]


def test_lookup_grouped_by_its_value_property_with_the_record_name(known):
    _, client, accounts = known
    r = _apply(client, "groupby((_parentaccountid_value),aggregate($count as n))",
               headers=PREFER_FORMATTED)  # fmt: skip
    rows = {row.get("_parentaccountid_value"): row for row in r.json()["value"]}
    assert rows[None]["n"] == 2 and "_parentaccountid_value" not in rows[None]
    assert rows[accounts["alpha"]]["n"] == 2
    assert rows[accounts["alpha"]][f"_parentaccountid_value{FORMATTED}"] == "Alpha Ltd"
    assert rows[accounts["beta"]][f"_parentaccountid_value{FORMATTED}"] == "Beta Inc"


def test_grouped_lookup_names_its_table_when_all_annotations_are_asked(known):
    _, client, accounts = known
    r = _apply(
        client,
        "groupby((_parentaccountid_value))",
        headers={"Prefer": 'odata.include-annotations="*"'},
    )
    row = next(v for v in r.json()["value"] if v.get("_parentaccountid_value") == accounts["beta"])
    assert row["_parentaccountid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert row[f"_parentaccountid_value{FORMATTED}"] == "Beta Inc"


def test_group_by_a_related_column_is_named_table_column(known):
    """As the page's `primarycontactid/fullname` -> `contact_fullname` example."""
    _, client, _ = known
    r = _apply(client, "groupby((parentaccountid/name),aggregate(estimatedvalue with sum as t))")
    assert r.json()["value"] == [
        {"t": 1050.0},
        {"account_name": "Alpha Ltd", "t": 300.0},
        {"account_name": "Beta Inc", "t": 150.0},
    ]


def test_orderby_a_group_and_top(known):
    _, client, _ = known
    r = _apply(client, "groupby((statuscode),aggregate($count as n))",
               **{"$orderby": "statuscode desc", "$top": "2"})  # fmt: skip
    assert r.json()["value"] == [{"statuscode": 4, "n": 1}, {"statuscode": 2, "n": 2}]


def test_orderby_an_aggregate_is_refused_in_dataverse_words(known):
    _, client, _ = known
    r = _apply(client, "groupby((statuscode),aggregate($count as n))", **{"$orderby": "n desc"})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "The query node SingleValueOpenPropertyAccess is not supported"
    )


def test_groupby_a_datetime_is_refused(known):
    _, client, _ = known
    r = _apply(client, "groupby((createdon))")
    assert r.status_code == 400
    assert "datetime" in r.json()["error"]["message"]


def test_unknown_property_is_the_documented_error(known):
    _, client, _ = known
    r = _apply(client, "groupby((statuscod))")
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "0x0",
        "message": "Could not find a property named 'statuscod' on type 'Microsoft.Dynamics.CRM.lead'.",
    }


@pytest.mark.parametrize(
    "apply",
    [
        "",
        "groupby(statuscode)",
        "groupby((statuscode)",
        "groupby(())",
        "aggregate()",
        "aggregate(subject with sum as s)",
        "aggregate(createdon with average as a)",
        "aggregate(estimatedvalue with median as m)",
        "aggregate(estimatedvalue as m)",
        "aggregate($count as n,$count as n)",
        "groupby((statuscode),aggregate($count as statuscode))",
        "filter(statuscode eq)/groupby((statuscode))",
        "filter()/aggregate($count as n)",
        "filter(statuscode eq 1)",
        "groupby((statuscode))/filter(statuscode eq 1)",
        "groupby((statuscode))/groupby((statecode))",
        "compute(x)",
        "groupby((statuscode),topcount(2))",
        "aggregate($count as n))(",
        "aggregate(name' with sum as x)",
    ],
)
def test_malformed_apply_is_a_400_with_dataverse_body(known, apply):
    _, client, _ = known
    r = _apply(client, apply)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert set(error) == {"code", "message"} and error["message"]


def test_select_beside_apply_is_refused_not_ignored(known):
    _, client, _ = known
    r = _apply(client, "groupby((statuscode))", **{"$select": "subject"})
    assert r.status_code == 400


def test_more_rows_than_the_aggregate_limit_is_the_documented_error(known):
    handle, client, _ = known
    handle.org.config["aggregate_limit"] = 5  # 6 leads: one too many
    try:
        r = _apply(client, "groupby((statuscode),aggregate($count as n))")
        assert r.status_code == 400
        assert r.json()["error"] == {
            "code": "0x8004e023",
            "message": "AggregateQueryRecordLimit exceeded. Cannot perform this operation.",
        }
        # a filter that brings the rows under the limit answers
        ok = _apply(client, "filter(statuscode eq 1)/aggregate($count as n)")
        assert ok.json()["value"] == [{"n": 3}]
        # grouping alone (distinct values) aggregates nothing
        assert _apply(client, "groupby((statuscode))").status_code == 200
    finally:
        handle.org.config.pop("aggregate_limit", None)


def test_default_limit_is_fifty_thousand(known):
    from d365nb.sandbox.odata.apply import AGGREGATE_LIMIT

    handle, _, _ = known
    assert AGGREGATE_LIMIT == 50_000
    assert "aggregate_limit" not in handle.org.config


def test_apply_on_the_demo_data_agrees_with_plain_queries(api):
    """The aggregate equals what a plain `$count` query counts, status by status."""
    groups = api.get("leads", params={"$apply": "groupby((statuscode),aggregate($count as n))"})
    assert groups.status_code == 200
    for row in groups.json()["value"]:
        counted = api.get("leads/$count", params={"$filter": f"statuscode eq {row['statuscode']}"})
        assert int(counted.text.lstrip("\ufeff")) == row["n"]


# -- generated $apply values: 200 or a Dataverse 400, never a 5xx ------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_PATHS = st.sampled_from(
    ["statuscode", "_ownerid_value", "ownerid", "parentaccountid/name", "customerid/name",
     "estimatedvalue", "numberofemployees", "createdon", "subject", "donotemail", "leadid",
     "Account_Tasks", "nosuch", "$it", "parentaccountid/nosuch"]
)  # fmt: skip
_METHODS = st.sampled_from(["sum", "average", "min", "max", "countdistinct", "median"])


@st.composite
def _applies(draw) -> str:
    items = [
        f"{draw(_PATHS)} with {draw(_METHODS)} as x{i}"
        if draw(st.booleans())
        else f"$count as x{i}"
        for i in range(draw(st.integers(0, 3)))
    ]
    groups = ",".join(draw(st.lists(_PATHS, min_size=1, max_size=3)))
    shape = draw(st.sampled_from(["groupby", "groupby+aggregate", "aggregate"]))
    if shape == "groupby":
        text = f"groupby(({groups}))"
    elif shape == "groupby+aggregate":
        text = f"groupby(({groups}),aggregate({','.join(items)}))"
    else:
        text = f"aggregate({','.join(items)})"
    if draw(st.booleans()):
        text = f"filter({draw(st.sampled_from(['statuscode eq 1', 'contains(subject,1)', 'x']))})/{text}"
    return text


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(apply=_applies(), orderby=st.sampled_from([None, "x0", "statuscode desc", "nosuch"]))
def test_generated_apply_never_gets_a_5xx(known, apply, orderby):
    _, client, _ = known
    params = {"$orderby": orderby} if orderby else {}
    r = _apply(client, apply, headers={"Prefer": 'odata.include-annotations="*"'}, **params)
    assert r.status_code in (200, 400), (apply, r.text)
    if r.status_code == 400:
        assert set(r.json()["error"]) == {"code", "message"}
