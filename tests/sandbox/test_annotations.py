"""Annotations (wire doc §5): formatted values, lookup annotations, etags, context URLs."""

from __future__ import annotations

import pytest

from tests.support.records import create

ALL = {"Prefer": 'odata.include-annotations="*"'}
FV = "@OData.Community.Display.V1.FormattedValue"


@pytest.fixture
def account(empty_api):
    contact = create(empty_api, "contacts", {"firstname": "Susanna", "lastname": "Stubberod"})
    return empty_api.post(
        "accounts",
        json={
            "name": "Contoso",
            "revenue": 100000,
            "numberofemployees": 9500,
            "creditonhold": False,
            "donotpostalmail": False,
            "accountcategorycode": 1,
            "primarycontactid@odata.bind": f"/contacts({contact})",
        },
        headers={"Prefer": "return=representation"},
    ).json()


def test_formatted_values_for_choices_money_numbers_booleans_dates(empty_api, account):
    r = empty_api.get(f"accounts({account['accountid']})", headers=ALL)
    assert r.headers["Preference-Applied"] == 'odata.include-annotations="*"'
    rec = r.json()
    assert rec["revenue" + FV] == "$100,000.00"
    assert rec["revenue"] == 100000
    assert rec["numberofemployees" + FV] == "9,500"
    assert rec["creditonhold" + FV] == "No"
    assert rec["creditonhold"] is False
    assert rec["donotpostalmail" + FV] == "Allow"
    assert rec["accountcategorycode" + FV] == "Preferred Customer"
    assert rec["statecode" + FV] == "Active"
    assert rec["statuscode" + FV] == "Active"
    created = rec["createdon"]  # 2026-01-31T09:05:00Z -> 1/31/2026 9:05 AM
    month, day, year = int(created[5:7]), int(created[8:10]), created[:4]
    assert rec["createdon" + FV].startswith(f"{month}/{day}/{year} ")
    assert rec["createdon" + FV][-2:] in ("AM", "PM")


def test_formatted_value_precedes_the_value(empty_api, account):
    keys = list(empty_api.get(f"accounts({account['accountid']})", headers=ALL).json())
    assert keys.index("revenue" + FV) == keys.index("revenue") - 1


def test_lookup_annotations_name_target_and_navigation(empty_api, account):
    rec = empty_api.get(
        f"accounts({account['accountid']})?$select=_primarycontactid_value", headers=ALL
    ).json()
    key = "_primarycontactid_value"
    assert rec[key + FV] == "Susanna Stubberod"
    assert rec[key + "@Microsoft.Dynamics.CRM.lookuplogicalname"] == "contact"
    assert rec[key + "@Microsoft.Dynamics.CRM.associatednavigationproperty"] == "primarycontactid"


def test_no_annotations_unless_asked(empty_api, account):
    rec = empty_api.get(f"accounts({account['accountid']})").json()
    assert not [k for k in rec if "@" in k and k != "@odata.etag" and k != "@odata.context"]


def test_only_the_requested_terms(empty_api, account):
    headers = {"Prefer": 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'}
    rec = empty_api.get(f"accounts({account['accountid']})", headers=headers).json()
    assert "revenue" + FV in rec
    assert not [k for k in rec if "Microsoft.Dynamics.CRM" in k]
    headers = {"Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.*"'}
    rec = empty_api.get(f"accounts({account['accountid']})", headers=headers).json()
    assert "revenue" + FV not in rec
    assert "_primarycontactid_value@Microsoft.Dynamics.CRM.lookuplogicalname" in rec


def test_annotations_on_collections_and_expanded_records(empty_api, account):
    body = empty_api.get(
        "accounts?$select=name,revenue&$expand=primarycontactid($select=fullname)", headers=ALL
    ).json()
    rec = body["value"][0]
    assert rec["revenue" + FV] == "$100,000.00"
    assert rec["@odata.etag"].startswith('W/"')
    # In an entity-set query Dataverse sends expanded single-valued records without an etag
    # (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/join-tables);
    # retrieving the one record keeps it (retrieve-entity-using-web-api).
    assert "@odata.etag" not in rec["primarycontactid"]
    assert rec["primarycontactid"]["fullname"] == "Susanna Stubberod"
    one = empty_api.get(
        f"accounts({account['accountid']})?$select=name&$expand=primarycontactid($select=fullname)"
    ).json()
    assert one["primarycontactid"]["@odata.etag"].startswith('W/"')


def test_etag_is_the_version_number(empty_api, account):
    rec = empty_api.get(f"accounts({account['accountid']})?$select=versionnumber").json()
    assert rec["@odata.etag"] == f'W/"{rec["versionnumber"]}"'


def test_context_urls(empty_api, empty_sandbox, account):
    api = empty_sandbox.api
    assert empty_api.get("accounts").json()["@odata.context"] == f"{api}$metadata#accounts"
    assert (
        empty_api.get("accounts?$select=name,revenue").json()["@odata.context"]
        == f"{api}$metadata#accounts(name,revenue)"
    )
    one = empty_api.get(f"accounts({account['accountid']})?$select=name").json()
    assert one["@odata.context"] == f"{api}$metadata#accounts(name)/$entity"


def test_total_record_count_annotations(empty_api, account):
    headers = {
        "Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.totalrecordcount,'
        'Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"'
    }
    body = empty_api.get("accounts?$count=true", headers=headers).json()
    assert body["@Microsoft.Dynamics.CRM.totalrecordcount"] == 1
    assert body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] is False
    without = empty_api.get("accounts", headers=headers).json()
    assert without["@Microsoft.Dynamics.CRM.totalrecordcount"] == -1


def test_dates_only_and_nulls(empty_api):
    rec = empty_api.post(
        "contacts",
        json={"lastname": "Born", "birthdate": "1990-07-04"},
        headers={"Prefer": 'return=representation,odata.include-annotations="*"'},
    ).json()
    assert rec["birthdate"] == "1990-07-04"
    assert rec["birthdate" + FV] == "7/4/1990"
    assert rec["jobtitle"] is None
    assert "jobtitle" + FV not in rec


def test_context_url_names_expanded_selections(empty_api, empty_sandbox, account):
    body = empty_api.get(
        "accounts?$select=name&$expand=primarycontactid($select=contactid,fullname)"
    ).json()
    assert body["@odata.context"] == (
        f"{empty_sandbox.api}$metadata#accounts(name,primarycontactid(contactid,fullname))"
    )


def test_context_url_names_a_lookup_by_its_value_property(empty_api, empty_sandbox, account):
    # Dataverse's context lists the properties the records carry: `_x_value`, not `x`.
    body = empty_api.get("accounts?$select=name,primarycontactid").json()
    assert body["@odata.context"] == (
        f"{empty_sandbox.api}$metadata#accounts(name,_primarycontactid_value)"
    )
    assert "_primarycontactid_value" in body["value"][0]
    one = empty_api.get(f"accounts({account['accountid']})?$select=_primarycontactid_value")
    assert one.json()["@odata.context"].endswith("#accounts(_primarycontactid_value)/$entity")
