"""Response helpers shared by the metadata views: JSON bodies, error bodies, context URLs."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..errors import DataverseError
from .catalog import Catalog, catalog_for

API = "/api/data/v9.2/"
JSON_TYPE = "application/json; odata.metadata=minimal"


def headers() -> dict[str, str]:
    return {"OData-Version": "4.0", "REQ_ID": str(uuid.uuid4())}


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, headers=headers(), media_type=JSON_TYPE)


def error_response(exc: DataverseError) -> Response:
    return json_response({"error": {"code": exc.code, "message": exc.message}}, exc.status)


def api_root(request: Request) -> str:
    # the version the client named (v9.0/v9.1 are routed as v9.2; see app.ApiVersionMiddleware)
    return str(request.base_url).rstrip("/") + (request.scope.get("d365nb.api_root") or API)


def context_url(request: Request, path: str, select: list[str] | None, entity: bool) -> str:
    """`@odata.context`: `<api>$metadata#<path>(<select>)[/$entity]`."""
    sel = f"({','.join(select)})" if select else ""
    return f"{api_root(request)}$metadata#{path}{sel}" + ("/$entity" if entity else "")


def collection(request: Request, path: str, select: list[str] | None, items: list) -> Response:
    return json_response(
        {"@odata.context": context_url(request, path, select, False), "value": items}
    )


def single(request: Request, path: str, select: list[str] | None, item: dict) -> Response:
    return json_response({"@odata.context": context_url(request, path, select, True), **item})


def catalog_of(request: Request) -> Catalog:
    return catalog_for(request.app.state.org.schema)
