"""`flow.to_logic_app()`: the Dataverse connector's webhook trigger, declarative steps as
ApiConnection actions with dynamic content, placeholders for Python, and the ARM wrapper.
Every document is validated against the Logic Apps workflow-definition schema (Draft 4)."""

from __future__ import annotations

import copy

import pytest

from d365nb.flows import FlowError, RetryPolicy
from d365nb.flows.export import WORKFLOW_SCHEMA, ExportWarning, export
from tests.support.export import ORG

TRIGGER = "When_a_row_is_added,_modified_or_deleted"
CONNECTION = "@parameters('$connections')['commondataservice']['connectionId']"
ORG_VALUE = "@parameters('organization')"  # the organisation is one workflow parameter
CREATE_TASK = (
    'create tasks subject="Follow up: {trigger[subject]}" description={trigger[lastname]} '
    "regardingobjectid=leads({trigger[leadid]}) prioritycode=High percentcomplete=0"
)


def walkthrough(new_flow, **trigger):
    flow = new_flow().on_created("leads", every="10s", **trigger)
    return flow.step("create_task", CREATE_TASK)


def test_schema_check_rejects_a_broken_definition(new_flow, assert_valid):
    """The validator is not a rubber stamp: a wrong runAfter status fails."""
    definition = walkthrough(new_flow).to_logic_app(org=ORG)
    assert_valid(definition)
    broken = copy.deepcopy(definition)
    broken["actions"]["create_task"]["runAfter"] = {"x": ["Done"]}
    with pytest.raises(AssertionError, match="invalid workflow definition"):
        assert_valid(broken)
    del broken["contentVersion"]
    with pytest.raises(AssertionError):
        assert_valid(broken)


def test_created_trigger_is_the_dataverse_row_webhook(new_flow, assert_valid):
    definition = assert_valid(walkthrough(new_flow, filter="statuscode eq 1").to_logic_app(org=ORG))
    assert definition["$schema"] == WORKFLOW_SCHEMA
    assert definition["parameters"]["$connections"] == {"defaultValue": {}, "type": "Object"}
    organization = definition["parameters"]["organization"]
    assert organization["type"] == "String" and organization["defaultValue"] == ORG
    trigger = definition["triggers"][TRIGGER]
    assert trigger["type"] == "ApiConnectionWebhook"
    assert "recurrence" not in trigger and "splitOn" not in trigger  # one run per event
    inputs = trigger["inputs"]
    assert inputs["host"]["connection"]["name"] == CONNECTION
    assert inputs["path"] == "/api/data/v9.1/callbackregistrations"
    assert inputs["headers"]["organization"] == ORG_VALUE
    assert inputs["body"] == {
        "entityname": "lead",
        "message": 1,
        "scope": 4,
        "version": 1,
        "url": "@listCallbackUrl()",
        "filterexpression": "statuscode eq 1",
    }
    assert trigger["runtimeConfiguration"]["concurrency"]["runs"] == 1


def test_updated_trigger_watches_columns_and_deleted_uses_message_2(new_flow, assert_valid):
    flow = new_flow("watch").on_updated("leads", every="1m", columns="jobtitle,subject")
    flow.step("get_lead", "get leads {trigger[leadid]}")
    body = assert_valid(flow.to_logic_app(org=ORG))["triggers"][TRIGGER]["inputs"]["body"]
    assert body["message"] == 3 and body["filteringattributes"] == "jobtitle,subject"
    assert "filterexpression" not in body
    flow.on_deleted("leads", every="1m")
    body = assert_valid(flow.to_logic_app(org=ORG))["triggers"][TRIGGER]["inputs"]["body"]
    assert body["message"] == 2 and body["entityname"] == "lead"


