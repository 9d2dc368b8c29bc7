"""Columns and writes the fidelity corpus needed beyond the first schema: address composites,
the originating lead of account and contact, and activity parties sent as a collection on update.

Address composites (Address1_Composite, "Shows the complete primary address.", read-only Memo):
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/contact
and https://learn.microsoft.com/power-apps/developer/data-platform/webapi/retrieve-entity-using-web-api
OriginatingLeadId (account, IsValidForUpdate False, targets lead):
https://learn.microsoft.com/dynamics365/customer-engagement/web-api/account
OriginatingLeadId (contact, writable, targets lead, relationship contact_originating_lead):
"Contact table/entity reference (Microsoft Dynamics 365)", MicrosoftDocs/dynamics-365-customer-engagement
ce/developer/entities/contact.md
Activity parties on update ("a special scenario that is possible only with activityparty"):
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/associate-disassociate-entities-using-web-api
"""

from __future__ import annotations

from tests.support.records import create


def test_address_composite_is_its_parts_one_a_line_and_follows_updates(empty_api) -> None:
    id = create(
        empty_api,
        "contacts",
        {"lastname": "Ade", "address1_line1": "1 Main St", "address1_city": "Redmond"},
    )
    row = empty_api.get(f"contacts({id})?$select=address1_composite").json()
    assert row["address1_composite"] == "1 Main St\r\nRedmond"
    r = empty_api.patch(f"contacts({id})", json={"address1_postalcode": "98052"})
    assert r.status_code == 204, r.text
    row = empty_api.get(f"contacts({id})?$select=address1_composite,address2_composite").json()
    assert row["address1_composite"] == "1 Main St\r\nRedmond\r\n98052"
    assert row["address2_composite"] is None


def test_only_an_address_part_brings_the_composite(empty_api) -> None:
    id = create(empty_api, "accounts", {"name": "A", "address1_line1": "x", "address1_latitude": 1})
    part = empty_api.get(f"accounts({id})?$select=address1_line1").json()
    assert part["address1_composite"] == "x"
    other = empty_api.get(f"accounts({id})?$select=address1_latitude").json()
    assert "address1_composite" not in other


def test_account_binds_its_originating_lead_on_create_only(empty_api) -> None:
    lead = create(empty_api, "leads", {"lastname": "Prospect"})
    id = create(
        empty_api,
        "accounts",
        {"name": "From lead", "originatingleadid@odata.bind": f"leads({lead})"},
    )
    row = empty_api.get(f"accounts({id})?$select=_originatingleadid_value").json()
    assert row["_originatingleadid_value"] == lead
    other = create(empty_api, "leads", {"lastname": "Other"})
    r = empty_api.patch(f"accounts({id})", json={"originatingleadid@odata.bind": f"leads({other})"})
    assert r.status_code == 400, r.text
    row = empty_api.get(f"accounts({id})?$select=_originatingleadid_value").json()
    assert row["_originatingleadid_value"] == lead


def test_contact_keeps_its_originating_lead_which_lists_it(empty_api) -> None:
    lead = create(empty_api, "leads", {"lastname": "Prospect"})
    other = create(empty_api, "leads", {"lastname": "Other"})
    bind = {"originatingleadid@odata.bind": f"leads({lead})"}
    id = create(empty_api, "contacts", {"lastname": "Converted", **bind})
    r = empty_api.patch(f"contacts({id})", json={"originatingleadid@odata.bind": f"leads({other})"})
    assert r.status_code == 204, r.text  # writable on contact, unlike account's
    row = empty_api.get(f"contacts({id})?$select=_originatingleadid_value").json()
    assert row["_originatingleadid_value"] == other
    listed = empty_api.get(f"leads({other})/contact_originating_lead?$select=lastname").json()
    assert [c["lastname"] for c in listed["value"]] == ["Converted"]
    assert empty_api.get(f"leads({lead})/contact_originating_lead").json()["value"] == []


def _parties(client, email: str) -> list[tuple[str, int]]:
    rows = client.get(
        f"emails({email})/email_activity_parties?$select=_partyid_value,participationtypemask"
    ).json()["value"]
    return sorted((r["_partyid_value"], r["participationtypemask"]) for r in rows)


