"""The sandbox's HTTP face: a Starlette app speaking the Dataverse Web API v9.2.

Routes parse requests and render Dataverse's response shapes; they know no SQL (queries go to
`odata`, writes to `service`). The router holds `metadata.routes()`, `batch.routes()`,
`bulk.routes()` and the record routes; the `limits`/`faults` middlewares wrap it all.
`request.app.state.org` is the `Org`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import batch, bulk, errors, faults, guards, limits, metadata, odata
from .bearer import bearer_matches
from .org import Org
from .records import resource
from .responses import (
    API,
    JSON_TYPE,
    api_base,
    error_response,
    json_response,
    odata_error,
    route_older_version,
)

__all__ = ["API", "Org", "build_app", "build_router"]

log = logging.getLogger("d365nb.sandbox")


async def whoami(request: Request) -> Response:
    """`GET WhoAmI`: the caller, its business unit and the organisation."""
    org: Org = request.app.state.org
    if request.method != "GET":
        return error_response(errors.NoHttpResource(str(request.url).split("?")[0]))
    return json_response(
        {
            "@odata.context": f"{api_base(request)}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            "BusinessUnitId": org.business_unit_id,
            "UserId": org.user_id,
            "OrganizationId": org.organization_id,
        }
    )


async def not_found(request: Request) -> Response:
    """Anything outside the API: Dataverse's 404 body."""
    return error_response(errors.ResourceNotFound(request.url.path.rsplit("/", 1)[-1]))


# -- assembly -------------------------------------------------------------------------------------


class AuthMiddleware:
    """Every request needs `Authorization: Bearer <token>`; else 401 with the Entra ID
    `WWW-Authenticate` challenge Dataverse sends and a Dataverse error body."""

    def __init__(self, app: Any, org: Org) -> None:
        self.app = app
        self.org = org

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
        if bearer_matches(given, self.org.token):
            await self.app(scope, receive, send)
            return
        message = (
            "Bearer token missing or invalid: send 'Authorization: Bearer <token>'."
            if given
            else "The request has no bearer token: send 'Authorization: Bearer <token>'."
        )
        # The 401 body is not documented (dataverse-wire.md §1); the shape is Dataverse's, and
        # the code stays empty as in Microsoft's other examples rather than guess one.
        body = orjson.dumps({"error": {"code": "", "message": message}})
        # As Dataverse sends it (seen in third-party tenant-discovery code):
        # `Bearer authorization_uri=https://login.microsoftonline.com/<tenant>/oauth2/authorize,
        # resource_id=https://<org>.crm.dynamics.com/`
        host = next((v for k, v in scope["headers"] if k == b"host"), b"").decode("latin-1")
        resource = f"{scope.get('scheme', 'http')}://{host}/" if host else ""
        challenge = (
            "Bearer authorization_uri=https://login.microsoftonline.com/"
            f"{self.org.tenant_id}/oauth2/authorize"
            + (f", resource_id={resource}" if resource else "")
        )
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", JSON_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", challenge.encode()),
                    (b"odata-version", b"4.0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class ApiVersionMiddleware:
    """Serve `/api/data/v9.0/` and `/api/data/v9.1/` (still used by older samples and by
    Power Automate's webhook registration) through the v9.2 routes; the answer's URLs
    (`@odata.context`, `@odata.id`, `OData-EntityId`, links) keep the version asked for."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = route_older_version(scope)
        await self.app(scope, receive, send)


URL_LIMIT = 32_768  # characters of path and query (query/overview: URL length limitations)


class UrlLengthMiddleware:
    """Refuse a URL longer than Dataverse's limit with 414 before anything else reads it
    (`$batch` parts have their own, doubled limit: see `batch.py`)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            length = len(scope.get("raw_path") or scope["path"].encode()) + len(
                scope.get("query_string") or b""
            )
            if scope.get("query_string"):
                length += 1  # the "?"
            if length > URL_LIMIT:
                response = error_response(errors.UrlTooLong(length, URL_LIMIT))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _dataverse_error(request: Request, exc: Exception) -> Response:
    return error_response(exc)  # type: ignore[arg-type]


async def _odata_error(request: Request, exc: Exception) -> Response:
    return error_response(odata_error(exc))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error serving %s %s", request.method, request.url.path)
    return json_response(
        {"error": {"code": "0x80040216", "message": "An unexpected error occurred."}}, 500
    )


def build_router(org: Org) -> Starlette:
    """The Starlette app (no auth/limits/faults): `$batch` dispatches parts into this."""
    routes: list[Any] = [*metadata.routes(), *batch.routes(), *bulk.routes()]
    routes += [
        Route(API + "WhoAmI", whoami, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
        Route(API + "WhoAmI()", whoami, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
        Route(API + "{path:path}", resource, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
        # anything else (another API version, a typo in the root): Dataverse's 404 body
        Route("/{path:path}", not_found, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
    ]
    handlers: dict[Any, Callable] = {
        errors.DataverseError: _dataverse_error,
        odata.ODataError: _odata_error,
        Exception: _unexpected,
    }
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.org = org
    return app


def build_app(org: Org) -> Any:
    """The full ASGI app: faults (outermost, so it can drop connections) -> URL length -> API
    version -> auth -> limits -> guards (header and body size, body timeout) -> router.
    Limits sit inside auth: only authenticated requests are counted, per caller (a bogus token
    costs nothing); guards inside limits, so a request still sending its body is in flight.
    `org.router` keeps the inner Starlette app."""
    router = build_router(org)
    org.router = router  # type: ignore[attr-defined]
    app: Any = guards.GuardsMiddleware(router)
    if "limiter" in org.config:
        app = limits.LimitsMiddleware(app, org.config["limiter"], lambda scope: org.user_id)
    app = UrlLengthMiddleware(ApiVersionMiddleware(AuthMiddleware(app, org)))
    if "faults" in org.config:
        app = faults.FaultsMiddleware(app, org.config["faults"], lambda: org.token)
    return app
