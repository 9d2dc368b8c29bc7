"""Parity checks behind the corpus: behaviour Dataverse documents in prose (or shows once) that
the sandbox must reproduce everywhere - API versions in every URL it answers with, expanded
collections' links and paging, response annotations, validation (what is refused, what is
accepted), Unicode case folding and the URL length limit. Over loopback HTTP on a fresh sandbox.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

FV = "@OData.Community.Display.V1.FormattedValue"


def _create(api, entity_set: str, body: dict) -> str:
    r = api.post(entity_set, json=body)
    assert r.status_code == 204, r.text
    return r.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


# -- versions -------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v9.0", "v9.1"])
def test_older_versions_answer_in_their_own_version(empty_api, empty_sandbox, version):
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors
    (version compatibility): code written for v9.0 keeps working when it references v9.0, and
    every URL in the answers names that version."""
    root = f"{empty_sandbox.url}/api/data/{version}/"
    created = empty_api.post(root + "contacts", json={"lastname": "One"})
    assert created.headers["OData-EntityId"].startswith(root + "contacts(")
    contact = created.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    _create(empty_api, "contacts", {"lastname": "Two"})
    account = _create(
        empty_api, "accounts", {"name": "A", "primarycontactid@odata.bind": f"/contacts({contact})"}
    )
    page = empty_api.get(
        root + "contacts?$select=lastname", headers={"Prefer": "odata.maxpagesize=1"}
    ).json()
    assert page["@odata.context"] == root + "$metadata#contacts(lastname)"
    assert page["@odata.nextLink"].startswith(root + "contacts?")
    assert empty_api.get(page["@odata.nextLink"]).json()["value"][0]["lastname"] == "Two"
    ref = empty_api.get(root + f"accounts({account})/primarycontactid/$ref").json()
    assert ref["@odata.id"] == root + f"contacts({contact})"
    expanded = empty_api.get(
        root + "accounts?$select=name&$expand=primarycontactid/$ref,contact_customer_accounts"
    ).json()["value"][0]
    assert expanded["primarycontactid"]["@odata.id"] == root + f"contacts({contact})"
    assert expanded["contact_customer_accounts@odata.nextLink"].startswith(root + "accounts(")
    delta = empty_api.get(
        root + "accounts?$select=name", headers={"Prefer": "odata.track-changes"}
    ).json()
    assert delta["@odata.deltaLink"].startswith(root + "accounts?")
    assert empty_api.get(root + "$metadata", headers={"Accept": "*/*"}).status_code == 200


def test_batch_parts_answer_in_the_batch_version(empty_api, empty_sandbox):
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api"""
    root = f"{empty_sandbox.url}/api/data/v9.0/"
    body = (
        "--batch_B\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "POST accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
        '{"name": "relative"}\r\n'
        "--batch_B\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "POST /api/data/v9.1/accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
        '{"name": "absolute"}\r\n--batch_B--\r\n'
    )
    r = empty_api.post(
        root + "$batch",
        content=body,
        headers={"Content-Type": 'multipart/mixed; boundary="batch_B"'},
    )
    assert r.status_code == 200, r.text
    assert f"OData-EntityId: {root}accounts(" in r.text
    assert f"OData-EntityId: {empty_sandbox.url}/api/data/v9.1/accounts(" in r.text


# -- $expand --------------------------------------------------------------------------------------


@pytest.fixture
def account_with_tasks(empty_api):
    account = _create(empty_api, "accounts", {"name": "Litware"})
    _create(empty_api, "accounts", {"name": "Other"})
    for n in range(3):
        _create(
            empty_api,
            "tasks",
            {
                "subject": f"Task {n}",
                "regardingobjectid_account_task@odata.bind": f"/accounts({account})",
            },
        )
    _create(
        empty_api,
        "contacts",
        {"lastname": "Stubberod", "parentcustomerid_account@odata.bind": f"/accounts({account})"},
    )
    return account


def test_single_level_collection_expand_links_the_whole_related_collection(
    empty_api, account_with_tasks
):
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/join-tables
    (single $expand): no paging of the children, each with its lookup back to the parent, and a
    `<nav>@odata.nextLink` without paging information that returns the same rows."""
    body = empty_api.get(
        "accounts?$select=name&$expand=Account_Tasks($select=subject)",
        headers={"Prefer": "odata.maxpagesize=1"},
    ).json()
    assert body["@odata.context"].endswith("$metadata#accounts(name,Account_Tasks(subject))")
    record = body["value"][0]
    assert [t["subject"] for t in record["Account_Tasks"]] == ["Task 0", "Task 1", "Task 2"]
    assert all(t["_regardingobjectid_value"] == account_with_tasks for t in record["Account_Tasks"])
    link = record["Account_Tasks@odata.nextLink"]
    assert urlsplit(link).path.endswith(f"/accounts({account_with_tasks})/Account_Tasks")
    assert "$skiptoken" not in link
    again = empty_api.get(link).json()["value"]
    assert [t["subject"] for t in again] == ["Task 0", "Task 1", "Task 2"]