def test_create_step_becomes_an_api_connection_action_with_dynamic_content(new_flow, assert_valid):
    definition = assert_valid(walkthrough(new_flow).to_logic_app(org=ORG))
    action = definition["actions"]["create_task"]
    assert action["type"] == "ApiConnection" and action["runAfter"] == {}
    inputs = action["inputs"]
    assert inputs["method"] == "post"
    assert inputs["host"]["connection"]["name"] == CONNECTION
    assert inputs["path"] == ("/api/data/v9.1/@{encodeURIComponent(encodeURIComponent('tasks'))}")
    # The designer's headers: formatted values come back, typed by the full metadata.
    assert inputs["headers"] == {
        "organization": ORG_VALUE,
        "prefer": 'return=representation,odata.include-annotations="*"',
        "accept": "application/json;odata.metadata=full",
    }
    assert inputs["body"] == {
        # text around a field: string interpolation
        "subject": "Follow up: @{triggerBody()?['subject']}",
        # exactly one field: the typed value
        "description": "@triggerBody()?['lastname']",
        # a lookup needs the table and the id: bound through its navigation property
        "regardingobjectid_lead_task@odata.bind": "/leads(@{triggerBody()?['leadid']})",
        "prioritycode": 2,  # the choice label, as its value
        "percentcomplete": 0,
    }
    # The default retry is Logic Apps' own default: no retryPolicy at all.
    assert "retryPolicy" not in inputs


def test_steps_chain_and_use_earlier_outputs(new_flow, assert_valid):
    flow = walkthrough(new_flow)
    flow.step("get_task", "get tasks {steps[create_task]}")
    flow.step(
        "touch_lead",
        'update leads {trigger[leadid]} description="Task: {steps[get_task][subject]}"',
    )
    flow.step("open_tasks", 'list tasks --filter "statecode eq 0" --top 5')
    flow.step("drop_task", "delete tasks {steps[create_task]}")
    actions = assert_valid(flow.to_logic_app(org=ORG))["actions"]
    assert list(actions) == ["create_task", "get_task", "touch_lead", "open_tasks", "drop_task"]
    assert actions["get_task"]["runAfter"] == {"create_task": ["Succeeded"]}
    assert actions["drop_task"]["runAfter"] == {"open_tasks": ["Succeeded"]}
    task_id = "@{encodeURIComponent(encodeURIComponent(body('create_task')?['activityid']))}"
    get = actions["get_task"]["inputs"]
    assert get["method"] == "get"
    assert get["headers"]["prefer"] == 'odata.include-annotations="*"'
    assert "prefer" not in actions["drop_task"]["inputs"]["headers"]
    assert get["path"].endswith(f"('tasks'))}}({task_id})")
    touch = actions["touch_lead"]["inputs"]
    assert touch["method"] == "patch" and touch["headers"]["If-Match"] == "*"
    assert touch["path"].endswith(
        "(@{encodeURIComponent(encodeURIComponent(triggerBody()?['leadid']))})"
    )
    assert touch["body"] == {"description": "Task: @{body('get_task')?['subject']}"}
    listing = actions["open_tasks"]["inputs"]
    assert listing["queries"] == {"$filter": "statecode eq 0", "$top": 5}
    assert actions["drop_task"]["inputs"]["method"] == "delete"


def test_python_steps_are_refused_unless_placeholders_are_asked_for(new_flow):
    flow = walkthrough(new_flow)
    flow.step("score", "len(trigger['subject'] or '') * 2")
    flow.step("notify", lambda trigger: print(trigger["subject"]))
    with pytest.raises(FlowError) as err:
        flow.to_logic_app(org=ORG)
    message = str(err.value)
    assert "step score is Python with no Logic Apps equivalent" in message
    assert "step notify is Python function" in message and "--placeholders" in message
    assert "\n" not in message


