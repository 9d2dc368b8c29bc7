"""Create / read / update / upsert / delete as the Dataverse Web API does them (wire doc §6)."""

from __future__ import annotations

import uuid

import pytest

from tests.support.lookups import create_under
from tests.support.records import create as _create


def test_create_returns_204_with_odata_entityid(api):
    r = api.post("tasks", json={"subject": "Call back", "percentcomplete": 0})
    assert r.status_code == 204
    assert r.content == b""
    entity_id = r.headers["OData-EntityId"]
    assert entity_id.startswith(str(api.base_url) + "tasks(")
    assert r.headers["OData-Version"] == "4.0"
    record = api.get(entity_id).json()
    assert record["subject"] == "Call back"


def test_create_with_return_representation_gives_201_and_the_record(api):
    r = api.post(
        "accounts?$select=name,revenue",
        json={"name": "Sample Account", "revenue": 5000000, "creditonhold": False},
        headers={"Prefer": "return=representation"},
    )
    assert r.status_code == 201
    assert r.headers["Preference-Applied"] == "return=representation"
    assert "OData-EntityId" not in r.headers
    assert r.headers["Content-Type"] == "application/json; odata.metadata=minimal"
    body = r.json()
    # Dataverse's context for a written record omits the selection (create-entity-web-api doc)
    assert body["@odata.context"].endswith("$metadata#accounts/$entity")
    assert body["@odata.etag"].startswith('W/"')
    assert body["name"] == "Sample Account"
    assert body["revenue"] == 5000000
    assert uuid.UUID(body["accountid"])
    assert "creditonhold" not in body  # not selected


def test_client_supplied_key_is_honoured_and_a_second_create_is_refused(api):
    key = str(uuid.uuid4())
    assert _create(api, "contacts", {"contactid": key, "lastname": "Brown"}) == key
    again = api.post("contacts", json={"contactid": key, "lastname": "Brown"})
    assert again.status_code == 412
    assert again.json() == {
        "error": {
            "code": "0x80040237",
            "message": "A record with matching key values already exists.",
        }
    }


def test_defaults_and_system_columns_on_create(api, sandbox):
    key = _create(
        api, "leads", {"subject": "Interested", "lastname": "Orton", "firstname": "Monte"}
    )
    lead = api.get(f"leads({key})").json()
    assert lead["fullname"] == "Monte Orton"  # computed from first + last
    assert (lead["statecode"], lead["statuscode"]) == (0, 1)  # Open / New
    assert lead["_ownerid_value"] == sandbox.org.user_id
    assert lead["_createdby_value"] == sandbox.org.user_id
    assert lead["createdon"] == lead["modifiedon"]
    assert lead["createdon"].endswith("Z")
    assert lead["@odata.etag"] == f'W/"{lead["versionnumber"]}"'


def test_update_advances_version_and_modifiedon(api):
    key = _create(api, "tasks", {"subject": "Draft"})
    before = api.get(f"tasks({key})").json()
    r = api.patch(f"tasks({key})", json={"percentcomplete": 50}, headers={"If-Match": "*"})
    assert r.status_code == 204
    assert r.headers["OData-EntityId"].endswith(f"tasks({key})")
    after = api.get(f"tasks({key})").json()
    assert after["percentcomplete"] == 50
    assert after["versionnumber"] > before["versionnumber"]
    assert after["modifiedon"] >= before["modifiedon"]
    assert after["createdon"] == before["createdon"]


def test_update_with_return_representation_is_200(api):
    key = _create(api, "tasks", {"subject": "Draft"})
    r = api.patch(
        f"tasks({key})?$select=subject",
        json={"subject": "Final"},
        headers={"If-Match": "*", "Prefer": "return=representation"},
    )
    assert r.status_code == 200
    assert r.json()["subject"] == "Final"


def test_patch_with_if_match_star_on_missing_record_is_404(api):
    missing = str(uuid.uuid4())
    r = api.patch(f"accounts({missing})", json={"name": "x"}, headers={"If-Match": "*"})
    assert r.status_code == 404
    assert r.json()["error"] == {
        "code": "0x80040217",
        "message": f"account With Id = {missing} Does Not Exist",
    }
    assert api.get(f"accounts({missing})").status_code == 404