def test_nested_expand_pages_every_collection(empty_api, account_with_tasks):
    """join-tables (nested $expand): with a nested $expand anywhere, odata.maxpagesize pages each
    expanded collection; its nextLink carries the paging and returns the following rows."""
    query = (
        "accounts?$select=name&$expand=Account_Tasks($select=subject),"
        "contact_customer_accounts($select=fullname;$expand=createdby($select=fullname))"
    )
    record = empty_api.get(query, headers={"Prefer": "odata.maxpagesize=2"}).json()["value"][0]
    tasks = record["Account_Tasks"]
    assert [t["subject"] for t in tasks] == ["Task 0", "Task 1"]
    assert all(set(t) == {"activityid", "subject"} for t in tasks)  # no etag, no lookup back
    following = empty_api.get(
        record["Account_Tasks@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=2"}
    ).json()
    assert [t["subject"] for t in following["value"]] == ["Task 2"]
    assert "@odata.nextLink" not in following
    contacts = record["contact_customer_accounts"]
    assert contacts[0]["createdby"]["ownerid"] == contacts[0]["createdby"]["systemuserid"]
    assert "contact_customer_accounts@odata.nextLink" not in record  # one contact: page not full


def test_expand_ref_and_expanded_records_shapes(empty_api):
    """join-tables: `<nav>/$ref` gives `{"@odata.id"}` beside the lookup value; expanded
    single-valued records carry no etag in a collection answer, but do when one record is
    retrieved (retrieve-entity-using-web-api)."""
    contact = _create(empty_api, "contacts", {"lastname": "Anderson"})
    account = _create(
        empty_api, "accounts", {"name": "A", "primarycontactid@odata.bind": f"/contacts({contact})"}
    )
    body = empty_api.get("accounts?$select=name&$expand=primarycontactid/$ref").json()
    assert body["@odata.context"].endswith(
        "#accounts(name,primarycontactid,primarycontactid/$ref())"
    )
    record = body["value"][0]
    assert record["_primarycontactid_value"] == contact
    assert record["primarycontactid"] == {
        "@odata.id": f"{empty_api.base_url}contacts({contact})".replace("///", "//")
    }
    listed = empty_api.get("accounts?$select=name&$expand=primarycontactid($select=fullname)")
    assert "@odata.etag" not in listed.json()["value"][0]["primarycontactid"]
    one = empty_api.get(
        f"accounts({account})?$select=name&$expand=primarycontactid($select=fullname)"
    )
    assert one.json()["@odata.context"].endswith(
        "#accounts(name,primarycontactid,primarycontactid(fullname))/$entity"
    )
    assert one.json()["primarycontactid"]["@odata.etag"].startswith('W/"')


# -- annotations and headers ----------------------------------------------------------------------


