"""Dataverse's errors as exception classes, rendered as `{"error": {"code", "message"}}`.

Codes and messages follow dataverse-wire.md §6/§8. Every client mistake the sandbox detects
raises one of these; `app` turns it into the response, so no client mistake becomes a 500.
"""

from __future__ import annotations

from typing import Any


def one_line(text: str) -> str:
    """`text` on one line: line breaks a client sent (in a filter, a token, a value) and that an
    error message quotes back are shown escaped, so every error message stays one line."""
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\u2028", " ").replace(
        "\u2029", " "
    )


class DataverseError(Exception):
    """An error response: HTTP `status`, Dataverse `code` (hex text or ""), one-line `message`."""

    status = 400
    code = "0x0"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        message = one_line(message)
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(DataverseError):
    """Generic malformed request (OData's own parsing errors carry code 0x80048d19)."""

    code = "0x80048d19"


class ResourceNotFound(DataverseError):
    """Unknown entity set, function or action: `Resource not found for the segment 'X'.`"""

    status = 404
    code = "0x8006088a"

    def __init__(self, segment: str):
        super().__init__(f"Resource not found for the segment '{segment}'.")


class NoHttpResource(DataverseError):
    """A known resource asked with a verb it does not support (e.g. POST WhoAmI)."""

    status = 404
    code = ""

    def __init__(self, url: str):
        super().__init__(f"No HTTP resource was found that matches the request URI '{url}'.")


class MethodNotAllowed(DataverseError):
    status = 405
    code = "0x80060888"


class QueryError(DataverseError):
    """Bad query syntax or semantics ($filter, $select, ...); the message keeps the position."""

    code = "0x80060888"


class PropertyNotFound(DataverseError):
    """A property name the table does not have (in $select, $orderby, a URL segment); code 0x0
    as in Microsoft's "Troubleshoot Dataverse Web API client errors" page."""

    code = "0x0"

    def __init__(self, name: str, logical_name: str):
        super().__init__(
            f"Could not find a property named '{name}' on type "
            f"'Microsoft.Dynamics.CRM.{logical_name}'."
        )


class InvalidProperty(DataverseError):
    """A body names a property the entity type does not declare. Code and message as in
    Microsoft's "Troubleshoot Dataverse Web API client errors" page (code 0x0)."""

    code = "0x0"

    def __init__(self, name: str, logical_name: str):
        super().__init__(
            "An error occurred while validating input parameters: Microsoft.Crm.CrmException: "
            f"Invalid property '{name}' was found in entity "
            f"'Microsoft.Dynamics.CRM.{logical_name}'. ---> Microsoft.OData.ODataException: "
            "Does not support untyped value in non-open type."
        )


class ValidationFailed(DataverseError):
    """A value breaks a column's rule (length, range, option set)."""

    code = "0x80044331"


class InvalidArgument(DataverseError):
    """A value of the wrong type, a malformed GUID, an impossible state/status pair."""

    code = "0x80040203"


class RequiredMissing(DataverseError):
    """A required column without a value on create (or set to null on update)."""

    code = "0x80040203"


class RecordNotFound(DataverseError):
    """`<entity> With Id = <guid> Does Not Exist` (code 0x80040217)."""

    status = 404
    code = "0x80040217"

    def __init__(self, logical_name: str, id: str):
        super().__init__(f"{logical_name} With Id = {id} Does Not Exist")


class DuplicateRecord(DataverseError):
    """Create with a primary key that exists, or upsert with `If-None-Match: *` on an existing
    row. Status 412 and code 0x80040237, as observed on Dataverse: see
    https://bengribaudo.com/blog/2021/04/13/5574/dataverse-web-api-tip-identity-insert
    ("the request will fail with a 412 Precondition Failed ... A record with matching key values
    already exists. (code: 0x80040237)")."""

    status = 412
    code = "0x80040237"

    def __init__(self) -> None:
        super().__init__("A record with matching key values already exists.")


class DuplicateDetected(DataverseError):
    """Duplicate detection (asked for with `MSCRM.SuppressDuplicateDetection: false`) found a
    match: status 500 and code 0x80040333, as Microsoft's duplicate-detection page shows."""

    status = 500
    code = "0x80040333"

    def __init__(self) -> None:
        super().__init__(
            "A record was not created or updated because a duplicate of the current record "
            "already exists."
        )


class VersionMismatch(DataverseError):
    """`If-Match: W/"n"` does not match the row's version (optimistic concurrency)."""

    status = 412
    code = "0x80060882"

    def __init__(self) -> None:
        super().__init__(
            "The version of the existing record doesn't match the RowVersion property provided."
        )


class Unauthorized(DataverseError):
    status = 401
    code = ""


class PayloadTooLarge(DataverseError):
    status = 413
    code = "0x80048d19"


class AggregateLimitExceeded(DataverseError):
    """An aggregate query (`$apply` aggregate, FetchXML `aggregate='true'`) over more rows than
    the limit (50,000): code 8004E023 as in
    https://learn.microsoft.com/power-apps/developer/data-platform/fetchxml/aggregate-data#limitations
    """

    code = "0x8004e023"

    def __init__(self) -> None:
        super().__init__("AggregateQueryRecordLimit exceeded. Cannot perform this operation.")


class InvalidFetchXml(DataverseError):
    """FetchXML that is not well-formed XML or not a valid query (code 0x80040201 "Invalid XML."
    as observed; see the sandbox's fetchxml package docstring)."""

    code = "0x80040201"


class FetchXmlNoAttribute(DataverseError):
    """A FetchXML attribute the entity does not have (QueryBuilderNoAttribute, 0x80041103)."""

    code = "0x80041103"

    def __init__(self, name: str, logical_name: str) -> None:
        super().__init__(
            f"'{logical_name}' entity doesn't contain attribute with Name = '{name}' and "
            "NameMapping = 'Logical'."
        )


class UrlTooLong(DataverseError):
    """A request URL over Dataverse's limit: 32,768 characters, 65,536 for a request inside
    `$batch` (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/overview
    #url-length-limitations). Dataverse's front end answers 414 "HTTP Error 414. The request URL
    is too long." (observed: microsoft/vscode-copilotstudio#122); the sandbox words it in the
    usual error body, pointing at `$batch`."""

    status = 414
    code = ""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"HTTP Error 414. The request URL is too long ({length} characters; the limit is "
            f"{limit}). Send the query inside a $batch request, where the limit is 65,536."
        )