def test_put_activity_parties_replaces_the_named_participation_types(empty_api) -> None:
    to, cc, cc2 = (create(empty_api, "contacts", {"lastname": n}) for n in ("To", "Cc", "Cc2"))
    email = create(empty_api, "emails", {"subject": "Hello"})
    before = _parties(empty_api, email)  # what the sandbox adds itself (e.g. the sender)
    body = {
        "value": [
            {"partyid_contact@odata.bind": f"contacts({to})", "participationtypemask": 2},
            {"partyid_contact@odata.bind": f"contacts({cc})", "participationtypemask": 3},
        ]
    }
    r = empty_api.put(f"emails({email})/email_activity_parties", json=body)
    assert r.status_code == 204, r.text
    assert _parties(empty_api, email) == sorted([*before, (to, 2), (cc, 3)])
    body = {
        "value": [{"partyid_contact@odata.bind": f"contacts({cc2})", "participationtypemask": 3}]
    }
    r = empty_api.put(f"emails({email})/email_activity_parties", json=body)
    assert r.status_code == 204, r.text
    assert _parties(empty_api, email) == sorted([*before, (to, 2), (cc2, 3)])


def test_put_activity_parties_refuses_a_bad_body_and_changes_nothing(empty_api) -> None:
    to = create(empty_api, "contacts", {"lastname": "To"})
    email = create(empty_api, "emails", {"subject": "Hello"})
    body = {
        "value": [{"partyid_contact@odata.bind": f"contacts({to})", "participationtypemask": 2}]
    }
    assert empty_api.put(f"emails({email})/email_activity_parties", json=body).status_code == 204
    before = _parties(empty_api, email)
    for bad in (
        {"value": []},
        {"value": "x"},
        [1],
        {"value": [{"participationtypemask": 2, "nosuchcolumn": 1}]},
    ):
        r = empty_api.put(f"emails({email})/email_activity_parties", json=bad)
        assert r.status_code == 400, (bad, r.text)
        assert "\n" not in r.json()["error"]["message"]
        assert _parties(empty_api, email) == before
    missing = "00000000-0000-0000-0000-000000000001"
    r = empty_api.put(f"emails({missing})/email_activity_parties", json=body)
    assert r.status_code == 404, r.text


def _owners(client, account: str) -> tuple[str | None, str | None, str | None]:
    """An account's `_ownerid_value`, `_owninguser_value` and `_owningteam_value`."""
    cols = ("_ownerid_value", "_owninguser_value", "_owningteam_value")
    row = client.get(f"accounts({account})?$select={','.join(cols)}").json()
    return tuple(row[c] for c in cols)


def test_owning_user_and_team_follow_the_owner(empty_api) -> None:
    """`_owninguser_value`/`_owningteam_value` are read-only lookups Dataverse sets from
    `ownerid` (filter-rows: `systemusers(<id>)/user_accounts` is the same as
    `accounts?$filter=_owninguser_value eq <id>`)."""
    me = empty_api.get("WhoAmI").json()["UserId"]
    id = create(empty_api, "accounts", {"name": "Owned"})
    assert _owners(empty_api, id) == (me, me, None)
    mine = empty_api.get(f"accounts?$filter=_owninguser_value eq {me}&$select=name").json()
    via = empty_api.get(f"systemusers({me})/user_accounts?$select=name").json()
    assert [r["name"] for r in mine["value"]] == [r["name"] for r in via["value"]] == ["Owned"]
    expanded = empty_api.get(f"accounts({id})?$expand=owninguser($select=fullname)").json()
    assert expanded["owninguser"]["systemuserid"] == me
    team = create(empty_api, "teams", {"name": "Sales team"})
    r = empty_api.patch(f"accounts({id})", json={"ownerid@odata.bind": f"teams({team})"})
    assert r.status_code == 204, r.text
    assert _owners(empty_api, id) == (team, None, team)
    # associating through the user's collection assigns the record (ownerid), as before
    r = empty_api.post(
        f"systemusers({me})/user_accounts/$ref", json={"@odata.id": f"accounts({id})"}
    )
    assert r.status_code == 204, r.text
    assert _owners(empty_api, id) == (me, me, None)


def test_email_lookups_navigate_by_the_pages_suffixed_names(empty_api) -> None:
    """The email page's many-to-one relationships: lk_email_createdby's
    ReferencingEntityNavigationPropertyName is ``createdby_email`` (likewise modifiedby_email,
    owninguser_email, transactioncurrencyid_email, ...):
    https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/email"""
    id = create(empty_api, "emails", {"subject": "Hello"})
    r = empty_api.get(f"emails({id})?$select=subject&$expand=createdby_email($select=fullname)")
    assert r.status_code == 200, r.text
    assert "fullname" in r.json()["createdby_email"]
    r = empty_api.get(f"emails({id})?$select=subject&$expand=createdby($select=fullname)")
    assert r.status_code == 400 and "createdby" in r.json()["error"]["message"]