def test_upsert_creates_with_the_given_key_then_updates(api):
    key = str(uuid.uuid4())
    created = api.patch(
        f"accounts({key})", json={"name": "Upserted"}, headers={"Prefer": "return=representation"}
    )
    assert created.status_code == 201
    assert created.json()["accountid"] == key
    updated = api.patch(
        f"accounts({key})", json={"name": "Again"}, headers={"Prefer": "return=representation"}
    )
    assert updated.status_code == 200
    assert updated.json()["name"] == "Again"


def test_upsert_with_if_none_match_star_refuses_existing(api):
    key = _create(api, "accounts", {"name": "Exists"})
    r = api.patch(f"accounts({key})", json={"name": "x"}, headers={"If-None-Match": "*"})
    assert r.status_code == 412
    assert r.json()["error"]["message"] == "A record with matching key values already exists."
    assert api.get(f"accounts({key})").json()["name"] == "Exists"


def test_optimistic_concurrency_with_if_match_version(api):
    key = _create(api, "accounts", {"name": "v1"})
    etag = api.get(f"accounts({key})").json()["@odata.etag"]
    assert (
        api.patch(f"accounts({key})", json={"name": "v2"}, headers={"If-Match": etag}).status_code
        == 204
    )
    stale = api.patch(f"accounts({key})", json={"name": "v3"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert stale.json()["error"]["message"] == (
        "The version of the existing record doesn't match the RowVersion property provided."
    )
    assert api.delete(f"accounts({key})", headers={"If-Match": etag}).status_code == 412
    assert api.get(f"accounts({key})").json()["name"] == "v2"


def test_conditional_get_returns_304_when_unchanged(api):
    key = _create(api, "accounts", {"name": "Cached"})
    etag = api.get(f"accounts({key})").json()["@odata.etag"]
    r = api.get(f"accounts({key})", headers={"If-None-Match": etag})
    assert r.status_code == 304
    api.patch(f"accounts({key})", json={"name": "Changed"})
    assert api.get(f"accounts({key})", headers={"If-None-Match": etag}).status_code == 200
    # never 304 when annotations are asked for
    r = api.get(
        f"accounts({key})",
        headers={"If-None-Match": etag, "Prefer": 'odata.include-annotations="*"'},
    )
    assert r.status_code == 200


def test_delete_then_404(api):
    key = _create(api, "tasks", {"subject": "Temporary"})
    assert api.delete(f"tasks({key})").status_code == 204
    r = api.get(f"tasks({key})")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "0x80040217"
    assert api.delete(f"tasks({key})").status_code == 404


def test_put_and_delete_single_property(api):
    key = _create(api, "accounts", {"name": "Props", "description": "to clear"})
    assert api.put(f"accounts({key})/name", json={"value": "Renamed"}).status_code == 204
    assert api.delete(f"accounts({key})/description").status_code == 204
    record = api.get(f"accounts({key})?$select=name,description").json()
    assert record["name"] == "Renamed"
    assert record["description"] is None
    value = api.get(f"accounts({key})/name").json()
    assert value["value"] == "Renamed"


def test_bind_lookup_and_read_it_back_as_value(api):
    account = _create(api, "accounts", {"name": "Parent"})
    contact = create_under(
        api, account, "contacts", {"lastname": "Child"}, "parentcustomerid_account"
    )
    record = api.get(
        f"contacts({contact})?$select=_parentcustomerid_value",
        headers={"Prefer": 'odata.include-annotations="*"'},
    ).json()
    assert record["_parentcustomerid_value"] == account
    prefix = "_parentcustomerid_value@"
    assert record[prefix + "Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert (
        record[prefix + "Microsoft.Dynamics.CRM.associatednavigationproperty"]
        == "parentcustomerid_account"
    )
    assert record[prefix + "OData.Community.Display.V1.FormattedValue"] == "Parent"


def test_bind_regarding_lead_on_task_and_owner_to_team(api, sandbox):
    lead = _create(api, "leads", {"subject": "s", "lastname": "Regarded"})
    team = api.get("teams?$select=name&$top=1").json()["value"][0]["teamid"]
    task = _create(
        api,
        "tasks",
        {
            "subject": "Follow up",
            "regardingobjectid_lead_task@odata.bind": f"leads({lead})",
            "ownerid@odata.bind": f"/teams({team})",
        },
    )
    record = api.get(f"tasks({task})", headers={"Prefer": 'odata.include-annotations="*"'}).json()
    assert record["_regardingobjectid_value"] == lead
    assert record["_regardingobjectid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "lead"
    assert record["_ownerid_value"] == team
    assert record["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "team"


def test_bind_accepts_absolute_urls_and_clears_with_null(api, sandbox):
    parent = _create(api, "accounts", {"name": "P"})
    child = _create(
        api,
        "accounts",
        {"name": "C", "parentaccountid@odata.bind": f"{sandbox.api}accounts({parent})"},
    )
    assert api.get(f"accounts({child})").json()["_parentaccountid_value"] == parent
    api.patch(f"accounts({child})", json={"parentaccountid@odata.bind": None})
    assert api.get(f"accounts({child})").json()["_parentaccountid_value"] is None


def test_ref_on_single_valued_lookup(api):
    contact = _create(api, "contacts", {"lastname": "Primary"})
    account = _create(api, "accounts", {"name": "WithRef"})
    r = api.put(
        f"accounts({account})/primarycontactid/$ref", json={"@odata.id": f"contacts({contact})"}
    )
    assert r.status_code == 204
    ref = api.get(f"accounts({account})/primarycontactid/$ref").json()
    assert ref["@odata.id"].endswith(f"contacts({contact})")
    related = api.get(f"accounts({account})/primarycontactid").json()
    assert related["contactid"] == contact
    assert api.delete(f"accounts({account})/primarycontactid/$ref").status_code == 204
    assert api.get(f"accounts({account})").json()["_primarycontactid_value"] is None


def test_status_implies_state_and_state_gets_its_default_status(api):
    key = _create(api, "leads", {"subject": "s", "lastname": "Q", "statuscode": 5})
    lead = api.get(f"leads({key})?$select=statecode,statuscode").json()
    assert (lead["statecode"], lead["statuscode"]) == (2, 5)  # Disqualified / Cannot Contact
    api.patch(f"leads({key})", json={"statecode": 1})
    lead = api.get(f"leads({key})?$select=statecode,statuscode").json()
    assert (lead["statecode"], lead["statuscode"]) == (1, 3)  # Qualified / Qualified


def test_inconsistent_state_and_status_is_refused(api):
    key = _create(api, "tasks", {"subject": "s"})
    r = api.patch(f"tasks({key})", json={"statecode": 1, "statuscode": 6})
    assert r.status_code == 400
    assert "not a valid status code" in r.json()["error"]["message"]
    task = api.get(f"tasks({key})").json()
    assert (task["statecode"], task["statuscode"]) == (0, 2)


def test_assign_by_patching_owner(api):
    users = api.get("systemusers?$select=fullname&$top=3").json()["value"]
    key = _create(api, "leads", {"subject": "s", "lastname": "Assign"})
    other = users[-1]["systemuserid"]
    api.patch(f"leads({key})", json={"ownerid@odata.bind": f"/systemusers({other})"})
    assert api.get(f"leads({key})").json()["_ownerid_value"] == other


@pytest.mark.parametrize("segment", ["Account", "lead"])
def test_unknown_entity_set_is_404(api, segment):
    r = api.get(segment)
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "code": "0x8006088a",
            "message": f"Resource not found for the segment '{segment}'.",
        }
    }


def test_duplicate_detection_only_when_asked(empty_api):
    body = {"firstname": "Monte", "lastname": "Orton", "emailaddress1": "monteorton@example.com"}
    assert empty_api.post("leads", json={**body, "subject": "first"}).status_code == 204
    # off by default: a second lead with the same email is fine
    assert empty_api.post("leads", json={**body, "subject": "second"}).status_code == 204
    check = {"MSCRM.SuppressDuplicateDetection": "false"}
    r = empty_api.post("leads", json={**body, "subject": "third"}, headers=check)
    assert r.status_code == 500
    assert r.json()["error"] == {
        "code": "0x80040333",
        "message": "A record was not created or updated because a duplicate of the current "
        "record already exists.",
    }
    assert empty_api.get("leads/$count").text == "2"
    other = {**body, "emailaddress1": "OTHER@example.com", "subject": "s"}
    assert empty_api.post("leads", json=other, headers=check).status_code == 204
    key = empty_api.get("leads?$filter=emailaddress1 eq 'other@example.com'").json()["value"][0][
        "leadid"
    ]
    r = empty_api.patch(
        f"leads({key})", json={"emailaddress1": "MONTEORTON@example.com"}, headers=check
    )
    assert r.status_code == 500
