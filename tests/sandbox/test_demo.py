"""Demo data: deterministic, big enough, consistent and linked - checked in the store it fills,
then through the sandbox over HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from d365nb import sandbox as sandbox_module
from d365nb.sandbox import demo, schema
from d365nb.sandbox.store import Store, storage_columns

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def tables():
    return schema.load()


@pytest.fixture(scope="module")
def store(tables):
    db = Store(tables, None)
    demo.populate(db, tables, seed=7, now=NOW)
    yield db
    db.close()


def rows(store, sql, *params):
    return store.conn.execute(sql, params).fetchall()


def test_same_seed_gives_same_ids_and_values(tables):
    assert demo.generate(tables, seed=3, now=NOW) == demo.generate(tables, seed=3, now=NOW)


def test_another_seed_gives_other_data(tables):
    a = demo.generate(tables, seed=1, now=NOW)["lead"]
    b = demo.generate(tables, seed=2, now=NOW)["lead"]
    assert {r["leadid"] for r in a}.isdisjoint(r["leadid"] for r in b)


def test_populate_reports_what_it_inserted(tables):
    db = Store(tables, None)
    start = time.perf_counter()
    counts = demo.populate(db, tables, seed=0, now=NOW)
    # Speed is a printed figure, not an assertion (benchmarks/bench_sandbox_demo.py compares it).
    print(f"demo.populate: {sum(counts.values())} rows in {time.perf_counter() - start:.3f} s")
    for table, n in counts.items():
        assert rows(db, f'SELECT count(*) FROM "{table}"')[0][0] == n


def test_counts_meet_the_issue(store):
    count = {t: rows(store, f'SELECT count(*) FROM "{t}"')[0][0] for t in store.schema}
    assert 8 <= count["systemuser"] <= 12
    assert count["team"] == 2
    assert count["account"] >= 200
    assert count["contact"] >= 500
    assert count["lead"] >= 1000
    assert count["task"] >= 1000


def test_caller_is_an_enabled_user(store):
    found = rows(store, "SELECT isdisabled FROM systemuser WHERE systemuserid = ?", demo.CALLER_ID)
    assert found == [(0,)]


def test_rows_use_only_the_tables_columns(tables):
    for table, batch in demo.generate(tables, seed=0, now=NOW).items():
        known = set(storage_columns(tables[table]))
        for row in batch:
            assert set(row) <= known, (table, set(row) - known)


@pytest.mark.parametrize("table", ["lead", "task", "account", "contact"])
def test_state_matches_status(store, table):
    status = store.schema[table].columns["statuscode"]
    state_of = {o.value: o.state for o in status.options}
    pairs = rows(store, f'SELECT DISTINCT statecode, statuscode FROM "{table}"')
    assert pairs and all(state_of[s] == st for st, s in pairs)


@pytest.mark.parametrize("table", ["lead", "task"])
def test_every_status_reason_occurs(store, table):
    options = {o.value for o in store.schema[table].columns["statuscode"].options}
    assert {s for (s,) in rows(store, f'SELECT DISTINCT statuscode FROM "{table}"')} == options


def test_every_lookup_points_at_an_existing_row_of_an_allowed_target(store):
    checked = 0
    for table in store.schema.values():
        for column in table.columns.values():
            if not column.is_lookup:
                continue
            for (target_name,) in rows(
                store,
                f'SELECT DISTINCT "{column.name}__type" FROM "{table.logical_name}" '
                f'WHERE "{column.name}" IS NOT NULL',
            ):
                assert target_name in column.targets, (table.logical_name, column.name)
                target = store.schema[target_name]
                dangling = rows(
                    store,
                    f'SELECT count(*) FROM "{table.logical_name}" t LEFT JOIN "{target_name}" r '
                    f'ON r."{target.primary_id}" = t."{column.name}" '
                    f'WHERE t."{column.name}__type" = ? AND r."{target.primary_id}" IS NULL',
                    target_name,
                )[0][0]
                assert dangling == 0, (table.logical_name, column.name, target_name)
                checked += 1
    assert checked >= 15


def test_values_fit_their_columns(store):
    for table in store.schema.values():
        for column in table.columns.values():
            name, t = column.name, table.logical_name
            if column.max_length:
                longest = rows(store, f'SELECT max(length("{name}")) FROM "{t}"')[0][0] or 0
                assert longest <= column.max_length, (t, name)
            if column.type in ("Integer", "Money", "Decimal") and column.min_value is not None:
                low, high = rows(store, f'SELECT min("{name}"), max("{name}") FROM "{t}"')[0]
                if low is not None:
                    assert column.min_value <= low and high <= column.max_value, (t, name)
            if column.type in ("Picklist", "State", "Status", "Boolean"):
                allowed = {o.value for o in column.options}
                used = {v for (v,) in rows(store, f'SELECT DISTINCT "{name}" FROM "{t}"')}
                assert used - {None} <= allowed, (t, name)
            if column.required in ("ApplicationRequired", "SystemRequired"):
                if (t, name) == ("businessunit", "parentbusinessunitid"):
                    continue  # the root business unit has no parent, by definition
                missing = rows(store, f'SELECT count(*) FROM "{t}" WHERE "{name}" IS NULL')[0][0]
                assert missing == 0, (t, name)


def test_contacts_belong_to_accounts(store):
    total, linked = rows(store, "SELECT count(*), count(parentcustomerid) FROM contact WHERE 1")[0]
    assert linked / total > 0.8
    assert rows(
        store,
        "SELECT DISTINCT parentcustomerid__type FROM contact WHERE parentcustomerid IS NOT NULL",
    ) == [("account",)]


def test_leads_link_to_accounts_and_contacts(store):
    assert rows(store, "SELECT count(*) FROM lead WHERE parentaccountid IS NOT NULL")[0][0] > 100
    kinds = {k for (k,) in rows(store, "SELECT DISTINCT customerid__type FROM lead")}
    assert kinds == {None, "account", "contact"}
    # A qualified lead always has its customer.
    assert rows(store, "SELECT count(*) FROM lead WHERE statuscode = 3 AND customerid IS NULL") == [
        (0,)
    ]


def test_tasks_regard_accounts_contacts_and_leads(store):
    kinds = dict(rows(store, "SELECT regardingobjectid__type, count(*) FROM task GROUP BY 1"))
    assert set(kinds) == {"account", "contact", "lead"}
    assert min(kinds.values()) > 200


def test_task_progress_matches_status(store):
    assert rows(store, "SELECT DISTINCT percentcomplete FROM task WHERE statuscode = 5") == [(100,)]
    assert rows(store, "SELECT DISTINCT percentcomplete FROM task WHERE statuscode = 2") == [(0,)]
    assert rows(store, "SELECT count(*) FROM task WHERE statuscode = 5 AND actualend IS NULL") == [
        (0,)
    ]
    priorities = {p for (p,) in rows(store, "SELECT DISTINCT prioritycode FROM task")}
    assert priorities == {0, 1, 2}


def test_owners_are_users_and_teams(store):
    for table in ("lead", "task", "account", "contact"):
        kinds = {k for (k,) in rows(store, f'SELECT DISTINCT ownerid__type FROM "{table}"')}
        assert kinds == {"systemuser", "team"}, table


def test_leads_were_created_over_the_past_year(store):
    first, last = rows(store, "SELECT min(createdon), max(createdon) FROM lead")[0]
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    oldest = datetime.strptime(first, fmt).replace(tzinfo=UTC)
    newest = datetime.strptime(last, fmt).replace(tzinfo=UTC)
    assert NOW - timedelta(days=366) <= oldest < NOW - timedelta(days=330)
    assert NOW - timedelta(days=7) < newest <= NOW
    months = rows(store, "SELECT count(DISTINCT substr(createdon, 1, 7)) FROM lead")[0][0]
    assert months >= 12
    for table in ("lead", "task", "account", "contact"):
        assert rows(store, f'SELECT count(*) FROM "{table}" WHERE modifiedon < createdon') == [(0,)]


def test_tasks_are_due_in_the_past_and_the_future(store):
    stamp = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    overdue = rows(
        store, "SELECT count(*) FROM task WHERE statecode = 0 AND scheduledend < ?", stamp
    )
    upcoming = rows(
        store, "SELECT count(*) FROM task WHERE statecode = 0 AND scheduledend >= ?", stamp
    )
    assert overdue[0][0] > 0 and upcoming[0][0] > 0


def test_awkward_values_are_present(store):
    assert rows(store, "SELECT count(*) FROM contact WHERE lastname = 'O''Neil'")[0][0] > 0
    assert rows(store, "SELECT count(*) FROM account WHERE name = 'O''Neil Logistics'") == [(1,)]
    accented = rows(
        store, "SELECT count(*) FROM contact WHERE firstname IN ('Zoë', 'Renée', 'Łukasz', 'Søren')"
    )
    assert accented[0][0] > 0
    assert rows(store, "SELECT count(*) FROM contact WHERE emailaddress1 IS NULL")[0][0] > 0
    assert rows(store, "SELECT count(*) FROM account WHERE name = 'Müller & Søn GmbH'") == [(1,)]


def test_names_are_plausible_and_unique_per_account(store):
    names = [n for (n,) in rows(store, "SELECT name FROM account")]
    assert len(names) == len(set(names))
    fullnames = rows(
        store, "SELECT count(*) FROM contact WHERE fullname = firstname || ' ' || lastname"
    )
    assert fullnames[0][0] == rows(store, "SELECT count(*) FROM contact")[0][0]


# -- the demo as a client sees it (the session sandbox is started with data="demo", seed=0) -----


def test_whoami_is_the_demo_caller(api):
    body = api.get("WhoAmI").json()
    assert body["UserId"] == demo.CALLER_ID
    user = api.get(f"systemusers({demo.CALLER_ID})", params={"$select": "fullname"}).json()
    assert user["fullname"] == "Dana Whitfield"


def test_demo_sandbox_serves_the_generated_ids(tables):
    # A fresh seed-0 sandbox holds exactly the rows `generate` makes (ids do not depend on `now`).
    expected = {r["accountid"] for r in demo.generate(tables, seed=0)["account"]}
    with sandbox_module.start(data="demo", seed=0) as fresh:
        headers = {"Authorization": f"Bearer {fresh.token}"}
        body = httpx.get(fresh.api + "accounts?$select=accountid", headers=headers).json()
    assert {r["accountid"] for r in body["value"]} == expected


def test_quoted_surname_filter_finds_demo_contacts(api):
    body = api.get(
        "contacts", params={"$select": "lastname", "$filter": "lastname eq 'O''Neil'"}
    ).json()
    assert body["value"] and {r["lastname"] for r in body["value"]} == {"O'Neil"}


def test_demo_leads_cover_every_status_over_http(api):
    seen = set()
    for status in range(1, 8):
        body = api.get(
            "leads",
            params={"$select": "statecode", "$filter": f"statuscode eq {status}", "$top": "1"},
        ).json()
        if body["value"]:
            seen.add(status)
    assert seen == set(range(1, 8))


_EMAIL = r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$"
_WEBSITE = r"^https://(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$"


@pytest.mark.parametrize("seed", [0, 7, 11])
def test_every_demo_email_and_website_is_well_formed(tables, seed):
    import re

    data = demo.generate(tables, seed=seed, now=NOW)
    checked = 0
    for rows_ in data.values():
        for row in rows_:
            for col in ("emailaddress1", "internalemailaddress", "emailaddress"):
                value = row.get(col)
                if value is not None:
                    assert re.match(_EMAIL, value) and ".." not in value, value
                    checked += 1
            if row.get("websiteurl") is not None:
                assert re.match(_WEBSITE, row["websiteurl"]), row["websiteurl"]
                checked += 1
    assert checked > 100
