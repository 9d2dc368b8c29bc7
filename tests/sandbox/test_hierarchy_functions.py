"""Hierarchy query functions (`Under`, `UnderOrEqual`, `Above`, `AboveOrEqual`, `NotUnder`) on
account's hierarchical relationship (`parentaccountid`), and the fiscal-period functions, over
real HTTP against a fresh empty sandbox.

Fiscal settings are the sandbox's documented assumption (odata/set_functions.py): the fiscal
year starts on 1 January, periods are quarters."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

NS = "Microsoft.Dynamics.CRM"


def _create(api: httpx.Client, entity_set: str, body: dict) -> str:
    r = api.post(entity_set, json=body)
    assert r.status_code == 204, r.text
    return r.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def _names(api: httpx.Client, entity_set: str, filter_: str, field: str = "name") -> list[str]:
    r = api.get(f"{entity_set}?$select={field}&$filter={filter_}")
    assert r.status_code == 200, r.text
    return sorted(row[field] for row in r.json()["value"])


@pytest.fixture
def tree(empty_api: httpx.Client) -> tuple[httpx.Client, dict[str, str]]:
    """root -> (a -> (a1 -> a1x), b), and an unrelated account `other`."""
    ids: dict[str, str] = {}
    ids["root"] = _create(empty_api, "accounts", {"name": "root"})
    for name, parent in (("a", "root"), ("b", "root"), ("a1", "a"), ("a1x", "a1")):
        bind = f"/accounts({ids[parent]})"
        ids[name] = _create(
            empty_api, "accounts", {"name": name, "parentaccountid@odata.bind": bind}
        )
    ids["other"] = _create(empty_api, "accounts", {"name": "other"})
    return empty_api, ids


def _fn(name: str, id: str) -> str:
    return f"{NS}.{name}(PropertyName='accountid',PropertyValue='{id}')"


def test_under_and_under_or_equal(tree) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/query-hierarchical-data
    `Under` returns every record below the referenced one (all levels), `UnderOrEqual` the
    record too."""
    api, ids = tree
    assert _names(api, "accounts", _fn("Under", ids["root"])) == ["a", "a1", "a1x", "b"]
    assert _names(api, "accounts", _fn("Under", ids["a"])) == ["a1", "a1x"]
    assert _names(api, "accounts", _fn("UnderOrEqual", ids["a"])) == ["a", "a1", "a1x"]
    assert _names(api, "accounts", _fn("Under", ids["a1x"])) == []


def test_above_and_above_or_equal(tree) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/query-hierarchical-data
    `Above` returns the referenced record's ancestry line, `AboveOrEqual` the record too."""
    api, ids = tree
    assert _names(api, "accounts", _fn("Above", ids["a1x"])) == ["a", "a1", "root"]
    assert _names(api, "accounts", _fn("AboveOrEqual", ids["a1"])) == ["a", "a1", "root"]
    assert _names(api, "accounts", _fn("Above", ids["root"])) == []


def test_not_under_keeps_the_record_and_the_rest(tree) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/query-hierarchical-data
    `NotUnder` returns all records not below the referenced record (the record included)."""
    api, ids = tree
    assert _names(api, "accounts", _fn("NotUnder", ids["a"])) == ["a", "b", "other", "root"]
    combined = f"{_fn('Under', ids['root'])} and name ne 'b'"
    assert _names(api, "accounts", combined) == ["a", "a1", "a1x"]


@pytest.mark.parametrize(
    "filter_",
    [
        f"{NS}.Under(PropertyName='name',PropertyValue='00000000-0000-0000-0000-000000000001')",
        f"{NS}.Under(PropertyName='accountid')",
        f"{NS}.Under(PropertyName='accountid',PropertyValue='not-a-guid')",
        f"{NS}.NotUnderOrEqual(PropertyName='accountid',PropertyValue='00000000-0000-0000-0000-000000000001')",
    ],
)
def test_bad_hierarchy_calls_are_400(empty_api: httpx.Client, filter_: str) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/filter-rows
    A hierarchy function applies to the primary key with a GUID value; other calls (and
    functions Dataverse does not have) are refused with a 400, never answered with all rows."""
    r = empty_api.get(f"accounts?$filter={filter_}")
    assert r.status_code == 400, r.text
    assert set(r.json()["error"]) == {"code", "message"}


def test_hierarchy_on_a_table_without_one_is_400(empty_api: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/query-hierarchical-data
    The operators only apply to a relationship defined as hierarchical; task has none."""
    f = f"{NS}.Under(PropertyName='activityid',PropertyValue='00000000-0000-0000-0000-000000000001')"
    assert empty_api.get(f"tasks?$filter={f}").status_code == 400


def _quarter_start(moment: dt.datetime) -> dt.datetime:
    return moment.replace(month=(moment.month - 1) // 3 * 3 + 1, day=1)


def test_fiscal_period_functions(empty_api: httpx.Client) -> None:
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/filter-rows
    Fiscal functions on a date column (opportunity.estimatedclosedate, date only): fiscal year =
    calendar year, periods = quarters (the sandbox's stated default)."""
    today = dt.datetime.now(dt.UTC)
    this_q = _quarter_start(today)
    last_q = (this_q - dt.timedelta(days=1)).replace(day=1)
    last_q = _quarter_start(last_q)
    dates = {
        "this-quarter": this_q.date(),
        "last-quarter": last_q.date(),
        "last-year": dt.date(today.year - 1, 6, 15),
        "next-year": dt.date(today.year + 1, 1, 1),
        "q2-2020": dt.date(2020, 5, 31),
    }
    for name, day in dates.items():
        _create(
            empty_api,
            "opportunities",
            {"name": name, "estimatedclosedate": day.isoformat()},
        )

    def names(call: str) -> list[str]:
        return _names(empty_api, "opportunities", f"{NS}.{call}")

    col = "PropertyName='estimatedclosedate'"
    assert names(f"ThisFiscalPeriod({col})") == ["this-quarter"]
    assert names(f"LastFiscalPeriod({col})") == ["last-quarter"]
    assert names(f"LastFiscalYear({col})") == sorted(
        ["last-year"] + (["last-quarter"] if last_q.year < today.year else [])
    )
    assert names(f"NextFiscalYear({col})") == ["next-year"]
    this_year = sorted(n for n, d in dates.items() if d.year == today.year)
    assert names(f"ThisFiscalYear({col})") == this_year
    assert names(f"InFiscalYear({col},PropertyValue=2020)") == ["q2-2020"]
    assert names(f"InFiscalPeriodAndYear({col},PropertyValue1=2,PropertyValue2=2020)") == [
        "q2-2020"
    ]
    assert names(f"InFiscalPeriodAndYear({col},PropertyValue1=3,PropertyValue2=2020)") == []
    assert names(f"InOrBeforeFiscalPeriodAndYear({col},PropertyValue1=4,PropertyValue2=2020)") == [
        "q2-2020"
    ]
    after = names(f"InOrAfterFiscalPeriodAndYear({col},PropertyValue1=3,PropertyValue2=2020)")
    assert "q2-2020" not in after and len(after) == 4
    quarter_2 = names(f"InFiscalPeriod({col},PropertyValue=2)")
    assert quarter_2 == sorted(n for n, d in dates.items() if 4 <= d.month <= 6)
    # a period outside 1-4 and a non-date column are refused
    r = empty_api.get(f"opportunities?$filter={NS}.InFiscalPeriod({col},PropertyValue=5)")
    assert r.status_code == 400
    r = empty_api.get(f"opportunities?$filter={NS}.ThisFiscalYear(PropertyName='name')")
    assert r.status_code == 400
