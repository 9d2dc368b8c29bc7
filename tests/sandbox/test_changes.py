"""Change tracking: the token format, then delta links over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from d365nb import sandbox
from d365nb.sandbox.changes import make_token, parse_token
from d365nb.sandbox.errors import DataverseError
from d365nb.sandbox.store import deletes_sql, upserts_sql
from tests.support.records import create


def test_token_has_the_documented_shape_and_round_trips():
    issued = datetime(2017, 8, 22, 8, 10, 44, tzinfo=UTC)
    text = make_token(919042, issued)
    assert text == "919042!08/22/2017 08:10:44"
    token = parse_token(text)
    assert (token.version, token.issued) == (919042, issued)


@pytest.mark.parametrize("bad", ["", "abc", "12!13/45/2017 08:10:44", "12!08/22/2017", "-1!x"])
def test_malformed_tokens_are_refused(bad):
    with pytest.raises(DataverseError, match="deltatoken") as info:
        parse_token(bad)
    assert info.value.status == 400


# -- over HTTP -------------------------------------------------------------------------------


TRACK = {"Prefer": "odata.track-changes"}


@pytest.fixture()
def sb():
    with sandbox.start(data="empty") as h:
        client = httpx.Client(
            base_url=h.api, headers={"Authorization": f"Bearer {h.token}"}, timeout=30
        )
        yield h, client
        client.close()


def create_lead(client, subject="Lead", lastname="Doe", id=None) -> str:
    body = {"subject": subject, "lastname": lastname}
    if id:
        body["leadid"] = id
    return create(client, "leads", body)


def follow(client, url, headers=None):
    r = client.get(url, headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["$deltatoken"][0]


def test_initial_sync_returns_rows_and_a_delta_link(sb):
    h, client = sb
    ids = {create_lead(client, f"L{i}") for i in range(3)}
    r = client.get("leads?$select=subject,lastname", headers=TRACK)
    assert r.status_code == 200
    assert "odata.track-changes" in r.headers["Preference-Applied"]
    body = r.json()
    assert {rec["leadid"] for rec in body["value"]} == ids
    assert set(body["value"][0]) == {"@odata.etag", "leadid", "subject", "lastname"}
    assert body["@odata.context"].endswith("$metadata#leads(subject,lastname)")
    link = body["@odata.deltaLink"]
    assert link.startswith(h.api + "leads?$select=subject,lastname&$deltatoken=")
    version, _, stamp = token_of(link).partition("!")
    assert int(version) >= 3 and len(stamp) == len("08/22/2017 08:10:44")


def test_delta_returns_upserts_then_deletes_and_a_fresh_link(sb):
    h, client = sb
    kept, changed, removed = (create_lead(client, n) for n in ("kept", "changed", "removed"))
    link = follow(client, "leads?$select=subject", TRACK)["@odata.deltaLink"]
    assert client.patch(f"leads({changed})", json={"subject": "now changed"}).status_code == 204
    assert client.delete(f"leads({removed})").status_code == 204
    new = create_lead(client, "new")
    body = follow(client, link)
    assert body["@odata.context"].endswith("$metadata#leads(subject)/$delta")
    values = body["value"]
    assert [v.get("leadid") for v in values[:2]] == [changed, new]
    assert values[0]["subject"] == "now changed" and "lastname" not in values[0]
    assert values[2] == {
        "@odata.context": f"{h.api}$metadata#leads/$deletedEntity",
        "id": removed,
        "reason": "deleted",
    }
    assert kept not in {v.get("leadid") for v in values}
    fresh = body["@odata.deltaLink"]
    assert token_of(fresh) != token_of(link)
    assert follow(client, fresh)["value"] == []


def test_created_then_deleted_between_calls_appears_as_deleted(sb):
    _, client = sb
    link = follow(client, "leads", TRACK)["@odata.deltaLink"]
    ghost = create_lead(client, "ghost")
    assert client.delete(f"leads({ghost})").status_code == 204
    values = follow(client, link)["value"]
    assert values == [
        {"@odata.context": values[0]["@odata.context"], "id": ghost, "reason": "deleted"}
    ]


def test_deleted_then_recreated_with_same_key_is_an_upsert(sb):
    _, client = sb
    lead = create_lead(client, "phoenix")
    link = follow(client, "leads", TRACK)["@odata.deltaLink"]
    assert client.delete(f"leads({lead})").status_code == 204
    create_lead(client, "phoenix again", id=lead)
    values = follow(client, link)["value"]
    assert [(v.get("leadid"), v.get("subject")) for v in values] == [(lead, "phoenix again")]


@pytest.mark.parametrize(
    "option",
    [
        "$filter=subject eq 'x'",
        "$orderby=subject",
        "$top=5",
        "$expand=parentaccountid($select=name)",
    ],
)
def test_query_options_are_refused_with_track_changes(sb, option):
    _, client = sb
    r = client.get(f"leads?{option}", headers=TRACK)
    assert r.status_code == 400
    name = option.split("=")[0]
    assert r.json()["error"]["message"] == (
        f'The "{name}" query parameter isn\'t supported when Change Tracking is enabled.'
    )


def test_table_without_change_tracking_is_refused(sb):
    h, client = sb
    h.org.schema["team"].change_tracking = False
    try:
        r = client.get("teams", headers=TRACK)
    finally:
        h.org.schema["team"].change_tracking = True
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "0x80072491",
        "message": "Entity team isn't enabled for change tracking.",
    }


def test_expired_token_asks_for_a_full_sync(sb):
    h, client = sb
    create_lead(client)
    link = follow(client, "leads", TRACK)["@odata.deltaLink"]
    version = int(token_of(link).split("!")[0])
    now = datetime.now(UTC)
    six_days = make_token(version, now - timedelta(days=6))
    eight_days = make_token(version, now - timedelta(days=8))
    assert client.get("leads", params={"$deltatoken": six_days}).status_code == 200
    r = client.get("leads", params={"$deltatoken": eight_days})
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "0x80044352",
        "message": "Version stamp associated with the client has expired. "
        "Please perform a full sync.",
    }
    # The recovery: a full sync without a token works and yields a usable link.
    fresh = follow(client, "leads", TRACK)["@odata.deltaLink"]
    assert follow(client, fresh)["value"] == []


def test_token_expiry_is_configurable():
    with sandbox.start(data="empty", change_tracking_expiry_days=1) as h:
        client = httpx.Client(base_url=h.api, headers={"Authorization": f"Bearer {h.token}"})
        old = make_token(h.org.store.version, datetime.now(UTC) - timedelta(days=2))
        r = client.get("leads", params={"$deltatoken": old})
        assert r.json()["error"]["code"] == "0x80044352"
        client.close()


@pytest.mark.parametrize("bad", ["garbage", "99999999!01/01/2030 00:00:00"])
def test_invalid_tokens_are_refused_and_change_nothing(sb, bad):
    h, client = sb
    before = h.org.store.version
    r = client.get("leads", params={"$deltatoken": bad})
    assert r.status_code == 400 and "deltatoken" in r.json()["error"]["message"]
    assert h.org.store.version == before


def test_more_changes_than_a_page_are_paged_with_next_links(sb):
    h, client = sb
    link = follow(client, "leads?$select=subject", TRACK)["@odata.deltaLink"]
    ids = [create_lead(client, f"P{i}") for i in range(7)]
    for gone in ids[:3]:
        assert client.delete(f"leads({gone})").status_code == 204
    extra = [create_lead(client, f"Q{i}") for i in range(4)]
    paging = {"Prefer": "odata.maxpagesize=3"}
    upserted, deleted, pages = [], [], 0
    url = link
    while True:
        r = client.get(url, headers=paging)
        assert r.status_code == 200
        assert "odata.maxpagesize=3" in r.headers["Preference-Applied"]
        body = r.json()
        pages += 1
        assert len(body["value"]) <= 3
        for v in body["value"]:
            (deleted if v.get("reason") == "deleted" else upserted).append(
                v.get("id") or v["leadid"]
            )
        if pages == 2:  # a write while paging lands in the next answer, exactly once
            late = create_lead(client, "late")
        if "@odata.nextLink" in body:
            assert "@odata.deltaLink" not in body
            url = body["@odata.nextLink"]
            continue
        break
    assert upserted == ids[3:] + extra
    assert deleted == ids[:3]
    assert pages == 4
    nxt = follow(client, body["@odata.deltaLink"])["value"]
    assert [v["leadid"] for v in nxt] == [late]


def test_initial_sync_is_paged_too(sb):
    _, client = sb
    ids = [create_lead(client, f"I{i}") for i in range(5)]
    headers = {"Prefer": "odata.track-changes,odata.maxpagesize=2"}
    body = follow(client, "leads?$select=subject", headers)
    seen = [v["leadid"] for v in body["value"]]
    while "@odata.nextLink" in body:
        body = follow(client, body["@odata.nextLink"], headers)
        seen += [v["leadid"] for v in body["value"]]
    assert seen == ids
    assert follow(client, body["@odata.deltaLink"])["value"] == []


def test_delta_reads_use_the_version_indexes(sb):
    """The delta cost follows the changes: both reads are index range scans, never a table
    scan (timed in benchmarks/bench_sandbox_changes.py)."""
    h, _ = sb
    conn = h.org.store.conn

    def plan(sql, params):
        return " ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))

    upserts = plan(upserts_sql("lead", '"leadid", "subject"'), (1, 9, 10))
    assert "INDEX ix_lead_versionnumber" in upserts and "SCAN lead" not in upserts, upserts
    deletes = plan(deletes_sql("lead", "leadid"), ("lead", 1, 9, 10))
    assert "INDEX ix_tombstones_version" in deletes and "SCAN t" not in deletes, deletes


def test_select_with_unknown_column_is_refused(sb):
    _, client = sb
    r = client.get("leads?$select=nosuchcolumn", headers=TRACK)
    assert r.status_code == 400
    assert "nosuchcolumn" in r.json()["error"]["message"]


def test_count_with_a_delta_token_counts_the_changes(sb):
    _, client = sb
    first = create_lead(client, "a")
    link = follow(client, "leads", TRACK)["@odata.deltaLink"]
    token = token_of(link)
    create_lead(client, "b")
    assert client.patch(f"leads({first})", json={"subject": "a2"}).status_code == 204
    doomed = create_lead(client, "c")
    assert client.delete(f"leads({doomed})").status_code == 204
    r = client.get("leads/$count", params={"$deltatoken": token})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert r.text == "3"  # b created, a updated, c deleted


def test_annotations_are_honoured_in_deltas(sb):
    _, client = sb
    create_lead(client, "annotated")
    prefer = {"Prefer": 'odata.track-changes,odata.include-annotations="*"'}
    r = client.get("leads?$select=subject,statuscode,_ownerid_value", headers=prefer)
    applied = r.headers.get_list("Preference-Applied")
    assert applied == ["odata.track-changes", 'odata.include-annotations="*"']
    (record,) = r.json()["value"]
    assert record["statuscode@OData.Community.Display.V1.FormattedValue"] == "New"
    assert record["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "systemuser"
