"""Client mistakes get Dataverse's status, code and message - never a 500 - and change nothing."""

from __future__ import annotations

import uuid

import pytest

from tests.support.records import create


def _error(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/json; odata.metadata=minimal"
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert "Traceback" not in r.text
    return body["error"]


# Mistakes answered with Dataverse's whole error: the request, then status, code and message.
@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "message"),
    [
        pytest.param(
            "GET",
            "Accounts",
            None,
            404,
            "0x8006088a",
            "Resource not found for the segment 'Accounts'.",
            id="unknown_entity_set",
        ),
        pytest.param(
            "GET",
            "accounts?$select=Name",
            None,
            400,
            "0x0",
            "Could not find a property named 'Name' on type 'Microsoft.Dynamics.CRM.account'.",
            id="unknown_property_in_select",
        ),
        pytest.param(
            "GET",
            "contacts?$filter=lastname eq 'O'Bryan'",
            None,
            400,
            "0x80060888",
            "There is an unterminated literal at position 21 in 'lastname eq 'O'Bryan''.",
            id="bad_query_syntax_names_the_position",
        ),
        pytest.param(
            "POST",
            "tasks",
            {"subject": "x" * 201},
            400,
            "0x80044331",
            "A validation error occurred.  The length of the 'subject' attribute of the "
            "'task' entity exceeded the maximum allowed length of '200'.",
            id="too_long_string",
        ),
    ],
)
def test_the_whole_dataverse_error(api, method, path, body, status, code, message):
    err = _error(api.request(method, path, json=body), status)
    assert err == {"code": code, "message": message}


def test_unknown_property_in_select_of_one_record(api):
    key = api.get("accounts?$select=name&$top=1").json()["value"][0]["accountid"]
    err = _error(api.get(f"accounts({key})?$select=Name"), 400)
    assert err["message"].startswith("Could not find a property named 'Name'")


def test_unknown_property_in_body_changes_nothing(api):
    before = api.get("accounts/$count").text
    err = _error(api.post("accounts", json={"Name": "Account name"}), 400)
    assert err["code"] == "0x0"
    assert (
        "Invalid property 'Name' was found in entity 'Microsoft.Dynamics.CRM.account'"
        in (err["message"])
    )
    assert api.get("accounts/$count").text == before


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"subject": "s", "percentcomplete": "half"}, "'Edm.Int32'"),
        ({"subject": 42}, "'Edm.String'"),
        ({"subject": "s", "scheduledend": "next tuesday"}, "'Edm.DateTimeOffset'"),
        ({"subject": "s", "prioritycode": True}, "'Edm.Int32'"),
    ],
)
def test_wrong_type(api, body, expected):
    err = _error(api.post("tasks", json=body), 400)
    assert err["code"] == "0x80048d19"
    assert "Cannot convert the literal" in err["message"]
    assert err["message"].endswith(f"to the expected type {expected}.")


def test_out_of_range_number_and_unknown_choice(api):
    err = _error(api.post("tasks", json={"subject": "s", "percentcomplete": 150}), 400)
    assert err["code"] == "0x80044331"
    assert "'percentcomplete'" in err["message"] and "outside the valid range" in err["message"]
    err = _error(api.post("tasks", json={"subject": "s", "prioritycode": 9}), 400)
    assert "outside the valid range" in err["message"]


def test_missing_system_required_column_on_create(api):
    before = api.get("teams/$count").text
    err = _error(api.post("teams", json={"description": "No name"}), 400)
    assert err["code"] == "0x80040203"
    assert "'name'" in err["message"] and "SystemRequired" in err["message"]
    assert api.get("teams/$count").text == before


def test_system_required_column_cannot_be_cleared(api):
    team = api.get("teams?$select=name&$top=1").json()["value"][0]
    err = _error(api.patch(f"teams({team['teamid']})", json={"name": None}), 400)
    assert err["code"] == "0x80040203" and "'name'" in err["message"]
    err = _error(api.delete(f"teams({team['teamid']})/name"), 400)
    assert "'name'" in err["message"]
    assert api.get(f"teams({team['teamid']})?$select=name").json()["name"] == team["name"]


