"""FetchXML through `GET <entityset>?fetchXml=...` on the sandbox, over loopback HTTP.

Behaviour from Microsoft's FetchXML pages:
https://learn.microsoft.com/power-apps/developer/data-platform/fetchxml/retrieve-data (Web API
shape, null columns left out), .../fetchxml/page-results (paging cookie annotations),
.../fetchxml/aggregate-data (aggregates, grouping, the 50,000-row limit and its code),
.../fetchxml/reference/condition (operators), .../fetchxml/reference/link-entity (joins).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote
from xml.etree import ElementTree as ET

import httpx
import pytest

from d365nb import sandbox as sandbox_module
from tests.support.records import create, present
from tests.support.sandboxes import api_client

FORMATTED = "@OData.Community.Display.V1.FormattedValue"
COOKIE = "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"
MORE = "@Microsoft.Dynamics.CRM.morerecords"
PAGING = {
    "Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.fetchxmlpagingcookie,'
    'Microsoft.Dynamics.CRM.morerecords"'
}

# (firstname, lastname, annualincome, birthdate, account key)
CONTACTS = [
    ("Ann", "Lane", 50000.0, "1990-05-01", "alpha"),
    ("Bob", "Moss", 70000.0, None, "alpha"),
    ("Cy", "Reed", None, "1985-01-20", "beta"),
    ("Di", "Shaw", 30000.0, "2001-11-30", None),
    ("Ed", "Todd", 90000.0, "1979-07-04", None),
]


@pytest.fixture(scope="module")
def known() -> Iterator[tuple]:
    with sandbox_module.start(data="empty") as handle:
        client = api_client(handle)
        accounts = {}
        for key, name, revenue in (("alpha", "Alpha Ltd", 1000.0), ("beta", "Beta Inc", None)):
            accounts[key] = create(client, "accounts", present(name=name, revenue=revenue))
        contacts = {}
        for first, last, income, born, account in CONTACTS:
            body = present(firstname=first, lastname=last, annualincome=income, birthdate=born)
            if account is not None:
                body["parentcustomerid_account@odata.bind"] = f"/accounts({accounts[account]})"
            contacts[first] = create(client, "contacts", body)
        yield handle, client, accounts, contacts
        client.close()


def fetch(client: httpx.Client, xml: str, entity_set: str = "contacts", headers=None):
    return client.get(entity_set, params={"fetchXml": xml}, headers=headers or {})


def names(response: httpx.Response) -> list[str]:
    return [row["fullname"] for row in response.json()["value"]]


def test_attributes_key_and_etag_with_nulls_left_out(known):
    _, client, _, contacts = known
    r = fetch(client, "<fetch><entity name='contact'><attribute name='fullname'/>"
                      "<attribute name='annualincome'/><order attribute='firstname'/>"
                      "</entity></fetch>")  # fmt: skip
    assert r.status_code == 200
    body = r.json()
    assert body["@odata.context"].endswith("$metadata#contacts(fullname,annualincome,contactid)")
    first, third = body["value"][0], body["value"][2]
    assert list(first) == ["@odata.etag", "fullname", "annualincome", "contactid"]
    assert first["contactid"] == contacts["Ann"] and first["annualincome"] == 50000.0
    assert first["@odata.etag"].startswith('W/"')
    assert "annualincome" not in third  # Cy has no income: the column is left out
    assert MORE not in body and COOKIE not in body  # only when asked for


def test_filter_and_or_nested_with_common_operators(known):
    _, client, _, _ = known
    xml = """<fetch><entity name='contact'><attribute name='fullname'/>
      <order attribute='firstname'/>
      <filter type='or'>
        <condition attribute='lastname' operator='like' value='%os%'/>
        <filter type='and'>
          <condition attribute='annualincome' operator='ge' value='60000'/>
          <condition attribute='firstname' operator='ne' value='Bob'/>
        </filter>
      </filter></entity></fetch>"""
    assert names(fetch(client, xml)) == ["Bob Moss", "Ed Todd"]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("<condition attribute='firstname' operator='eq' value='ann'/>", ["Ann Lane"]),
        ("<condition attribute='lastname' operator='begins-with' value='S'/>", ["Di Shaw"]),
        (
            "<condition attribute='lastname' operator='ends-with' value='d'/>",
            ["Cy Reed", "Ed Todd"],
        ),
        (
            "<condition attribute='lastname' operator='not-like' value='%e%'/>",
            ["Bob Moss", "Di Shaw", "Ed Todd"],
        ),
        ("<condition attribute='annualincome' operator='null'/>", ["Cy Reed"]),
        (
            "<condition attribute='birthdate' operator='not-null'/>",
            ["Ann Lane", "Cy Reed", "Di Shaw", "Ed Todd"],
        ),
        (
            "<condition attribute='firstname' operator='in'><value>Ann</value><value>Di</value></condition>",
            ["Ann Lane", "Di Shaw"],
        ),
        (
            "<condition attribute='firstname' operator='not-in'><value>Ann</value><value>Di</value></condition>",
            ["Bob Moss", "Cy Reed", "Ed Todd"],
        ),
        (
            "<condition attribute='annualincome' operator='between'><value>40000</value><value>70000</value></condition>",
            ["Ann Lane", "Bob Moss"],
        ),
        (
            "<condition attribute='birthdate' operator='on-or-after' value='1990-05-01'/>",
            ["Ann Lane", "Di Shaw"],
        ),
        (
            "<condition attribute='birthdate' operator='on-or-before' value='1985-01-20'/>",
            ["Cy Reed", "Ed Todd"],
        ),
        ("<condition attribute='birthdate' operator='on' value='1979-07-04'/>", ["Ed Todd"]),
        ("<condition attribute='annualincome' operator='lt' value='50000'/>", ["Di Shaw"]),
    ],
)
def test_condition_operators(known, condition, expected):
    _, client, _, _ = known
    xml = (f"<fetch><entity name='contact'><attribute name='fullname'/><order attribute='firstname'/>"
           f"<filter>{condition}</filter></entity></fetch>")  # fmt: skip
    r = fetch(client, xml)
    assert r.status_code == 200, r.text
    assert names(r) == expected


def test_condition_on_a_lookup_by_guid_in_braces(known):
    _, client, accounts, _ = known
    guid = "{" + accounts["alpha"].upper() + "}"
    xml = (f"<fetch><entity name='contact'><attribute name='fullname'/><order attribute='firstname'/>"
           f"<filter><condition attribute='parentcustomerid' operator='eq' value='{guid}'/>"
           "</filter></entity></fetch>")  # fmt: skip
    assert names(fetch(client, xml)) == ["Ann Lane", "Bob Moss"]


def test_inner_link_entity_columns_are_named_alias_dot_column(known):
    _, client, _, _ = known
    xml = """<fetch><entity name='contact'><attribute name='fullname'/><order attribute='firstname'/>
      <link-entity name='account' from='accountid' to='parentcustomerid' alias='acc'>
        <attribute name='name'/><attribute name='revenue'/>
      </link-entity></entity></fetch>"""
    rows = fetch(client, xml).json()["value"]
    assert [(r["fullname"], r["acc.name"], r.get("acc.revenue")) for r in rows] == [
        ("Ann Lane", "Alpha Ltd", 1000.0),
        ("Bob Moss", "Alpha Ltd", 1000.0),
        ("Cy Reed", "Beta Inc", None),
    ]


def test_outer_link_keeps_unmatched_rows_and_its_filter_restricts_the_link(known):
    _, client, _, _ = known
    xml = """<fetch><entity name='contact'><attribute name='fullname'/><order attribute='firstname'/>
      <link-entity name='account' from='accountid' to='parentcustomerid' link-type='outer'>
        <attribute name='name'/>
        <filter><condition attribute='name' operator='eq' value='Beta Inc'/></filter>
      </link-entity></entity></fetch>"""
    rows = fetch(client, xml).json()["value"]
    assert [r["fullname"] for r in rows] == [
        "Ann Lane",
        "Bob Moss",
        "Cy Reed",
        "Di Shaw",
        "Ed Todd",
    ]
    # no alias: the service names the link `<table>1`
    assert [r.get("account1.name") for r in rows] == [None, None, "Beta Inc", None, None]


def test_condition_on_a_linked_column_with_entityname(known):
    _, client, _, _ = known
    xml = """<fetch><entity name='contact'><attribute name='fullname'/><order attribute='firstname'/>
      <link-entity name='account' from='accountid' to='parentcustomerid' alias='a' link-type='outer'/>
      <filter type='or'>
        <condition entityname='a' attribute='name' operator='eq' value='Beta Inc'/>
        <condition attribute='firstname' operator='eq' value='Ed'/>
      </filter></entity></fetch>"""
    assert names(fetch(client, xml)) == ["Cy Reed", "Ed Todd"]


def test_order_descending_and_top(known):
    _, client, _, _ = known
    xml = ("<fetch top='2'><entity name='contact'><attribute name='fullname'/>"
           "<order attribute='annualincome' descending='true'/></entity></fetch>")  # fmt: skip
    assert names(fetch(client, xml)) == ["Ed Todd", "Bob Moss"]


def test_all_attributes_returns_every_non_null_column(known):
    _, client, _, contacts = known
    xml = ("<fetch><entity name='contact'><all-attributes/><filter>"
           "<condition attribute='firstname' operator='eq' value='Ann'/></filter></entity></fetch>")  # fmt: skip
    row = fetch(client, xml).json()["value"][0]
    assert row["contactid"] == contacts["Ann"]
    assert row["lastname"] == "Lane" and row["birthdate"] == "1990-05-01"
    assert "_parentcustomerid_value" in row and "description" not in row


def test_paging_cookie_and_more_records_follow_the_documented_loop(known):
    """Page through 5 contacts 2 at a time as page-results.md describes: decode the cookie's
    `pagingcookie` twice, set it as `paging-cookie`, increment `page`."""
    _, client, _, _ = known
    fetch_el = ET.fromstring(
        "<fetch count='2' page='1'><entity name='contact'><attribute name='fullname'/>"
        "<order attribute='lastname' descending='true'/></entity></fetch>"
    )
    seen, pages = [], 0
    while True:
        r = fetch(client, ET.tostring(fetch_el, encoding="unicode"), headers=PAGING)
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        seen += [row["fullname"] for row in body["value"]]
        assert body[MORE] is (pages < 3)
        if not body[MORE]:
            assert COOKIE not in body
            break
        cookie = ET.fromstring(body[COOKIE])
        assert cookie.get("pagenumber") == str(pages + 1) and cookie.get("istracking") == "False"
        inner = ET.fromstring(unquote(unquote(cookie.get("pagingcookie"))))
        assert inner.tag == "cookie" and inner.get("page") == str(pages)
        # the sort column's and the key's values of the page's last and first rows
        assert [item.tag for item in inner] == ["lastname", "contactid"]
        assert inner[0].get("first") == seen[-2].split()[1]
        assert inner[0].get("last") == seen[-1].split()[1]
        assert inner[1].get("last").startswith("{") and inner[1].get("last").isupper()
        fetch_el.set("paging-cookie", unquote(unquote(cookie.get("pagingcookie"))))
        fetch_el.set("page", str(pages + 1))
    assert seen == ["Ed Todd", "Di Shaw", "Cy Reed", "Bob Moss", "Ann Lane"]


def _page(client, page: int, cookie: str | None, order: str = "<order attribute='lastname'/>"):
    fetch_el = ET.fromstring(
        f"<fetch count='2' page='{page}'><entity name='contact'><attribute name='fullname'/>"
        f"{order}</entity></fetch>"
    )
    if cookie:
        fetch_el.set("paging-cookie", cookie)
    r = fetch(client, ET.tostring(fetch_el, encoding="unicode"), headers=PAGING)
    assert r.status_code == 200, r.text
    body = r.json()
    inner = None
    if COOKIE in body:
        inner = unquote(unquote(ET.fromstring(body[COOKIE]).get("pagingcookie")))
    return [row["fullname"] for row in body["value"]], inner, body[MORE]


def test_the_cookie_positions_the_next_page_even_after_an_insert(known):
    """With the paging cookie the next page starts after the last row read, so a record
    created meanwhile before that row neither repeats nor shifts a row; page number alone
    (simple paging) counts rows and so shifts."""
    _, client, _, _ = known
    first, cookie, more = _page(client, 1, None)
    assert first == ["Ann Lane", "Bob Moss"] and more and cookie
    created = client.post("contacts", json={"firstname": "Al", "lastname": "Aaron"})
    try:
        second, _, _ = _page(client, 2, cookie)
        assert second == ["Cy Reed", "Di Shaw"]
        by_number, _, _ = _page(client, 2, None)
        assert by_number == ["Bob Moss", "Cy Reed"]  # the page number alone shifted
    finally:
        client.delete(created.headers["OData-EntityId"].split("/api/data/v9.2/")[1])


def test_a_cookie_from_another_page_or_query_falls_back_to_the_page_number(known):
    _, client, _, _ = known
    _, cookie, _ = _page(client, 1, None)
    # the cookie of page 1 sent with page 3: not this page's; page 3 by number
    assert _page(client, 3, cookie)[0] == ["Ed Todd"]
    tampered = cookie.replace("Moss", "Zzz")
    assert _page(client, 2, tampered)[0] == []  # a cookie is followed as written
    assert _page(client, 2, "<not a cookie")[0] == ["Cy Reed", "Di Shaw"]


def test_sorted_by_a_linked_column_there_is_no_cookie(known):
    _, client, _, _ = known
    order = (
        "<link-entity name='account' from='accountid' to='parentcustomerid' link-type='outer'>"
        "<order attribute='name'/></link-entity><order attribute='lastname'/>"
    )
    names_, cookie, more = _page(client, 1, None, order)
    assert len(names_) == 2 and more and cookie is None


def test_aggregate_with_groupby_order_alias_and_count_distinct(known):
    _, client, accounts, _ = known
    xml = """<fetch aggregate='true'><entity name='contact'>
      <attribute name='parentcustomerid' alias='acct' groupby='true'/>
      <attribute name='contactid' alias='n' aggregate='count'/>
      <attribute name='annualincome' alias='incomes' aggregate='countcolumn'/>
      <attribute name='lastname' alias='names' aggregate='countcolumn' distinct='true'/>
      <attribute name='annualincome' alias='total' aggregate='sum'/>
      <attribute name='annualincome' alias='avg' aggregate='avg'/>
      <attribute name='birthdate' alias='oldest' aggregate='min'/>
      <order alias='acct'/>
    </entity></fetch>"""
    r = fetch(client, xml, headers={"Prefer": 'odata.include-annotations="*"'})
    assert r.status_code == 200, r.text
    rows = r.json()["value"]
    by = {row.get("acct"): row for row in rows}
    assert by[None]["n"] == 2 and by[None]["total"] == 120000.0 and by[None]["avg"] == 60000.0
    assert by[None]["oldest"] == "1979-07-04"
    alpha = by[accounts["alpha"]]
    assert (alpha["n"], alpha["incomes"], alpha["names"], alpha["total"]) == (2, 2, 2, 120000.0)
    assert alpha[f"acct{FORMATTED}"] == "Alpha Ltd"
    beta = by[accounts["beta"]]
    assert (beta["n"], beta["incomes"]) == (1, 0) and "total" not in beta
    assert "@odata.etag" not in alpha


def test_aggregate_grouped_by_a_date_part(known):
    _, client, _, _ = known
    xml = """<fetch aggregate='true'><entity name='contact'>
      <attribute name='birthdate' alias='month' groupby='true' dategrouping='month'/>
      <attribute name='contactid' alias='n' aggregate='count'/>
      <filter><condition attribute='birthdate' operator='not-null'/></filter>
      <order alias='month'/></entity></fetch>"""
    rows = fetch(client, xml).json()["value"]
    assert rows == [{"month": 1, "n": 1}, {"month": 5, "n": 1}, {"month": 7, "n": 1},
                    {"month": 11, "n": 1}]  # fmt: skip


def test_aggregate_over_the_limit_is_the_documented_error(known):
    _, client, _, _ = known
    xml = ("<fetch aggregate='true' aggregatelimit='4'><entity name='contact'>"
           "<attribute name='contactid' alias='n' aggregate='count'/></entity></fetch>")  # fmt: skip
    r = fetch(client, xml)
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "0x8004e023",
        "message": "AggregateQueryRecordLimit exceeded. Cannot perform this operation.",
    }
    under = xml.replace("aggregatelimit='4'", "aggregatelimit='5'")
    assert fetch(client, under).json()["value"] == [{"n": 5}]


def test_aggregate_limit_follows_the_org_setting(known):
    handle, client, _, _ = known
    handle.org.config["aggregate_limit"] = 3
    try:
        xml = ("<fetch aggregate='true'><entity name='contact'>"
               "<attribute name='contactid' alias='n' aggregate='count'/></entity></fetch>")  # fmt: skip
        assert fetch(client, xml).json()["error"]["code"] == "0x8004e023"
    finally:
        handle.org.config.pop("aggregate_limit", None)


def test_unknown_attribute_is_query_builder_no_attribute(known):
    _, client, _, _ = known
    r = fetch(client, "<fetch><entity name='contact'><attribute name='fullnam'/></entity></fetch>")
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "0x80041103",
        "message": "'contact' entity doesn't contain attribute with Name = 'fullnam' and "
        "NameMapping = 'Logical'.",
    }


def test_malformed_xml_is_invalid_xml(known):
    _, client, _, _ = known
    r = fetch(client, "<fetch><entity name='contact'>")
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "0x80040201" and error["message"].startswith("Invalid XML.")


@pytest.mark.parametrize(
    "xml",
    [
        "",
        "not xml",
        "<fetch/>",
        "<query><entity name='contact'/></query>",
        "<fetch><entity name='account'/></fetch>",  # not the entity set's table
        "<fetch><entity name='nosuch'/></fetch>",
        "<fetch><entity/></fetch>",
        "<fetch top='0'><entity name='contact'/></fetch>",
        "<fetch count='9999'><entity name='contact'/></fetch>",
        "<fetch top='5' page='2'><entity name='contact'/></fetch>",
        "<fetch aggregate='maybe'><entity name='contact'/></fetch>",
        "<fetch><entity name='contact'><order attribute='nosuch'/></entity></fetch>",
        "<fetch><entity name='contact'><order/></entity></fetch>",
        "<fetch><entity name='contact'><bogus/></entity></fetch>",
        "<fetch><entity name='contact'><filter type='xor'/></entity></fetch>",
        "<fetch><entity name='contact'><filter><condition attribute='firstname' operator='sounds-like' value='a'/></filter></entity></fetch>",
        "<fetch><entity name='contact'><filter><condition attribute='annualincome' operator='gt' value='lots'/></filter></entity></fetch>",
        "<fetch><entity name='contact'><filter><condition attribute='birthdate' operator='eq' value='yesterday-ish'/></filter></entity></fetch>",
        "<fetch><entity name='contact'><filter><condition attribute='parentcustomerid' operator='eq' value='not-a-guid'/></filter></entity></fetch>",
        "<fetch><entity name='contact'><filter><condition attribute='firstname' operator='in'/></filter></entity></fetch>",
        "<fetch><entity name='contact'><filter><condition attribute='firstname' operator='between' value='a'/></filter></entity></fetch>",
        "<fetch><entity name='contact'><filter><condition attribute='annualincome' operator='like' value='1%'/></filter></entity></fetch>",
        "<fetch><entity name='contact'><filter><condition entityname='zz' attribute='name' operator='eq' value='a'/></filter></entity></fetch>",
        "<fetch><entity name='contact'><link-entity name='account' from='accountid' to='nosuch'/></entity></fetch>",
        "<fetch><entity name='contact'><link-entity name='account' from='accountid'/></entity></fetch>",
        "<fetch><entity name='contact'><link-entity name='account' from='accountid' to='parentcustomerid' link-type='natural'/></entity></fetch>",
        "<fetch aggregate='true'><entity name='contact'><attribute name='fullname'/></entity></fetch>",
        "<fetch aggregate='true'><entity name='contact'><attribute name='fullname' aggregate='sum' alias='s'/></entity></fetch>",
        "<fetch aggregate='true'><entity name='contact'><attribute name='fullname' aggregate='median' alias='s'/></entity></fetch>",
        "<fetch aggregate='true'><entity name='contact'><attribute name='contactid' aggregate='count'/></entity></fetch>",
        "<fetch aggregate='true'><entity name='contact'><attribute name='birthdate' groupby='true' dategrouping='fortnight' alias='d'/></entity></fetch>",
        "<fetch><entity name='contact'><attribute name='fullname' groupby='true' alias='g'/></entity></fetch>",
        "<!DOCTYPE x [<!ENTITY a 'b'>]><fetch><entity name='contact'/></fetch>&a;",
    ],
)
def test_bad_fetchxml_is_a_400_never_a_5xx(known, xml):
    _, client, _, _ = known
    r = fetch(client, xml)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert set(error) == {"code", "message"} and error["code"] and error["message"]


def test_other_query_options_beside_fetchxml_are_refused(known):
    _, client, _, _ = known
    r = client.get("contacts", params={"fetchXml": "<fetch><entity name='contact'/></fetch>",
                                       "$top": "1"})  # fmt: skip
    assert r.status_code == 400


def test_fetchxml_agrees_with_odata_on_the_demo_data(api):
    """The same filter through FetchXML and `$filter` returns the same leads."""
    xml = ("<fetch><entity name='lead'><attribute name='leadid'/><filter>"
           "<condition attribute='statuscode' operator='eq' value='2'/></filter></entity></fetch>")  # fmt: skip
    fetched = {row["leadid"] for row in fetch(api, xml, "leads").json()["value"]}
    listed = {row["leadid"] for row in api.get(
        "leads", params={"$filter": "statuscode eq 2", "$select": "leadid"}).json()["value"]}  # fmt: skip
    assert fetched == listed and fetched


def test_paging_with_a_lookup_attribute_keeps_the_key_in_each_row(known):
    """The key and the cookie survive a lookup attribute (whose target type the sandbox reads
    alongside it)."""
    _, client, _, contacts = known
    xml = ("<fetch count='2' page='1'><entity name='contact'><attribute name='parentcustomerid'/>"
           "<order attribute='firstname'/></entity></fetch>")  # fmt: skip
    body = fetch(client, xml, headers=PAGING).json()
    assert [row["contactid"] for row in body["value"]] == [contacts["Ann"], contacts["Bob"]]
    assert body[MORE] is True and COOKIE in body


def test_distinct_without_attributes_returns_the_keys(known):
    _, client, _, contacts = known
    xml = "<fetch distinct='true'><entity name='contact'><order attribute='firstname'/></entity></fetch>"
    rows = fetch(client, xml).json()["value"]
    assert [row["contactid"] for row in rows] == [
        contacts[n] for n in ("Ann", "Bob", "Cy", "Di", "Ed")
    ]


def test_distinct_values(known):
    _, client, _, _ = known
    xml = ("<fetch distinct='true'><entity name='contact'><attribute name='parentcustomerid'/>"
           "</entity></fetch>")  # fmt: skip
    rows = fetch(client, xml).json()["value"]
    assert len(rows) == 3 and sum("_parentcustomerid_value" not in r for r in rows) == 1


def test_a_number_too_large_for_the_column_is_a_400(known):
    _, client, _, _ = known
    xml = ("<fetch><entity name='contact'><filter><condition attribute='versionnumber' "
           "operator='in'><value>99999999999999999999999</value></condition></filter></entity></fetch>")  # fmt: skip
    r = fetch(client, xml)
    assert r.status_code == 400 and r.json()["error"]["code"] == "0x80040203"


def test_fetchxml_inside_a_batch(known):
    """retrieve-data.md: a long FetchXML goes in a `$batch` GET part (URL up to 64 KB)."""
    from urllib.parse import quote

    _, client, _, _ = known
    xml = quote(
        "<fetch><entity name='contact'><attribute name='fullname'/><order attribute='firstname'/>"
        "<filter><condition attribute='firstname' operator='in'>"
        + "".join(f"<value>nobody{i}</value>" for i in range(1000))
        + "<value>Di</value></condition></filter></entity></fetch>",
        safe="",
    )
    boundary = "batch_fx"
    body = (
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary"
        f"\r\n\r\nGET /api/data/v9.2/contacts?fetchXml={xml} HTTP/1.1\r\n"
        f"Accept: application/json\r\n\r\n--{boundary}--\r\n"
    )
    assert len(xml) > 32_768  # too long for a plain GET URL
    r = client.post(
        "$batch",
        content=body.encode(),
        headers={"Content-Type": f"multipart/mixed; boundary={boundary}"},
    )
    assert r.status_code == 200, r.text
    assert "HTTP/1.1 200 OK" in r.text and '"fullname":"Di Shaw"' in r.text


# -- generated queries: any mix of the language's parts answers 200 or a Dataverse 400 ----------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_COLUMNS = st.sampled_from(
    ["fullname", "firstname", "annualincome", "birthdate", "parentcustomerid", "contactid",
     "createdon", "statuscode", "donotemail", "versionnumber", "ownerid", "nosuch"]
)  # fmt: skip
_VALUES = st.sampled_from(
    ["1", "0", "abc", "2024-01-01", "2024-01-01T10:00:00Z", "true", "-3", "", "%", "1.5",
     "{00000000-0000-0000-0000-000000000000}", "99999999999999999999999"]
)  # fmt: skip
_OPERATORS = st.sampled_from(
    ["eq", "ne", "lt", "ge", "like", "not-like", "begins-with", "in", "not-in", "null",
     "not-null", "between", "on", "on-or-after", "today", "last-x-days", "eq-userid", "under"]
)  # fmt: skip


@st.composite
def _fetches(draw) -> str:
    aggregate = draw(st.booleans())
    attrs = []
    for i in range(draw(st.integers(0, 3))):
        column = draw(_COLUMNS)
        if aggregate and draw(st.booleans()):
            attrs.append(f"<attribute name='{column}' alias='a{i}' groupby='true'/>")
        elif aggregate:
            how = draw(st.sampled_from(["count", "countcolumn", "sum", "avg", "min", "max"]))
            attrs.append(f"<attribute name='{column}' alias='a{i}' aggregate='{how}'/>")
        else:
            attrs.append(f"<attribute name='{column}'/>")
    conditions = "".join(
        f"<condition attribute='{draw(_COLUMNS)}' operator='{draw(_OPERATORS)}' "
        f"value='{draw(_VALUES)}'>{'<value>' + draw(_VALUES) + '</value>' if draw(st.booleans()) else ''}"
        "</condition>"
        for _ in range(draw(st.integers(0, 3)))
    )
    kind = draw(st.sampled_from(["and", "or"]))
    link = ""
    if draw(st.booleans()):
        link = (
            "<link-entity name='account' from='accountid' to='parentcustomerid' "
            f"link-type='{draw(st.sampled_from(['inner', 'outer']))}' alias='x'>"
            f"<attribute name='{draw(st.sampled_from(['name', 'revenue', 'nosuch']))}'/></link-entity>"
        )
    order = (
        f"<order attribute='{draw(_COLUMNS)}' descending='true'/>" if draw(st.booleans()) else ""
    )
    paging = draw(st.sampled_from(["", " count='2' page='2'", " top='3'", " distinct='true'"]))
    return (
        f"<fetch{' aggregate=' + chr(39) + 'true' + chr(39) if aggregate else ''}{paging}>"
        f"<entity name='contact'>{''.join(attrs)}{order}<filter type='{kind}'>{conditions}</filter>"
        f"{link}</entity></fetch>"
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(xml=_fetches())
def test_generated_fetchxml_never_gets_a_5xx(known, xml):
    _, client, _, _ = known
    r = fetch(client, xml, headers={"Prefer": 'odata.include-annotations="*"'})
    assert r.status_code in (200, 400), (xml, r.text)
    if r.status_code == 400:
        assert set(r.json()["error"]) == {"code", "message"}