def test_collection_annotations_and_several_preferences(empty_api):
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors
    (request annotations): with `*` a collection carries totalrecordcount, ...limitexceeded and
    globalmetadataversion (a string); several preferences in one Prefer header all apply."""
    for n in range(4):
        _create(empty_api, "accounts", {"name": f"A{n}", "customertypecode": 1})
    r = empty_api.get(
        "accounts?$select=name,customertypecode",
        headers={
            "Prefer": 'odata.include-annotations="*",odata.maxpagesize=3,return=representation'
        },
    )
    body = r.json()
    assert body["@Microsoft.Dynamics.CRM.totalrecordcount"] == -1
    assert body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] is False
    assert isinstance(body["@Microsoft.Dynamics.CRM.globalmetadataversion"], str)
    assert len(body["value"]) == 3 and "@odata.nextLink" in body
    assert body["value"][0]["customertypecode" + FV] == "Competitor"
    assert set(r.headers.get_list("Preference-Applied")) == {
        'odata.include-annotations="*"',
        "odata.maxpagesize=3",
    }
    plain = empty_api.get("accounts?$select=name").json()
    assert not [k for k in plain if k.startswith("@Microsoft")]


def test_not_modified_carries_dataverse_headers(empty_api):
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api"""
    account = _create(empty_api, "accounts", {"name": "A"})
    etag = empty_api.get(f"accounts({account})?$select=name").json()["@odata.etag"]
    r = empty_api.get(f"accounts({account})?$select=name", headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["OData-Version"] == "4.0"
    assert r.headers["Content-Type"] == "application/json; odata.metadata=minimal"
    assert r.headers["ETag"] == etag


# -- validation -----------------------------------------------------------------------------------


def test_trailing_comma_in_select_is_accepted(empty_api):
    """Dataverse ignores a trailing comma in $select (the sandbox used to refuse it)."""
    account = _create(empty_api, "accounts", {"name": "A"})
    listed = empty_api.get("accounts?$select=name,")
    assert listed.status_code == 200, listed.text
    assert listed.json()["@odata.context"].endswith("#accounts(name)")
    one = empty_api.get(f"accounts({account})?$select=name,")
    assert one.status_code == 200 and one.json()["name"] == "A"
    assert empty_api.get("accounts?$select=name,,").status_code == 400


def test_not_in_front_of_a_query_function_is_refused(empty_api):
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-data-web-api
    (limitations of query functions) - while `not` before contains() is documented to work."""
    r = empty_api.get(
        "accounts?$select=name&$filter=not (Microsoft.Dynamics.CRM.In(PropertyName='name',"
        "PropertyValues=[\"A\"]) or name eq 'B')"
    )
    assert r.status_code == 400
    assert r.json()["error"]["message"] == (
        "Not operator along with the Custom Named Condition operators is not allowed"
    )
    assert empty_api.get("accounts?$filter=not contains(name,'x')").status_code == 200


def test_non_ascii_text_compares_case_insensitively_accent_sensitively(empty_api):
    """Dataverse compares text with SQL Server's Latin1_General_CI_AS collation: case-insensitive
    (filter-rows: "All filters using string values are case insensitive") and accent-sensitive."""
    for name in ["Zoë", "Zoe", "Zoë Müller", "Ærø"]:
        _create(empty_api, "contacts", {"lastname": name})

    def names(flt: str) -> list[str]:
        r = empty_api.get("contacts", params={"$select": "lastname", "$filter": flt})
        assert r.status_code == 200, r.text
        return sorted(c["lastname"] for c in r.json()["value"])

    assert names("lastname eq 'ZOË'") == ["Zoë"]
    assert names("lastname eq 'zoe'") == ["Zoe"]
    assert names("lastname ne 'ZOË'") == ["Zoe", "Zoë Müller", "Ærø"]
    assert names("startswith(lastname,'ZOË')") == ["Zoë", "Zoë Müller"]
    assert names("contains(lastname,'MÜLL')") == ["Zoë Müller"]
    assert names("endswith(lastname,'ÆRØ')") == ["Ærø"]
    in_list = 'Microsoft.Dynamics.CRM.In(PropertyName=\'lastname\',PropertyValues=["ÆRØ","ZOË"])'
    assert names(in_list) == ["Zoë", "Ærø"]


def test_urls_over_the_limit_get_414_and_batch_allows_twice_as_long(empty_api, empty_sandbox):
    """https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/overview
    (URL length limitations): 32,768 characters for a GET; 65,536 inside $batch."""
    _create(empty_api, "accounts", {"name": "kept"})
    values = ",".join(f'"Account number {i:05d}"' for i in range(1700))
    flt = f"Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=[{values}])"
    path = "/api/data/v9.2/accounts?$select=name&$filter=" + flt
    assert 32_768 < len(path) < 65_536
    r = empty_api.get(empty_sandbox.url + path)
    assert r.status_code == 414
    assert "$batch" in r.json()["error"]["message"]

    def batch(part_path: str):
        body = (
            "--batch_B\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
            f"\r\nGET {part_path} HTTP/1.1\r\n\r\n\r\n--batch_B--\r\n"
        )
        return empty_api.post(
            "$batch", content=body, headers={"Content-Type": 'multipart/mixed; boundary="batch_B"'}
        )

    inside = batch(path)
    assert inside.status_code == 200 and "HTTP/1.1 200 OK" in inside.text
    too_long = batch(path + " or name eq '" + "x" * 33_000 + "'")
    assert "HTTP/1.1 414" in too_long.text
