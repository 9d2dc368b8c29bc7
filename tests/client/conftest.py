"""Fixtures of the client tests: hand-built metadata for the pure (no-network) tests.
(``d365``, ``empty_d365`` and ``entra`` come from ``tests/support/connections.py``.)"""

import pytest

from d365nb.client.metadata import ColumnMeta, TableMeta


def build_task_meta() -> TableMeta:
    cols = [
        ColumnMeta(
            "activityid",
            "Uniqueidentifier",
            "Task",
            required=True,
            valid_for_update=False,
            is_primary_id=True,
        ),
        ColumnMeta("subject", "String", "Subject", required=True, max_length=200),
        ColumnMeta("description", "Memo", "Description", max_length=2000),
        ColumnMeta("percentcomplete", "Integer", "Percent Complete", min_value=0, max_value=100),
        ColumnMeta(
            "actualdurationminutes", "Integer", "Duration", min_value=0, max_value=2147483647
        ),
        ColumnMeta("scheduledend", "DateTime", "Due Date"),
        ColumnMeta("actualstart", "DateTime", "Actual Start", date_only=True),
        ColumnMeta(
            "prioritycode", "Picklist", "Priority", options={0: "Low", 1: "Normal", 2: "High"}
        ),
        ColumnMeta(
            "statecode", "State", "Status", options={0: "Open", 1: "Completed", 2: "Canceled"}
        ),
        ColumnMeta("isbilled", "Boolean", "Is Billed", options={0: "No", 1: "Yes"}),
        ColumnMeta("budget", "Money", "Budget", min_value=-1e12, max_value=1e12),
        ColumnMeta(
            "regardingobjectid", "Lookup", "Regarding", targets=["account", "contact", "lead"]
        ),
        ColumnMeta("ownerid", "Owner", "Owner", targets=["systemuser", "team"]),
        ColumnMeta("parentaccountid", "Lookup", "Parent", targets=["account"]),
        ColumnMeta(
            "createdon",
            "DateTime",
            "Created On",
            read_only=True,
            valid_for_create=False,
            valid_for_update=False,
        ),
        ColumnMeta(
            "versionnumber",
            "BigInt",
            "Version",
            read_only=True,
            valid_for_create=False,
            valid_for_update=False,
        ),
    ]
    return TableMeta(
        logical_name="task",
        entity_set="tasks",
        primary_id="activityid",
        primary_name="subject",
        display_name="Task",
        change_tracking=True,
        columns={c.name: c for c in cols},
        navigations={
            ("regardingobjectid", "lead"): "regardingobjectid_lead_task",
            ("regardingobjectid", "account"): "regardingobjectid_account_task",
            ("regardingobjectid", "contact"): "regardingobjectid_contact_task",
            ("ownerid", "systemuser"): "ownerid",
            ("ownerid", "team"): "ownerid",
        },
    )


TABLES = {
    "account": "accounts",
    "contact": "contacts",
    "lead": "leads",
    "systemuser": "systemusers",
    "team": "teams",
    "task": "tasks",
}


def resolve_target(name: str):
    for logical, entity_set in TABLES.items():
        if name.lower() in (logical, entity_set):
            return logical, entity_set
    return None


@pytest.fixture
def task_meta() -> TableMeta:
    """A task table shaped like Dataverse's (lookups with per-target navigations)."""
    return build_task_meta()


@pytest.fixture
def targets():
    """Resolves lookup types by logical or entity-set name, as the metadata cache does."""
    return resolve_target