def test_python_steps_become_marked_placeholders_named_in_a_warning(new_flow, assert_valid):
    flow = walkthrough(new_flow)
    flow.step("score", "len(trigger['subject'] or '') * 2", when="trigger['subject']")
    flow.step("notify", lambda trigger: print(trigger["subject"]))
    with pytest.warns(
        ExportWarning, match=r"2 step\(s\) exported as placeholders.*score \(Python\), notify"
    ):
        definition = assert_valid(flow.to_logic_app(org=ORG, placeholders=True))
    score = definition["actions"]["score"]
    assert score["type"] == "Compose"
    assert score["runAfter"] == {"create_task": ["Succeeded"]}
    assert score["inputs"]["TODO"].startswith("TODO d365nb")
    assert score["inputs"]["python"] == "len(trigger['subject'] or '') * 2"
    assert score["inputs"]["if"] == "trigger['subject']"
    assert score["metadata"]["d365nb"]["placeholder"] is True
    assert definition["actions"]["notify"]["metadata"]["d365nb"]["kind"] == "callable"


def test_a_pure_declarative_flow_for_a_real_org_exports_without_warnings(
    new_flow, recwarn, assert_valid
):
    assert_valid(walkthrough(new_flow).to_logic_app(org=ORG))
    assert not [w for w in recwarn if issubclass(w.category, ExportWarning)]


def test_a_sandbox_flow_is_refused_without_an_org(new_flow, d365):
    """The sandbox's loopback address is never where a Logic App runs: name the org."""
    flow = walkthrough(new_flow)
    with pytest.raises(FlowError, match="runs on a sandbox: http://127.0.0.1:.* --org") as err:
        export(flow)
    assert "\n" not in str(err.value)
    with pytest.raises(
        FlowError, match="the organisation given http://localhost:8080 is a loopback"
    ):
        export(flow, org="http://localhost:8080")
    assert export(flow, org=ORG).definition["parameters"]["organization"]["defaultValue"] == ORG


def test_an_org_outside_dynamics_com_is_flagged(new_flow, assert_valid):
    result = export(walkthrough(new_flow), org="https://crm.example.org")
    assert_valid(result.document)
    assert any("not a Dynamics 365 org" in note for note in result.warnings)


def test_retry_policies_and_timeouts_carry_over(new_flow, assert_valid):
    flow = new_flow().on_created("leads", every="1m")
    flow.step("a", "get leads {trigger[leadid]}", retry="none")
    flow.step("b", "get leads {trigger[leadid]}", retry="fixed:10s:3", timeout="30s")
    flow.step("c", "get leads {trigger[leadid]}", retry=RetryPolicy("exponential", 6, 20, 0, 600))
    flow.step("d", "get leads {trigger[leadid]}", retry="fixed:1s:2")
    result = export(flow, org=ORG)
    actions = assert_valid(result.document)["actions"]
    assert actions["a"]["inputs"]["retryPolicy"] == {"type": "none"}
    assert actions["b"]["inputs"]["retryPolicy"] == {
        "type": "fixed",
        "count": 3,
        "interval": "PT10S",
    }
    assert actions["b"]["limit"] == {"timeout": "PT30S"}
    assert actions["c"]["inputs"]["retryPolicy"] == {
        "type": "exponential",
        "count": 6,
        "interval": "PT20S",
        "minimumInterval": "PT5S",
        "maximumInterval": "PT10M",
    }
    # Below Logic Apps' minimum interval: raised to PT5S, and the user is told.
    assert actions["d"]["inputs"]["retryPolicy"]["interval"] == "PT5S"
    assert any("step d: retry adjusted" in note for note in result.warnings)


