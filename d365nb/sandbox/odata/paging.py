"""Keyset `$skiptoken`s in Dataverse's paging-cookie clothing.

A page ends at a row; the next page starts strictly after that row's order-key values and primary
key, so rows inserted or deleted between two requests neither shift nor repeat the rows that
follow (offset paging would). The token looks like Dataverse's:

    <cookie pagenumber="2" pagingcookie="%3ccookie%20page%3d%221%22%3e...%3c%2fcookie%3e" istracking="False" />

(`next_skiptoken` is that text; the app URL-encodes it once more into `@odata.nextLink`). Inside
the paging cookie the key values travel base64-encoded with an HMAC, so a token is opaque and a
changed or foreign one is refused with a clean 400 instead of returning wrong rows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from .errors import ODataError

# Fixed key: tokens stay valid across restarts of a persistent (--db) sandbox. The HMAC is
# there to catch edited or mixed-up tokens, not to keep secrets (the keys are the row values).
_KEY = b"d365nb.sandbox.paging.v1"
_OUTER = re.compile(
    r'<cookie pagenumber="(\d+)" pagingcookie="([^"]*)" istracking="(?:True|False)" ?/>'
)
_KEYSET = re.compile(r'<keyset v="([A-Za-z0-9_\-=]+)" s="([0-9a-f]{64})" ?/>')

INVALID = "The $skiptoken value is not valid for this query; request the first page again."


@dataclass(frozen=True, slots=True)
class Position:
    """Where the previous page stopped: its number, the order-key values and primary key."""

    page: int
    values: list[Any]
    last_id: str


def _sign(scope: str, page: int, payload: str) -> str:
    message = f"{scope}|{page}|{payload}".encode()
    return hmac.new(_KEY, message, hashlib.sha256).hexdigest()


def encode(scope: str, page: int, values: list[Any], pk: str, last_id: str, first_id: str) -> str:
    """The skiptoken for the page after page `page` (1-based) that ended at `last_id`.

    `scope` names what the values mean (table and order keys), so a token cannot be replayed
    against a different ordering.
    """
    payload = base64.urlsafe_b64encode(
        json.dumps([values, last_id], separators=(",", ":")).encode()
    ).decode()
    inner = (
        f'<cookie page="{page}"><{pk} last="{{{last_id.upper()}}}" first="{{{first_id.upper()}}}" />'
        f'<keyset v="{payload}" s="{_sign(scope, page, payload)}" /></cookie>'
    )
    # Dataverse writes the inner cookie's escapes in lower case (%3ccookie...).
    escaped = re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(inner, safe=""))
    return f'<cookie pagenumber="{page + 1}" pagingcookie="{escaped}" istracking="False" />'


def decode(token: str, scope: str) -> Position:
    """Read and check a skiptoken made by `encode` for the same `scope`; ODataError if not."""
    outer = _OUTER.fullmatch(token.strip())
    if outer is None:
        raise ODataError(INVALID)
    inner = unquote(outer.group(2))
    found = _KEYSET.search(inner)
    page_match = re.match(r'<cookie page="(\d+)"', inner)
    if found is None or page_match is None:
        raise ODataError(INVALID)
    page = int(page_match.group(1))
    payload, signature = found.groups()
    if int(outer.group(1)) != page + 1 or not hmac.compare_digest(
        signature, _sign(scope, page, payload)
    ):
        raise ODataError(INVALID)
    try:
        values, last_id = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except (ValueError, TypeError):
        raise ODataError(INVALID) from None
    return Position(page, values, last_id)
