"""Server paging (wire doc §4): maxpagesize, Preference-Applied, absolute nextLink, keyset."""

from __future__ import annotations

import pytest


def _fill(handle, n: int, prefix: str = "Lead") -> list[str]:
    """Insert n leads straight into the store (fast), returning their ids."""
    rows = [{"subject": f"{prefix} {i}", "lastname": f"{prefix}{i:05d}"} for i in range(n)]
    return handle.org.store.insert_many("lead", rows)


def _all_pages(api, url: str, page_size: int) -> list[list[dict]]:
    headers = {"Prefer": f"odata.maxpagesize={page_size}"}
    pages = []
    while url:
        r = api.get(url, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body["value"])
        url = body.get("@odata.nextLink")
    return pages


def test_maxpagesize_pages_with_absolute_nextlink(empty_api, empty_sandbox):
    ids = _fill(empty_sandbox, 25)
    r = empty_api.get("leads?$select=lastname", headers={"Prefer": "odata.maxpagesize=10"})
    assert r.headers["Preference-Applied"] == "odata.maxpagesize=10"
    body = r.json()
    assert len(body["value"]) == 10
    link = body["@odata.nextLink"]
    assert link.startswith(empty_sandbox.api + "leads?")
    assert "$select=lastname" in link and "$skiptoken=" in link
    pages = _all_pages(empty_api, "leads?$select=lastname", 10)
    assert [len(p) for p in pages] == [10, 10, 5]
    seen = [rec["leadid"] for page in pages for rec in page]
    assert sorted(seen) == sorted(ids)


def test_nextlink_keeps_filter_and_order(empty_api, empty_sandbox):
    _fill(empty_sandbox, 30)
    pages = _all_pages(
        empty_api,
        "leads?$select=lastname&$filter=startswith(lastname,'Lead0000')&$orderby=lastname desc",
        4,
    )
    names = [rec["lastname"] for page in pages for rec in page]
    assert names == sorted((f"Lead{i:05d}" for i in range(10)), reverse=True)


def test_rows_inserted_between_pages_are_neither_skipped_nor_repeated(empty_api, empty_sandbox):
    ids = _fill(empty_sandbox, 40, "Before")
    headers = {"Prefer": "odata.maxpagesize=15"}
    first = empty_api.get("leads?$select=lastname&$orderby=lastname", headers=headers).json()
    # rows sorting before and after the cursor arrive while the client pages
    _fill(empty_sandbox, 10, "Aaa")
    _fill(empty_sandbox, 10, "Zzz")
    rest = _all_pages(empty_api, first["@odata.nextLink"], 15)
    seen = [r["leadid"] for r in first["value"]] + [r["leadid"] for p in rest for r in p]
    assert len(seen) == len(set(seen))  # nothing repeated
    assert set(ids) <= set(seen)  # no original row skipped


def test_default_and_maximum_page_is_5000(empty_api, empty_sandbox):
    _fill(empty_sandbox, 5003)
    body = empty_api.get("leads?$select=lastname").json()
    assert len(body["value"]) == 5000
    assert "@odata.nextLink" in body
    r = empty_api.get("leads?$select=lastname", headers={"Prefer": "odata.maxpagesize=9000"})
    assert len(r.json()["value"]) == 5000
    assert r.headers["Preference-Applied"] == "odata.maxpagesize=5000"
    last = empty_api.get(body["@odata.nextLink"]).json()
    assert len(last["value"]) == 3
    assert "@odata.nextLink" not in last


def test_top_is_honoured_without_nextlink(empty_api, empty_sandbox):
    _fill(empty_sandbox, 20)
    body = empty_api.get("leads?$top=7", headers={"Prefer": "odata.maxpagesize=5"}).json()
    assert len(body["value"]) <= 7
    assert "@odata.nextLink" not in body


def test_count_endpoint_is_plain_text(empty_api, empty_sandbox):
    _fill(empty_sandbox, 12)
    r = empty_api.get("leads/$count")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.text == "12"
    assert empty_api.get("leads/$count?$filter=startswith(lastname,'Lead0000')").text == "10"


def test_count_true_counts_all_matches_not_the_page(empty_api, empty_sandbox):
    _fill(empty_sandbox, 12)
    body = empty_api.get(
        "leads?$count=true&$select=lastname", headers={"Prefer": "odata.maxpagesize=5"}
    ).json()
    assert body["@odata.count"] == 12
    assert len(body["value"]) == 5


@pytest.mark.parametrize("token", ["garbage", "%3Ccookie%20pagenumber%3D%222%22%20%2F%3E"])
def test_tampered_skiptoken_is_a_clean_400(empty_api, empty_sandbox, token):
    _fill(empty_sandbox, 3)
    r = empty_api.get(f"leads?$skiptoken={token}")
    assert r.status_code == 400
    assert set(r.json()["error"]) == {"code", "message"}
