"""Wrap a workflow definition in an ARM template that deploys it with its API connection.

Consumption Logic Apps keep the definition (the "type" side of ``$connections``) apart from the
value side, which the ``Microsoft.Logic/workflows`` resource supplies and which points at a
``Microsoft.Web/connections`` resource of the managed API. An OAuth connection deployed by a
template still has to be authorised once in the portal (Azure's documented limitation).
"""

from __future__ import annotations

from typing import Any

ARM_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
_CONNECTION_ID = "[resourceId('Microsoft.Web/connections', parameters('connectionName'))]"
_API_ID = "[variables('managedApiId')]"


def escape_arm(value: Any) -> Any:
    """ARM reads a string starting with ``[`` as a template expression; ``[[`` keeps it literal."""
    if isinstance(value, str):
        return "[" + value if value.startswith("[") else value
    if isinstance(value, dict):
        return {k: escape_arm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_arm(v) for v in value]
    return value


def wrap_arm(
    definition: dict[str, Any], *, name: str, connector: str, display_name: str
) -> dict[str, Any]:
    """An ARM template: the API connection resource, then the workflow using it."""
    return {
        "$schema": ARM_SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {
            "logicAppName": {
                "type": "string",
                "defaultValue": name,
                "metadata": {"description": "Name of the Logic App (Consumption) workflow."},
            },
            "location": {
                "type": "string",
                "defaultValue": "[resourceGroup().location]",
                "metadata": {"description": "Azure region of the workflow and its connection."},
            },
            "connectionName": {
                "type": "string",
                "defaultValue": connector,
                "metadata": {
                    "description": "Name of the API connection; authorise it once in the "
                    "portal after deployment (OAuth consent)."
                },
            },
        },
        "variables": {
            "managedApiId": "[subscriptionResourceId('Microsoft.Web/locations/managedApis', "
            f"parameters('location'), '{connector}')]"
        },
        "resources": [
            {
                "type": "Microsoft.Web/connections",
                "apiVersion": "2016-06-01",
                "name": "[parameters('connectionName')]",
                "location": "[parameters('location')]",
                "properties": {"displayName": display_name, "api": {"id": _API_ID}},
            },
            {
                "type": "Microsoft.Logic/workflows",
                "apiVersion": "2019-05-01",
                "name": "[parameters('logicAppName')]",
                "location": "[parameters('location')]",
                "dependsOn": [_CONNECTION_ID],
                "properties": {
                    "state": "Enabled",
                    "definition": escape_arm(definition),
                    "parameters": {
                        "$connections": {
                            "value": {
                                connector: {
                                    "connectionId": _CONNECTION_ID,
                                    "connectionName": "[parameters('connectionName')]",
                                    "id": _API_ID,
                                }
                            }
                        }
                    },
                },
            },
        ],
    }


def workflow_definition(template: dict[str, Any]) -> dict[str, Any]:
    """The workflow definition inside an ARM template from `wrap_arm` (or the definition itself)."""
    for resource in template.get("resources", []):
        if resource.get("type") == "Microsoft.Logic/workflows":
            return resource["properties"]["definition"]
    return template
