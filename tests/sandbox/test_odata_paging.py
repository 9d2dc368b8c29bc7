"""Keyset paging: pages are stable under concurrent inserts/deletes; tokens are opaque and checked."""

from __future__ import annotations

import random
from urllib.parse import unquote

import pytest

from d365nb.sandbox import odata, schema
from d365nb.sandbox.store import Store


@pytest.fixture
def db():
    store = Store(schema.load(), None)
    rng = random.Random(7)
    rows = []
    for i in range(40):
        rows.append(
            {
                "name": f"acct {i:02d}",
                # few distinct values (ties) and some nulls, to exercise the tie-breaker and nulls
                "numberofemployees": rng.choice([None, 10, 20, 30]),
                "revenue": rng.choice([None, 1.5, 2.5]),
            }
        )
    store.insert_many("account", rows)
    yield store
    store.close()


def accounts_page(db, params=None, page_size=5, skiptoken=None):
    """One page of accounts read by the OData engine straight from the store."""
    return odata.execute(
        db.conn,
        db.schema,
        "account",
        params or {},
        user_id=None,
        page_size=page_size,
        skiptoken=skiptoken,
    )


def all_pages(db, params, page_size, between_pages=None):
    rows, token, pages = [], None, 0
    while True:
        result = accounts_page(db, params, page_size, token)
        rows.extend(result.rows)
        pages += 1
        token = result.next_skiptoken
        if token is None:
            return rows, pages
        if between_pages:
            between_pages(pages)


def expected_order(db, orderby_sql):
    cur = db.conn.execute(f"SELECT name FROM account ORDER BY {orderby_sql}")
    return [r[0] for r in cur]


@pytest.mark.parametrize(
    ("orderby", "sql"),
    [
        (None, "accountid"),
        ("name desc", "name DESC, accountid DESC"),
        ("createdon desc", "createdon DESC, accountid DESC"),
        ("modifiedon,createdon", "modifiedon, createdon, accountid"),
        ("numberofemployees", "numberofemployees, accountid"),
        ("numberofemployees desc", "numberofemployees DESC, accountid DESC"),
        ("numberofemployees desc,revenue", "numberofemployees DESC, revenue, accountid"),
        ("revenue,numberofemployees desc", "revenue, numberofemployees DESC, accountid DESC"),
    ],
)
def test_pages_cover_every_row_once_in_order(db, orderby, sql):
    params = {"$orderby": orderby} if orderby else {}
    rows, pages = all_pages(db, params, page_size=7)
    assert [r["name"] for r in rows] == expected_order(db, sql)
    assert pages == 6


def test_rows_inserted_between_pages_are_neither_skipped_nor_repeated(db):
    params = {"$orderby": "name"}
    before = expected_order(db, "name")

    def insert(page):
        # one row sorting before the current position, one after it
        db.insert_many("account", [{"name": f"acct 00-{page}"}, {"name": f"acct 99-{page}"}])

    rows, _ = all_pages(db, params, page_size=5, between_pages=insert)
    seen = [r["name"] for r in rows]
    assert len(seen) == len(set(seen))
    assert [n for n in seen if n in before] == before
    assert {f"acct 99-{p}" for p in range(1, 8)} <= set(seen)  # later rows show up
    assert not any(n.startswith("acct 00-") for n in seen)  # earlier ones cannot


def test_rows_deleted_between_pages_do_not_shift_the_rest(db):
    order = expected_order(db, "name")
    ids = {r[1]: r[0] for r in db.conn.execute("SELECT accountid, name FROM account")}
    first = accounts_page(db, {"$orderby": "name"}, page_size=10)
    for name in order[:10]:  # delete the whole first page
        db.delete("account", ids[name])
    second = accounts_page(db, {"$orderby": "name"}, 10, first.next_skiptoken)
    assert [r["name"] for r in second.rows] == order[10:20]


def test_token_has_dataverse_cookie_form(db):
    result = accounts_page(db)
    token = result.next_skiptoken
    assert token.startswith('<cookie pagenumber="2" pagingcookie="%3ccookie%20page%3d%221%22%3e')
    assert token.endswith('istracking="False" />')
    inner = unquote(token.split('pagingcookie="')[1].split('"')[0])
    last = result.rows[-1]["accountid"].upper()
    assert f'<accountid last="{{{last}}}"' in inner


def test_page_numbers_advance(db):
    tokens = []
    token = None
    for _ in range(3):
        token = accounts_page(db, skiptoken=token).next_skiptoken
        tokens.append(token)
    assert [t.split('"')[1] for t in tokens] == ["2", "3", "4"]


def tamper(token: str) -> str:
    # change one character of the signed key values
    at = token.index("v%3d%22") + 12
    swapped = "A" if token[at] != "A" else "B"
    return token[:at] + swapped + token[at + 1 :]


@pytest.mark.parametrize(
    "make",
    [
        tamper,
        lambda t: t.replace('pagenumber="2"', 'pagenumber="7"'),
        lambda t: "garbage",
        lambda t: t[:-20],
    ],
    ids=["edited-values", "edited-page", "garbage", "truncated"],
)
def test_changed_token_is_refused_cleanly(db, make):
    token = accounts_page(db).next_skiptoken
    with pytest.raises(odata.ODataError) as info:
        accounts_page(db, skiptoken=make(token))
    assert "$skiptoken" in str(info.value)


def test_token_of_another_ordering_is_refused(db):
    token = accounts_page(db, {"$orderby": "name"}).next_skiptoken
    with pytest.raises(odata.ODataError):
        accounts_page(db, {"$orderby": "revenue"}, skiptoken=token)


def test_page_size_is_capped_at_5000(db):
    db.insert_many("account", [{"name": f"bulk {i}"} for i in range(5100)])
    result = accounts_page(db, page_size=10_000)
    assert len(result.rows) == 5000 and result.next_skiptoken


def test_count_is_capped_with_limit_flag(db):
    db.insert_many("account", [{"name": f"bulk {i}"} for i in range(5000)])
    result = accounts_page(db, {"$count": "true"}, page_size=10)
    assert (result.count, result.count_limit_exceeded) == (5000, True)
