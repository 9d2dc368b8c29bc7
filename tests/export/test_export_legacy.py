"""`to_logic_app(legacy=True)`: the Dynamics 365 (``dynamicscrmonline``) polling trigger and
its tabular actions, as the designer wrote them; validated against the schema."""

from __future__ import annotations

import pytest

from d365nb.flows import FlowError
from d365nb.flows.export import ExportWarning, recurrence
from tests.support.export import ORG

CONNECTION = "@parameters('$connections')['dynamicscrmonline']['connectionId']"
# The dataset (org host minus .dynamics.com) is a workflow parameter every path reads.
DATASET = "@{encodeURIComponent(encodeURIComponent(parameters('dataset')))}"


@pytest.mark.parametrize(
    ("kind", "operation", "name", "swagger"),
    [
        ("created", "onnewitems", "When_a_record_is_created", "GetOnNewItems"),
        ("updated", "onupdateditems", "When_a_record_is_updated", "GetOnUpdatedItems"),
        ("deleted", "ondeleteditems", "When_a_record_is_deleted", "GetOnDeletedItems"),
    ],
)
def test_legacy_trigger_polls_the_table(new_flow, assert_valid, kind, operation, name, swagger):
    flow = new_flow()
    if kind == "deleted":
        flow.on_deleted("leads", every="3m")
    else:
        getattr(flow, f"on_{kind}")("leads", every="3m", filter="statuscode eq 1")
    flow.step("get_lead", "get leads {trigger[leadid]}")
    definition = assert_valid(flow.to_logic_app(legacy=True, org=ORG))
    trigger = definition["triggers"][name]
    assert trigger["type"] == "ApiConnection"
    assert trigger["inputs"]["host"]["connection"]["name"] == CONNECTION
    assert trigger["inputs"]["method"] == "get"
    assert trigger["inputs"]["path"] == (
        f"/datasets/{DATASET}/tables/@{{encodeURIComponent(encodeURIComponent('leads'))}}/{operation}"
    )
    assert trigger["recurrence"] == {"frequency": "Minute", "interval": 3}
    assert trigger["splitOn"] == "@triggerBody()?['value']"
    assert trigger["metadata"]["flowSystemMetadata"]["swaggerOperationId"] == swagger
    # A concurrency limit would turn splitOn off above 100 items (Logic Apps limits doc).
    assert "runtimeConfiguration" not in trigger
    assert definition["parameters"]["dataset"]["defaultValue"] == "contoso.crm4"
    if kind == "deleted":
        assert "queries" not in trigger["inputs"]
    else:
        assert trigger["inputs"]["queries"] == {"$filter": "statuscode eq 1"}


@pytest.mark.parametrize(
    ("every", "expected"),
    [
        (10, {"frequency": "Second", "interval": 10}),
        (90, {"frequency": "Second", "interval": 90}),
        (180, {"frequency": "Minute", "interval": 3}),
        (7200, {"frequency": "Hour", "interval": 2}),
        (86400, {"frequency": "Day", "interval": 1}),
        (0.5, {"frequency": "Second", "interval": 1}),
    ],
)
def test_every_maps_to_the_largest_even_unit(every, expected):
    assert recurrence(every) == expected


def test_recurrence_in_the_export_follows_every(new_flow, assert_valid):
    flow = new_flow().on_created("leads", every="2h")
    flow.step("get_lead", "get leads {trigger[leadid]}")
    trigger = assert_valid(flow.to_logic_app(legacy=True, org=ORG))["triggers"]
    assert trigger["When_a_record_is_created"]["recurrence"] == {"frequency": "Hour", "interval": 2}


def test_legacy_actions_use_items_paths_and_lookup_type_pairs(new_flow, assert_valid):
    flow = new_flow().on_created("leads", every="1m")
    flow.step(
        "create_task",
        'create tasks subject="Call {trigger[lastname]}" regardingobjectid=leads({trigger[leadid]})',
    )
    flow.step("task", "get tasks {steps[create_task]}")
    flow.step("done", "update tasks {steps[create_task]} percentcomplete=100")
    flow.step("recent", 'list leads --filter "statuscode eq 1" --orderby "createdon desc"')
    actions = assert_valid(flow.to_logic_app(legacy=True, org=ORG))["actions"]
    items = f"/datasets/{DATASET}/tables/@{{encodeURIComponent(encodeURIComponent('tasks'))}}/items"
    create = actions["create_task"]["inputs"]
    assert create["method"] == "post" and create["path"] == items
    assert "headers" not in create
    # The seed: a lookup needs both the record id and the lookup type.
    assert create["body"] == {
        "subject": "Call @{triggerBody()?['lastname']}",
        "_regardingobjectid_value": "@triggerBody()?['leadid']",
        "_regardingobjectid_type": "leads",
    }
    task_id = "@{encodeURIComponent(encodeURIComponent(body('create_task')?['activityid']))}"
    assert actions["task"]["inputs"]["path"] == f"{items}/{task_id}"
    assert actions["done"]["inputs"]["method"] == "patch"
    assert actions["done"]["inputs"]["body"] == {"percentcomplete": 100}
    assert actions["recent"]["inputs"]["queries"] == {
        "$filter": "statuscode eq 1",
        "$orderby": "createdon desc",
    }


def test_dataset_is_the_org_host_minus_dynamics_com(new_flow, assert_valid):
    flow = new_flow().on_created("leads", every="1m")
    flow.step("get_lead", "get leads {trigger[leadid]}")
    definition = assert_valid(
        flow.to_logic_app(legacy=True, org="https://org0c4ba32d.crm.dynamics.com")
    )
    path = definition["triggers"]["When_a_record_is_created"]["inputs"]["path"]
    assert path.startswith(f"/datasets/{DATASET}/")
    assert definition["parameters"]["dataset"] == {
        "defaultValue": "org0c4ba32d.crm",
        "type": "String",
        "metadata": definition["parameters"]["dataset"]["metadata"],
    }


def test_arm_template_for_legacy_uses_the_dynamics_connection(new_flow, assert_valid):
    flow = new_flow().on_created("leads", every="1m")
    flow.step("get_lead", "get leads {trigger[leadid]}")
    template = flow.to_logic_app(legacy=True, arm=True, org=ORG)
    workflow = template["resources"][1]
    assert set(workflow["properties"]["parameters"]["$connections"]["value"]) == {
        "dynamicscrmonline"
    }
    assert "'dynamicscrmonline')]" in template["variables"]["managedApiId"]
    assert template["parameters"]["dataset"]["defaultValue"] == "contoso.crm4"
    assert workflow["properties"]["parameters"]["dataset"] == {"value": "[parameters('dataset')]"}
    assert_valid(template)


def test_what_the_legacy_connector_cannot_do_is_refused(new_flow, assert_valid):
    flow = new_flow().on_updated("leads", every="1m", columns="jobtitle")
    flow.step("mark", "upsert leads {trigger[leadid]} jobtitle=Buyer")
    with pytest.raises(FlowError) as err:
        flow.to_logic_app(legacy=True, org=ORG)
    message = str(err.value)
    assert "\n" not in message
    assert "cannot watch columns" in message and "step mark" in message and "no upsert" in message
    with pytest.warns(ExportWarning, match="step mark writes to leads"):
        upsert = assert_valid(flow.to_logic_app(org=ORG))["actions"]["mark"]["inputs"]
    assert upsert["method"] == "patch" and "If-Match" not in upsert["headers"]
