"""Wrap a workflow definition in an ARM template that deploys it with its API connection.

Consumption Logic Apps keep the definition (the "type" side of ``$connections``) apart from the
value side, which the ``Microsoft.Logic/workflows`` resource supplies and which points at a
``Microsoft.Web/connections`` resource of the managed API. An OAuth connection deployed by a
template still has to be authorised once in the portal (Azure's documented limitation); a
service-principal connection (``connection="service-principal"``) needs no sign-in: its app id,
secret and tenant are template parameters (the secret a ``securestring``), set as the
connection's ``token:clientId`` / ``token:clientSecret`` / ``token:TenantId`` parameter values
with ``token:grantType`` ``client_credentials``, the Dataverse connector's documented form.

The definition's own parameters other than ``$connections`` (the organisation) become template
parameters too, so one template deploys to any environment.
"""

from __future__ import annotations

from typing import Any

ARM_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
_CONNECTION_ID = "[resourceId('Microsoft.Web/connections', parameters('connectionName'))]"
_API_ID = "[variables('managedApiId')]"
CONNECTIONS = ("oauth", "service-principal")
_SERVICE_PRINCIPAL = {
    "clientId": ("string", None, "Application (client) id of the app registration."),
    "clientSecret": ("securestring", None, "Client secret of the app registration."),
    "tenantId": ("string", "[subscription().tenantId]", "Entra tenant of the app registration."),
}
# A WDL parameter type -> the ARM parameter type that carries its value.
_ARM_TYPES = {
    "string": "string",
    "securestring": "securestring",
    "int": "int",
    "bool": "bool",
    "object": "object",
    "secureobject": "secureobject",
    "array": "array",
}


def escape_arm(value: Any) -> Any:
    """ARM evaluates a string that starts with ``[`` and ends with ``]`` as an expression; a
    leading ``[[`` keeps such a string literal. Any other string is left alone."""
    if isinstance(value, str):
        return "[" + value if value.startswith("[") and value.endswith("]") else value
    if isinstance(value, dict):
        return {k: escape_arm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_arm(v) for v in value]
    return value


def wrap_arm(
    definition: dict[str, Any],
    *,
    name: str,
    connector: str,
    display_name: str,
    connection: str = "oauth",
) -> dict[str, Any]:
    """An ARM template: the API connection resource, then the workflow using it."""
    carried = {k: v for k, v in definition.get("parameters", {}).items() if k != "$connections"}
    parameters: dict[str, Any] = {}
    for key, spec in carried.items():
        parameters[key] = {
            "type": _ARM_TYPES.get(str(spec.get("type", "string")).lower(), "string"),
            "metadata": spec.get("metadata", {"description": f"Workflow parameter {key}."}),
        }
        if "defaultValue" in spec:
            parameters[key]["defaultValue"] = escape_arm(spec["defaultValue"])
    connection_properties: dict[str, Any] = {"displayName": display_name, "api": {"id": _API_ID}}
    if connection == "service-principal":
        for key, (kind, default, help_text) in _SERVICE_PRINCIPAL.items():
            parameters[key] = {"type": kind, "metadata": {"description": help_text}}
            if default is not None:
                parameters[key]["defaultValue"] = default
        connection_properties["parameterValues"] = {
            "token:clientId": "[parameters('clientId')]",
            "token:clientSecret": "[parameters('clientSecret')]",
            "token:TenantId": "[parameters('tenantId')]",
            "token:grantType": "client_credentials",
        }
    workflow_parameters: dict[str, Any] = {
        key: {"value": f"[parameters('{key}')]"} for key in carried
    }
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
                    if connection == "oauth"
                    else "Name of the API connection (signs in as the service principal)."
                },
            },
            **parameters,
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
                "properties": connection_properties,
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
                        **workflow_parameters,
                        "$connections": {
                            "value": {
                                connector: {
                                    "connectionId": _CONNECTION_ID,
                                    "connectionName": "[parameters('connectionName')]",
                                    "id": _API_ID,
                                }
                            }
                        },
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