def test_application_required_is_not_enforced_by_the_server(api):
    # Dataverse enforces "Business required" only in its forms: API writes may omit or clear it.
    r = api.post("leads", json={"firstname": "Only"}, headers={"Prefer": "return=representation"})
    assert r.status_code == 201, r.text
    key = r.json()["leadid"]
    assert r.json()["lastname"] is None and r.json()["subject"] is None
    assert api.patch(f"leads({key})", json={"firstname": None}).status_code == 204
    other = create(api, "leads", {"subject": "s", "lastname": "Keep"})
    assert api.patch(f"leads({other})", json={"lastname": None}).status_code == 204
    assert api.get(f"leads({other})").json()["lastname"] is None


@pytest.mark.parametrize("key", ["not-a-guid", "1234", "00000000-0000-0000-0000-00000000000g"])
def test_malformed_guid_in_url(api, key):
    err = _error(api.get(f"accounts({key})"), 400)
    assert err["code"] == "0x80060888"


def test_malformed_guid_in_bind(api):
    err = _error(
        api.post(
            "contacts",
            json={"lastname": "x", "parentcustomerid_account@odata.bind": "/accounts(nope)"},
        ),
        400,
    )
    assert "Edm.Guid" in err["message"]


def test_record_not_found(api):
    missing = str(uuid.uuid4())
    err = _error(api.get(f"leads({missing})"), 404)
    assert err == {"code": "0x80040217", "message": f"lead With Id = {missing} Does Not Exist"}


def test_bind_to_missing_record_is_404_and_nothing_is_created(api):
    before = api.get("contacts/$count").text
    missing = str(uuid.uuid4())
    err = _error(
        api.post(
            "contacts",
            json={"lastname": "x", "parentcustomerid_account@odata.bind": f"/accounts({missing})"},
        ),
        404,
    )
    assert err["message"] == f"account With Id = {missing} Does Not Exist"
    assert api.get("contacts/$count").text == before


def test_bind_on_multi_table_lookup_name_is_the_documented_error(api):
    key = api.get("accounts?$select=name&$top=1").json()["value"][0]["accountid"]
    err = _error(
        api.post(
            "contacts", json={"lastname": "x", "parentcustomerid@odata.bind": f"accounts({key})"}
        ),
        400,
    )
    assert err["code"] == "0x80048d19"
    assert (
        "An undeclared property 'parentcustomerid' which only has property annotations in the "
        "payload but no property value was found in the payload." in err["message"]
    )


def test_bind_to_a_table_the_lookup_does_not_target(api):
    key = api.get("tasks?$select=subject&$top=1").json()["value"][0]["activityid"]
    err = _error(
        api.post("accounts", json={"name": "x", "parentaccountid@odata.bind": f"/tasks({key})"}),
        400,
    )
    assert "parentaccountid" in err["message"]


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]"])
def test_body_that_is_not_a_json_object(api, body):
    r = api.post("accounts", content=body, headers={"Content-Type": "application/json"})
    _error(r, 400)


def test_wrong_method_on_collection(api):
    _error(api.delete("accounts"), 405)


def test_whoami_only_answers_get(api, sandbox):
    err = _error(api.post("WhoAmI"), 404)
    assert err == {
        "code": "",
        "message": f"No HTTP resource was found that matches the request URI '{sandbox.api}WhoAmI'.",
    }


def test_unsupported_query_option(api):
    err = _error(api.get("accounts?$skip=10"), 400)
    assert err["code"] == "0x80060888"


def test_failed_write_in_the_middle_leaves_record_unchanged(api):
    key = api.post(
        "tasks",
        json={"subject": "Stable", "percentcomplete": 10},
        headers={"Prefer": "return=representation"},
    ).json()["activityid"]
    before = api.get(f"tasks({key})").json()
    # the first property is fine, the second is not: nothing may be written
    _error(api.patch(f"tasks({key})", json={"subject": "Changed", "percentcomplete": 101}), 400)
    assert api.get(f"tasks({key})").json() == before