def test_arm_template_deploys_the_workflow_with_its_api_connection(new_flow, assert_valid):
    flow = walkthrough(new_flow)
    flow.step("label", 'update tasks {steps[create_task]} description="[auto] created by flow"')
    flow.step("tag", 'update tasks {steps[create_task]} description="[auto]"')
    template = flow.to_logic_app(arm=True, org=ORG)
    assert template["$schema"].endswith("deploymentTemplate.json#")
    connection, workflow = template["resources"]
    assert connection["type"] == "Microsoft.Web/connections"
    assert "commondataservice" in template["variables"]["managedApiId"]
    assert workflow["type"] == "Microsoft.Logic/workflows"
    assert workflow["dependsOn"] == [
        "[resourceId('Microsoft.Web/connections', parameters('connectionName'))]"
    ]
    value = workflow["properties"]["parameters"]["$connections"]["value"]["commondataservice"]
    assert value["connectionId"].startswith("[resourceId('Microsoft.Web/connections'")
    assert value["connectionName"] == "[parameters('connectionName')]"
    assert value["id"] == "[variables('managedApiId')]"
    # The organisation is a template parameter handed to the workflow's parameter.
    assert template["parameters"]["organization"]["defaultValue"] == ORG
    assert workflow["properties"]["parameters"]["organization"] == {
        "value": "[parameters('organization')]"
    }
    definition = assert_valid(template)
    # ARM evaluates only a string that starts with "[" and ends with "]"; others stay as is.
    body = definition["actions"]["label"]["inputs"]["body"]
    assert body["description"] == "[auto] created by flow"
    assert definition["actions"]["tag"]["inputs"]["body"]["description"] == "[[auto]"
    plain = assert_valid(flow.to_logic_app(org=ORG))
    assert plain["actions"]["tag"]["inputs"]["body"]["description"] == "[auto]"


def test_a_step_whose_write_fires_its_own_trigger_is_flagged(new_flow, assert_valid):
    flow = new_flow().on_updated("leads", every="1m")
    flow.step("mark", "update leads {trigger[leadid]} jobtitle=Buyer")
    result = export(flow, org=ORG)
    assert_valid(result.document)
    assert any(
        "step mark writes to leads, the table the trigger watches" in n for n in result.warnings
    )
    # An update cannot fire a "created" trigger, and a task is not a lead.
    quiet = new_flow("quiet").on_created("leads", every="1m")
    quiet.step("mark", "update leads {trigger[leadid]} jobtitle=Buyer")
    quiet.step("task", 'create tasks subject="{trigger[subject]}"')
    assert export(quiet, org=ORG).warnings == []


def test_arm_template_with_a_service_principal_connection(new_flow, assert_valid):
    """The Dataverse connector's service-principal connection: app id, secret (securestring) and
    tenant as template parameters, set as the connection's ``token:*`` parameter values
    (https://learn.microsoft.com/connectors/commondataservice/ "Service principal authentication")."""
    flow = walkthrough(new_flow)
    template = export(flow, arm=True, org=ORG, connection="service-principal").document
    connection = template["resources"][0]
    assert connection["properties"]["parameterValues"] == {
        "token:clientId": "[parameters('clientId')]",
        "token:clientSecret": "[parameters('clientSecret')]",
        "token:TenantId": "[parameters('tenantId')]",
        "token:grantType": "client_credentials",
    }
    params = template["parameters"]
    assert (
        params["clientSecret"]["type"] == "securestring"
        and "defaultValue" not in params["clientSecret"]
    )
    assert params["clientId"]["type"] == "string" and "defaultValue" not in params["clientId"]
    assert params["tenantId"]["defaultValue"] == "[subscription().tenantId]"
    assert_valid(template)
    oauth = export(flow, arm=True, org=ORG).document
    assert "parameterValues" not in oauth["resources"][0]["properties"]
    assert "clientSecret" not in oauth["parameters"]
    with pytest.raises(FlowError, match="add --arm"):
        export(flow, org=ORG, connection="service-principal")
    with pytest.raises(FlowError, match="unknown connection 'certificate'"):
        export(flow, arm=True, org=ORG, connection="certificate")
    with pytest.raises(FlowError, match="legacy Dynamics 365 connector has no service-principal"):
        export(flow, arm=True, legacy=True, org=ORG, connection="service-principal")
