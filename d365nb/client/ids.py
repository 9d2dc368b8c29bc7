"""Record ids: the one place a GUID typed, pasted or computed by a user becomes the id we send.

Accepted (and normalised to lowercase ``xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx``):

* a ``uuid.UUID``; a GUID string in any case, with or without ``{}`` braces or their
  URL-encoded form ``%7b...%7d``, with surrounding whitespace or newlines (a value copied from a
  grid or a file) - never sent as a new, unaddressable id;
* a pasted record URL: the app's ``.../main.aspx?...&etn=lead&id=<guid>`` or a Web API URL
  ``.../api/data/v9.2/leads(<guid>)``. When the caller says which table it expects, a URL of
  another table is refused (a lead's link pasted into a task update is a mistake, not an id).

Anything else raises a one-line :class:`ValidationError` naming the argument.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from d365nb.client.errors import ValidationError

__all__ = ["normalize_id", "parse_record_ref", "EXAMPLE_ID"]

EXAMPLE_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_BRACED = re.compile(r"\{(.*)\}", re.S)
# ``leads(<key>)`` at the end of a Web API path (the key may be braced or encoded).
_SEGMENT = re.compile(r"/?([A-Za-z_][A-Za-z0-9_]*)\(([^()]*)\)$")


def _bare(text: str) -> str | None:
    """The lowercase GUID in ``text`` (whitespace, braces, %7b/%7d allowed), else None."""
    text = text.strip()
    if "%" in text:
        text = unquote(text).strip()
    match = _BRACED.fullmatch(text)
    if match:
        text = match.group(1).strip()
    return text.lower() if _GUID.fullmatch(text) else None


def parse_record_ref(text: str) -> tuple[str | None, str | None]:
    """``(table name or None, id text)`` of a record URL, ``entityset(<id>)`` or bare id.

    The table is the ``etn`` of an app URL (a logical name) or the entity set of a Web API
    path; the id is not validated here (see :func:`normalize_id`).
    """
    text = text.strip()
    if "://" in text:
        parts = urlsplit(text)
        for query in (parts.query, parts.fragment.partition("?")[2] or parts.fragment):
            found = parse_qs(query)
            if "id" in found:
                etn = found.get("etn", [None])[0]
                return etn, found["id"][0]
        path = unquote(parts.path).rstrip("/")
        match = _SEGMENT.search(path)
        if match and "/api/data/" in path:
            return match.group(1), match.group(2)
        return None, text
    match = _SEGMENT.fullmatch(text)
    if match:
        return match.group(1), match.group(2)
    return None, text


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def normalize_id(value: Any, *, what: str = "id", table: tuple[str, ...] = ()) -> str:
    """A record id as lowercase GUID text, or a one-line :class:`ValidationError`.

    ``what`` names the argument in the message (``"lead id"``); ``table`` holds the names
    (logical and entity set) a pasted URL may name - a URL of another table is refused.
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        named, key = parse_record_ref(value) if ("://" in value or "(" in value) else (None, value)
        bare = _bare(key) if key is not None else None
        if bare is not None:
            if named and table and named.lower() not in {t.lower() for t in table}:
                raise ValidationError(
                    f"{what}: the pasted link is a {named} record, not {table[0]}; "
                    "give an id of this table"
                )
            return bare
    raise ValidationError(f"{what} {_shown(value)} is not a GUID; expected e.g. '{EXAMPLE_ID}'")
