"""CreateMultiple / UpdateMultiple / UpsertMultiple (dataverse-wire.md §10, [BO]).

`POST /api/data/v9.2/<set>/Microsoft.Dynamics.CRM.<Action>` with `{"Targets": [...]}`, each
target carrying `"@odata.type": "Microsoft.Dynamics.CRM.<logicalname>"`. On standard tables
these are all-or-nothing: the whole call runs in one store transaction, so one bad target writes
nothing. Every target goes through the same `service` validation as a single create/update.

Responses, per Microsoft's action reference pages
(learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/<action>):
* CreateMultiple -> 200 `{"@odata.context": ".../$metadata#Microsoft.Dynamics.CRM.
  CreateMultipleResponse", "Ids": [...]}` (CreateMultipleResponse ComplexType: "Ids -
  Collection(Edm.Guid) - The ID values of the records created.");
* UpdateMultiple -> 204 No Content;
* UpsertMultiple -> 204 No Content ("The UpsertMultiple action returns 204 NoContent. The
  UpsertMultipleResponse complex type is not returned." - reference/upsertmultiple).

Client-supplied primary keys are honoured on create (clients use them for idempotent retries);
an upsert target names its record by primary key or by `"@odata.id": "leads(<guid>)"`.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import BadRequest, InvalidArgument
from .values import check_nesting

API_ROOT = "/api/data/v9.2/"
ACTIONS = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ODATA_ID = re.compile(r"^/?(?:.*/)?([A-Za-z0-9_]+)\(([^)]*)\)$")


def _targets(body: bytes, table: Any, action: str) -> list[dict[str, Any]]:
    """The `Targets` of the body, checked for shape and type before anything is written."""
    try:
        data = orjson.loads(body or b"null")
    except orjson.JSONDecodeError:
        raise BadRequest(f"The body of {action} is not valid JSON.") from None
    check_nesting(data)
    targets = data.get("Targets") if isinstance(data, dict) else None
    if not isinstance(targets, list) or not targets:
        raise BadRequest(f'{action} needs a body {{"Targets": [...]}} with at least one record.')
    expected = f"Microsoft.Dynamics.CRM.{table.logical_name}"
    out = []
    for index, target in enumerate(targets):
        if not isinstance(target, dict):
            raise BadRequest(f"Targets[{index}] of {action} is not a JSON object.")
        odata_type = target.get("@odata.type")
        if odata_type is None:
            raise BadRequest(
                f"Targets[{index}] of {action} has no @odata.type; every target needs "
                f'"@odata.type": "{expected}".'
            )
        if odata_type != expected:
            raise BadRequest(
                f"Targets[{index}] of {action} has @odata.type '{odata_type}', but the action is "
                f"bound to {table.entity_set}; expected '{expected}'."
            )
        out.append({k: v for k, v in target.items() if k != "@odata.type"})
    return out


def _key_of(target: dict[str, Any], table: Any, index: int, action: str) -> str | None:
    """The primary key a target names (its key column or `@odata.id`), checked as a GUID."""
    key = target.pop(table.primary_id, None)
    odata_id = target.pop("@odata.id", None)
    if key is None and odata_id is not None:
        match = _ODATA_ID.match(str(odata_id))
        if not match or match.group(1) != table.entity_set:
            raise BadRequest(
                f"Targets[{index}] of {action}: @odata.id must look like "
                f"'{table.entity_set}(<guid>)', got {str(odata_id)[:80]!r}."
            )
        key = match.group(2).strip("'")
    if key is None:
        return None
    if not isinstance(key, str) or not _GUID.match(key):
        raise InvalidArgument(
            f"Targets[{index}] of {action}: {table.primary_id} must be a GUID, got {key!r}."
        )
    return key.lower()


def _apply(org: Any, table: Any, action: str, targets: list[dict[str, Any]]) -> list[str]:
    """Write every target (inside the caller's transaction); the ids in target order."""
    service = org.service
    pk = table.primary_id
    if action == "CreateMultiple":
        return service.create_many(table, targets)
    keys = [_key_of(target, table, index, action) for index, target in enumerate(targets)]
    first: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key is None:
            continue
        if key not in first:
            first[key] = index
        elif action == "UpsertMultiple":
            # "When more than one record in the Targets parameter is uniquely identified by a
            # primary or alternate key, UpsertMultiple will return an error." (bulk-operations)
            raise BadRequest(
                f"Targets[{index}] of UpsertMultiple names the same record as "
                f"Targets[{first[key]}] ({table.primary_id} {key}); each record may appear once."
            )
    ids: list[str] = []
    for index, (target, key) in enumerate(zip(targets, keys, strict=True)):
        if action == "UpdateMultiple" and key is not None and first[key] != index:
            # "the operation is performed on the first record only. Any subsequent records with
            # the same key value(s) in the payload are ignored." (bulk-operations)
            continue
        if action == "UpdateMultiple":
            if key is None:
                raise BadRequest(
                    f"Targets[{index}] of UpdateMultiple has no {table.primary_id}; each target "
                    "must name the record it updates."
                )
            service.update(table, key, target)
            ids.append(key)
        elif key is None:  # UpsertMultiple without a key creates
            ids.append(service.create(table, target)[pk])
        else:
            service.upsert(table, key, target)
            ids.append(key)
    return ids


def _apply_all(org: Any, table: Any, action: str, targets: list[dict[str, Any]]) -> list[str]:
    """All targets in one transaction (all or nothing), on a worker thread."""
    with org.store.transaction():
        return _apply(org, table, action, targets)


async def _run(request: Request, action: str) -> Response:
    org = request.app.state.org
    table = org.service.table_for_set(request.path_params["entity_set"])
    targets = _targets(await request.body(), table, action)
    async with org.writing(request.scope):
        ids = await org.off_loop(_apply_all, org, table, action, targets)
    if action != "CreateMultiple":
        return Response(status_code=204, headers={"OData-Version": "4.0"})
    api = str(request.base_url).rstrip("/") + (request.scope.get("d365nb.api_root") or API_ROOT)
    body = {
        "@odata.context": f"{api}$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse",
        "Ids": ids,
    }
    return Response(
        orjson.dumps(body),
        media_type="application/json; odata.metadata=minimal",
        headers={"OData-Version": "4.0"},
    )


async def create_multiple(request: Request) -> Response:
    """POST <set>/Microsoft.Dynamics.CRM.CreateMultiple."""
    return await _run(request, "CreateMultiple")


async def update_multiple(request: Request) -> Response:
    """POST <set>/Microsoft.Dynamics.CRM.UpdateMultiple."""
    return await _run(request, "UpdateMultiple")


async def upsert_multiple(request: Request) -> Response:
    """POST <set>/Microsoft.Dynamics.CRM.UpsertMultiple."""
    return await _run(request, "UpsertMultiple")


def routes() -> list[Route]:
    """The bulk action routes, for `app.build_app` (before its generic collection routes)."""
    handlers = {
        "CreateMultiple": create_multiple,
        "UpdateMultiple": update_multiple,
        "UpsertMultiple": upsert_multiple,
    }
    return [
        Route(
            API_ROOT + "{entity_set}/Microsoft.Dynamics.CRM." + action,
            handler,
            methods=["POST"],
        )
        for action, handler in handlers.items()
    ]
