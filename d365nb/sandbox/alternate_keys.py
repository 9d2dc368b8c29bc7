"""Addressing records by alternate key: `accounts(accountnumber='ABC')`,
`contacts(firstname='Joe',emailaddress1='abc@example.com')`, in URLs and in `@odata.bind`.

The keys themselves (`EntityKeyMetadata`) are made through `POST EntityDefinitions(...)/Keys`
(`metadata.writes`) and kept by the store, which backs each with a unique index. Here: parsing a
key segment, checking it names exactly the columns of one defined key, and finding the record.
See https://learn.microsoft.com/power-apps/developer/data-platform/webapi/retrieve-entity-using-web-api#retrieve-using-an-alternate-key
"""

from __future__ import annotations

import re
from typing import Any

from . import errors
from .schema.model import AlternateKey, Table
from .store import Store
from .values import convert, is_guid

# name=value pairs: 'text' (quotes doubled inside), a number, true/false or a GUID.
_PAIR_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^']|'')*'|[^,']+?)\s*(?:,|$)")


class KeyNotFound(errors.DataverseError):
    """No record has the values of an alternate key (Dataverse: 404, code 0x80040217)."""

    status = 404
    code = "0x80040217"

    def __init__(self, table: str):
        super().__init__(f"A record with the specified key values does not exist in {table} entity")


class DuplicateKey(errors.DataverseError):
    """A write would give two records the same values of an alternate key (Dataverse's
    DuplicateRecordEntityKey, 0x80060892; 412 like the other duplicate-key refusal)."""

    status = 412
    code = "0x80060892"

    def __init__(self, key: AlternateKey):
        names = ", ".join(key.attributes)
        super().__init__(
            f"A record that has the attribute values {names} already exists. The entity key "
            f"{key.schema_name} requires that this set of attributes contains unique values. "
            "Select unique values and try again."
        )


def is_alternate(text: str) -> bool:
    """Whether a key segment names columns (`name='x'`) rather than being a GUID."""
    return "=" in text


def parse(table: Table, text: str) -> dict[str, Any]:
    """`accountnumber='ABC',name='x'` -> {column: JSON value}, in the order written."""
    pairs: dict[str, Any] = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _PAIR_RE.match(text, pos)
        if match is None or match.end() == pos:
            raise errors.QueryError("Bad Request - Error in query syntax.")
        name, raw = match.group(1), match.group(2).strip()
        column = table.find(name)  # a lookup key column is named `_x_value`, as when read
        name = column.name if column is not None else name
        if name in pairs:
            raise errors.QueryError(f"The key property '{name}' is given twice.")
        pairs[name] = _literal(raw)
        pos = match.end()
    if not pairs:
        raise errors.QueryError("Bad Request - Error in query syntax.")
    return pairs


def _literal(raw: str) -> Any:
    if raw.startswith("'"):
        return raw[1:-1].replace("''", "'")
    if raw in ("true", "false"):
        return raw == "true"
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw  # a GUID (a lookup's value); `convert` checks it


def key_for(store: Store, table: Table, names: set[str]) -> AlternateKey:
    """The defined alternate key made of exactly `names`, else a 400."""
    for key in store.alternate_keys(table.logical_name):
        if set(key.attributes) == names:
            return key
    raise errors.BadRequest(
        f"The key attributes ({', '.join(sorted(names))}) do not match an alternate key defined "
        f"for the {table.logical_name} entity."
    )


def storage_values(store: Store, table: Table, text: str) -> dict[str, Any]:
    """A key segment -> {column: storage value}, checked against a defined key."""
    given = parse(table, text)
    key_for(store, table, set(given))
    out: dict[str, Any] = {}
    for name, value in given.items():
        column = table.columns[name]
        if column.is_lookup:  # lookups are stored as lowercase GUID text
            text = str(value).strip("{}")
            if not is_guid(text):
                raise errors.QueryError("Bad Request - Error in query syntax.")
            out[name] = text.lower()
        else:
            out[name] = convert(table, column, value)
    return out


def find(store: Store, table: Table, text: str) -> tuple[str | None, dict[str, Any]]:
    """(id of the record the key segment names or None, the key's values as a create body
    would give them: JSON values by column, `<nav>@odata.bind` for a lookup)."""
    values = storage_values(store, table, text)
    ids = store.find_by_values(table.logical_name, values)
    body: dict[str, Any] = {}
    for name, value in parse(table, text).items():
        column = table.columns[name]
        if column.is_lookup and len(column.relationships) == 1:
            rel = column.relationships[0]
            target = store.schema[rel.target].entity_set
            body[f"{rel.navigation}@odata.bind"] = f"/{target}({values[name]})"
        else:
            body[name] = value
    return (ids[0] if ids else None), body


def check_unique(store: Store, table: Table, row: dict[str, Any], id: str) -> None:
    """Refuse a row (storage form, complete) that shares an alternate key's values with another
    record. Keys with an empty column are not checked (as a SQL unique index ignores NULLs)."""
    for key in store.alternate_keys(table.logical_name):
        values = {c: row.get(c) for c in key.attributes}
        if any(v is None for v in values.values()):
            continue
        if any(other != id for other in store.find_by_values(table.logical_name, values)):
            raise DuplicateKey(key)


def check_distinct(store: Store, table: Table, rows: list[dict[str, Any]]) -> None:
    """Refuse a batch of new rows in which two share an alternate key's values."""
    for key in store.alternate_keys(table.logical_name):
        seen: set[tuple] = set()
        for row in rows:
            values = tuple(_fold(row.get(c)) for c in key.attributes)
            if any(v is None for v in values):
                continue
            if values in seen:
                raise DuplicateKey(key)
            seen.add(values)


def _fold(value: Any) -> Any:
    # text keys compare case-insensitively, like the columns they index
    return value.casefold() if isinstance(value, str) else value
