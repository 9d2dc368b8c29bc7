"""Golden exports: the walkthrough flow exported as a Dataverse definition, a legacy definition
and an ARM template with a service-principal connection, compared byte for byte with the files
in ``golden/`` (regenerate with ``D365NB_UPDATE_GOLDEN=1``), and compared in shape with real
definitions that use the connectors (quoted in ``docs/flows-semantics.md`` §4.2-§4.3).

The ARM template is checked against the deployment template's required structure
(https://learn.microsoft.com/azure/azure-resource-manager/templates/syntax) and the workflow
definition against the Workflow Definition Language schema that ships in the package.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from d365nb.flows.export import export
from d365nb.flows.wdl_schema import problems
from tests.support.export import ORG

GOLDEN = Path(__file__).with_name("golden")

# Real definitions' shapes (docs/flows-semantics.md §4.3: zodraz/omnisync-infra; §4.2: the
# Azure/logicapps gallery template and a Power Automate export), values elided.
REAL_WEBHOOK_TRIGGER = {
    "type": "ApiConnectionWebhook",
    "inputs": {
        "host": {"connection": {"name": ""}},
        "path": "/api/data/v9.1/callbackregistrations",
        "headers": {
            "organization": "",
            "Consistency": "Strong",
            "catalog": "all",
            "category": "all",
        },
        "body": {
            "entityname": "",
            "message": 0,
            "scope": 4,
            "version": 1,
            "url": "@listCallbackUrl()",
        },
    },
}
REAL_LEGACY_TRIGGER = {
    "type": "ApiConnection",
    "inputs": {"host": {"connection": {"name": ""}}, "method": "get", "path": ""},
    "recurrence": {"frequency": "", "interval": 0},
    "metadata": {"flowSystemMetadata": {"swaggerOperationId": ""}},
    "splitOn": "@triggerBody()?['value']",
}
REAL_DATAVERSE_ACTION = {
    "type": "ApiConnection",
    "runAfter": {},
    "inputs": {
        "host": {"connection": {"name": ""}},
        "method": "",
        "path": "",
        "headers": {"organization": ""},
    },
}
DATAVERSE_ACTION_PATH = re.compile(
    r"^/api/data/v9\.1/@\{encodeURIComponent\(encodeURIComponent\('[a-z_]+'\)\)\}(\(@\{.*\}\))?$"
)
LEGACY_PATH = re.compile(
    r"^/datasets/@\{encodeURIComponent\(encodeURIComponent\(parameters\('dataset'\)\)\)\}"
    r"/tables/@\{encodeURIComponent\(encodeURIComponent\('[a-z_]+'\)\)\}/[a-z/]+"
)

# What Azure Resource Manager requires of a deployment template (templates/syntax: "$schema",
# "contentVersion" and "resources" are required; each resource needs "type", "apiVersion" and
# "name"; a parameter needs a "type" of the listed ones; templates/data-types: a secure
# parameter must not carry a default secret).
ARM_STRUCTURE = {
    "type": "object",
    "required": ["$schema", "contentVersion", "resources"],
    "properties": {
        "$schema": {"type": "string", "pattern": r"deploymentTemplate\.json#$"},
        "contentVersion": {"type": "string", "pattern": r"^\d+\.\d+\.\d+\.\d+$"},
        "parameters": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {
                        "enum": [
                            "string",
                            "securestring",
                            "int",
                            "bool",
                            "object",
                            "secureobject",
                            "array",
                        ]
                    }
                },
                "not": {
                    "properties": {"type": {"enum": ["securestring", "secureobject"]}},
                    "required": ["type", "defaultValue"],
                },
            },
        },
        "variables": {"type": "object"},
        "resources": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["type", "apiVersion", "name"],
                "properties": {
                    "type": {"type": "string", "pattern": r"^[A-Za-z.]+/[A-Za-z/]+$"},
                    "apiVersion": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}(-preview)?$"},
                    "dependsOn": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "outputs": {"type": "object"},
    },
}
_ARM_REFERENCE = re.compile(r"(parameters|variables)\('([^']+)'\)")


def walkthrough(new_flow):
    flow = new_flow().on_created("leads", every="3m", filter="statuscode eq 1")
    flow.step(
        "create_task",
        'create tasks subject="Follow up: {trigger[subject]}" regardingobjectid=leads({trigger[leadid]}) '
        "prioritycode=High",
        retry="fixed:10s:3",
        timeout="2m",
    )
    flow.step("get_task", "get tasks {steps[create_task]}")
    flow.step(
        "touch_lead",
        'update leads {trigger[leadid]} description="[auto] {steps[get_task][subject]}"',
    )
    return flow


def legacy_flow(new_flow):
    flow = new_flow("legacy_leads").on_created("leads", every="3m", filter="statuscode eq 1")
    flow.step("create_task", 'create tasks subject="Follow up: {trigger[subject]}"')
    return flow


CASES = {
    "dataverse.json": lambda nf: export(walkthrough(nf), org=ORG),
    "legacy.json": lambda nf: export(legacy_flow(nf), legacy=True, org=ORG),
    "arm-service-principal.json": lambda nf: export(
        walkthrough(nf), arm=True, org=ORG, connection="service-principal"
    ),
}


def _same_shape(ours: Any, real: Any, where: str = "") -> None:
    """Every key of the real definition is in ours, with a value of the same JSON type; real
    constants (non-empty strings, non-zero numbers) must match."""
    if isinstance(real, dict):
        assert isinstance(ours, dict), f"{where}: expected an object"
        for key, value in real.items():
            assert key in ours, f"{where}/{key} missing"
            _same_shape(ours[key], value, f"{where}/{key}")
        return
    assert type(ours) is type(real), f"{where}: {type(ours).__name__} vs {type(real).__name__}"
    if real not in ("", 0):
        assert ours == real, f"{where}: {ours!r} != {real!r}"


@pytest.mark.parametrize("name", list(CASES))
def test_export_matches_its_golden_file(new_flow, name):
    result = CASES[name](new_flow)
    text = json.dumps(result.document, indent=2, sort_keys=True) + "\n"
    path = GOLDEN / name
    if os.environ.get("D365NB_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed: review, then regenerate"
    assert problems(result.document) == []
    assert result.warnings == []


def test_dataverse_export_has_the_shape_of_real_definitions(new_flow):
    definition = json.loads((GOLDEN / "dataverse.json").read_text())
    [(name, trigger)] = definition["triggers"].items()
    assert name == "When_a_row_is_added,_modified_or_deleted"
    _same_shape(trigger, REAL_WEBHOOK_TRIGGER, "trigger")
    for action_name, action in definition["actions"].items():
        _same_shape(
            action, {k: v for k, v in REAL_DATAVERSE_ACTION.items() if k != "runAfter"}, action_name
        )
        assert DATAVERSE_ACTION_PATH.match(action["inputs"]["path"]), action["inputs"]["path"]
        assert action["inputs"]["headers"]["organization"] == "@parameters('organization')"
    assert definition["actions"]["create_task"]["runAfter"] == {}
    # Every parameter an expression reads is declared (else the deployment is refused).
    used = set(re.findall(r"parameters\('([^']+)'\)", json.dumps(definition)))
    assert used == set(definition["parameters"]) == {"$connections", "organization"}


def test_legacy_export_has_the_shape_of_real_definitions(new_flow):
    definition = json.loads((GOLDEN / "legacy.json").read_text())
    [(name, trigger)] = definition["triggers"].items()
    assert name == "When_a_record_is_created"
    _same_shape(trigger, REAL_LEGACY_TRIGGER, "trigger")
    assert LEGACY_PATH.match(trigger["inputs"]["path"])
    assert "runtimeConfiguration" not in trigger  # would disable splitOn above 100 items
    used = set(re.findall(r"parameters\('([^']+)'\)", json.dumps(definition)))
    assert used == set(definition["parameters"]) == {"$connections", "dataset"}


def test_arm_template_has_the_deployment_template_structure():
    template = json.loads((GOLDEN / "arm-service-principal.json").read_text())
    errors = _arm_structure_errors(template)
    assert not errors, errors[0].message
    # Every parameters('x') / variables('x') an ARM expression names is declared.
    arm_strings = [
        s
        for s in _strings(template)
        if s.startswith("[") and not s.startswith("[[") and s.endswith("]")
    ]
    for text in arm_strings:
        for kind, key in _ARM_REFERENCE.findall(text):
            assert key in template[kind], f"{text} names an undeclared {kind[:-1]} {key!r}"
    # The workflow gets a value for every parameter its definition declares.
    workflow = template["resources"][1]
    declared = set(workflow["properties"]["definition"]["parameters"])
    assert declared == set(workflow["properties"]["parameters"])
    assert workflow["dependsOn"] == [
        "[resourceId('Microsoft.Web/connections', parameters('connectionName'))]"
    ]
    # Literal text starting with "[" and ending with "]" is escaped; other text is not.
    description = workflow["properties"]["definition"]["actions"]["touch_lead"]["inputs"]["body"]
    assert description["description"] == "[auto] @{body('get_task')?['subject']}"


def test_a_broken_arm_template_fails_the_structure_check():
    template = json.loads((GOLDEN / "arm-service-principal.json").read_text())
    template["parameters"]["clientSecret"]["defaultValue"] = "hunter2"
    del template["resources"][0]["apiVersion"]
    errors = _arm_structure_errors(template)
    assert len(errors) == 2


def _arm_structure_errors(template: dict[str, Any]) -> list[Any]:
    # Imported here, not at collection: importing jsonschema with Jupyter's `format` extras
    # costs about a second in every test worker (see tests/export/conftest.py).
    import jsonschema

    jsonschema.Draft4Validator.check_schema(ARM_STRUCTURE)
    return list(jsonschema.Draft4Validator(ARM_STRUCTURE).iter_errors(template))


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
