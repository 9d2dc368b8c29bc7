"""Expanded navigation properties come back as flat ``nav.col`` columns (like
``pandas.json_normalize``); collection-valued ones as a list column or, with ``explode``, one row
per child. Read over loopback HTTP from the sandbox.

https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/join-tables
"""

from __future__ import annotations

import pandas as pd

HAS_PARENT_ACCOUNT = "_parentcustomerid_value ne null"


def _contacts_with_parent_account(read, account_columns, where, **options):
    """Contacts' full names with their parent account expanded; ``read`` is ``d365.list`` or
    ``d365.iter_pages``, so the table and the raw pages come from one query shape."""
    return read(
        "contacts",
        select="fullname",
        expand=f"parentcustomerid_account($select={account_columns})",
        filter=where,
        **options,
    )


def test_single_valued_expand_gives_dotted_columns(d365):
    df = _contacts_with_parent_account(d365.list, "name,createdon", HAS_PARENT_ACCOUNT, top=5)
    assert list(df.columns) == [
        "fullname",
        "parentcustomerid_account.accountid",
        "parentcustomerid_account.name",
        "parentcustomerid_account.createdon",
    ]
    assert str(df["parentcustomerid_account.name"].dtype) == "string"
    assert str(df["parentcustomerid_account.createdon"].dtype).startswith("datetime64")
    assert df["parentcustomerid_account.name"].notna().all()
    # Same values as the raw record the service sent.
    raw = next(_contacts_with_parent_account(d365.iter_pages, "name", HAS_PARENT_ACCOUNT, top=5))
    by_id = {r["contactid"]: r["parentcustomerid_account"]["name"] for r in raw}
    assert {i: df.loc[i, "parentcustomerid_account.name"] for i in df.index} == by_id


def test_flatten_false_keeps_the_nested_dicts(d365):
    df = _contacts_with_parent_account(d365.list, "name", HAS_PARENT_ACCOUNT, top=2, flatten=False)
    assert list(df.columns) == ["fullname", "parentcustomerid_account"]
    assert isinstance(df["parentcustomerid_account"].iloc[0], dict)


def test_collection_expand_is_a_list_column_or_one_row_per_child(d365):
    options = dict(
        select="name",
        expand="contact_customer_accounts($select=fullname)",
        orderby="name asc",
        top=4,
    )
    nested = d365.list("accounts", **options)
    assert list(nested.columns) == ["name", "contact_customer_accounts"]
    children = nested["contact_customer_accounts"]
    assert all(isinstance(v, list) for v in children)
    assert all("@odata.etag" not in c for v in children for c in v)  # annotations dropped
    total = sum(max(len(v), 1) for v in children)

    rows = d365.list("accounts", explode=True, **options)
    assert len(rows) == total  # a parent without children keeps one row
    assert "contact_customer_accounts.fullname" in rows.columns
    assert "contact_customer_accounts" not in rows.columns
    # Other tests add accounts without contacts to the shared sandbox: check one with some.
    first = next(i for i, v in children.items() if v)
    names = sorted(c["fullname"] for c in nested.loc[first, "contact_customer_accounts"])
    assert sorted(rows.loc[[first], "contact_customer_accounts.fullname"]) == names


def test_an_empty_result_with_expand_still_reads(d365):
    df = _contacts_with_parent_account(d365.list, "name", "fullname eq 'nobody at all'")
    assert len(df) == 0 and "fullname" in df.columns
    assert isinstance(df, pd.DataFrame)


def test_a_navigation_named_like_its_lookup_is_flattened_too(d365):
    """``primarycontactid`` is both the lookup (read as ``_primarycontactid_value``) and the
    single-valued navigation property that ``$expand`` names."""
    df = d365.list(
        "accounts",
        select="name,primarycontactid",
        expand="primarycontactid($select=fullname)",
        filter="_primarycontactid_value ne null",
        top=3,
        labels=True,
    )
    assert list(df.columns) == [
        "name",
        "_primarycontactid_value",
        "primarycontactid_label",
        "primarycontactid.contactid",
        "primarycontactid.fullname",
    ]
    assert (df["primarycontactid.contactid"] == df["_primarycontactid_value"]).all()
    assert (df["primarycontactid.fullname"] == df["primarycontactid_label"]).all()