def test_owner_cannot_be_cleared(api):
    key = api.post(
        "tasks", json={"subject": "Owned"}, headers={"Prefer": "return=representation"}
    ).json()["activityid"]
    for body in ({"ownerid@odata.bind": None}, {"ownerid": None}):
        err = _error(api.patch(f"tasks({key})", json=body), 400)
        assert "'ownerid'" in err["message"]
    assert api.get(f"tasks({key})").json()["_ownerid_value"] is not None


def test_read_only_property_cannot_be_put(api):
    key = create(api, "contacts", {"firstname": "A", "lastname": "B"})
    _error(api.put(f"contacts({key})/fullname", json={"value": "X"}), 400)
    assert api.get(f"contacts({key})").json()["fullname"] == "A B"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "leads(", None),
        ("GET", "leads()", None),
        ("GET", "leads(abc)/", None),
        ("GET", "leads/$count/x", None),
        ("GET", "leads?$top=-1", None),
        ("GET", "leads?$top=abc", None),
        ("GET", "leads?$orderby=nosuch", None),
        ("GET", "leads?$expand=nosuch", None),
        ("GET", "leads?$count=maybe", None),
        ("GET", "leads?$skiptoken=abc", None),
        ("GET", "leads?$filter=leadid eq 5", None),
        ("GET", "leads(lastname='x')", None),
        ("PATCH", "leads", {"a": 1}),
        ("POST", "leads", [1]),
        ("POST", "leads", {"subject": {"nested": 1}, "lastname": "x"}),
        ("POST", "leads", {"subject": "s", "lastname": "x", "numberofemployees": 1e300}),
        ("POST", "leads", {"subject": "s", "lastname": "x", "estimatedclosedate": "2026-13-01"}),
        ("POST", "leads", {"subject": "s", "lastname": "x", "statuscode": None}),
        ("POST", "leads", {"subject": "s", "lastname": "x", "parentaccountid@odata.bind": 5}),
        ("POST", "leads", {"subject": "s", "lastname": "x", "parentaccountid": "abc"}),
        ("POST", "leads", {"subject": "s", "lastname": "x", "donotemail": "yes"}),
        ("POST", "leads", {"leadid": "abc", "subject": "s", "lastname": "x"}),
        ("POST", "accounts", {"name": "x", "Account_Tasks@odata.bind": "not-a-list"}),
        ("PUT", "accounts", {"name": "x"}),
    ],
)
def test_client_mistakes_never_yield_a_500(api, method, path, body):
    before = api.get("leads/$count").text
    r = api.request(method, path, json=body) if body is not None else api.request(method, path)
    assert 400 <= r.status_code < 500, r.text
    assert set(r.json()["error"]) == {"code", "message"}
    assert "Traceback" not in r.text
    assert api.get("leads/$count").text == before


def test_paths_outside_the_api_get_the_dataverse_404_body(api, sandbox):
    r = api.get(sandbox.url + "/api/data/v8.0/accounts")
    err = _error(r, 404)
    assert err["code"] == "0x8006088a"


def test_older_v9_paths_are_served(api, sandbox):
    r = api.get(sandbox.url + "/api/data/v9.1/WhoAmI")
    assert r.status_code == 200
    assert r.json()["UserId"] == sandbox.org.user_id


def test_deleting_an_owner_that_still_owns_records_is_refused(empty_sandbox, empty_api):
    # ownerid is SystemRequired: deleting the owning team would leave records without an owner.
    r = empty_api.post(
        "teams", json={"name": "Owners"}, headers={"Prefer": "return=representation"}
    )
    team = r.json()["teamid"]
    body = {"subject": "s", "lastname": "Owned", "ownerid@odata.bind": f"/teams({team})"}
    assert empty_api.post("leads", json=body).status_code == 204
    err = _error(empty_api.delete(f"teams({team})"), 400)
    assert err["code"] == "0x80040203" and "'ownerid'" in err["message"]
    assert empty_api.get(f"teams({team})").status_code == 200
    owned = empty_api.get("leads?$select=_ownerid_value").json()["value"]
    assert [v["_ownerid_value"] for v in owned] == [team]
