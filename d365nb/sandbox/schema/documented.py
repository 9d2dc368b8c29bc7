"""Columns as Microsoft's table/column reference documents them.

`reference/<table>.json` holds what the reference page of a table says about each of its columns
(type, display name, required level, length, range, precision, format, options with their values
and labels, create/update validity, lookup targets and relationships), derived from the page's
Markdown source by `generate.py` (see `reference/README.md` for the source and its licence).
`columns(table)` turns that into `model.Column` objects; a table module in `tables/` adds only
what the pages do not say (computed names, the choice defaults the sandbox applies).

Rules applied here, the same for every table:
* a lookup keeps only the targets the sandbox ships (a module in `tables/`); a lookup left with
  none is not a column of the sandbox;
* Dataverse names the user/team one-to-many relationships after `owninguser`/`owningteam`, but
  records are assigned through `ownerid`: the sandbox gives those relationships to `ownerid` as
  well (one navigation property `ownerid` for both targets, as in Dataverse). The read-only
  `owninguser`/`owningteam` lookups (filled from `ownerid` by the store) keep them for their own
  navigation properties; the collection (`user_accounts`) and its metadata are `ownerid`'s, the
  first lookup carrying the name (`relations.collections`), so associating through it assigns.
"""

from __future__ import annotations

import functools
import json
import pkgutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .model import Column, Option, Relationship, Table

REFERENCE = Path(__file__).with_name("reference")
# A person's `fullname`, computed by the store as Dataverse's default full-name format does
# ("First Last"): the override contact, lead and systemuser share.
FULL_NAME = {"fullname": {"computed_from": ("firstname", "lastname")}}
# The address composites (`address1_composite`, `address2_composite`): the address's non-empty
# parts, one a line ("Shows the complete primary address."; the Web API returns them joined by
# CRLF). Dataverse orders city/state/postal code by the user's locale; the sandbox keeps the
# parts' order, which is the US layout line by line.
ADDRESS_PARTS = ("line1", "line2", "line3", "city", "stateorprovince", "postalcode", "country")
ADDRESS_COMPOSITES = {
    f"address{n}_composite": {
        "computed_from": tuple(f"address{n}_{part}" for part in ADDRESS_PARTS),
        "computed_separator": "\r\n",
    }
    for n in (1, 2)
}
# Column types `model.Column` represents (the pages also list Image, EntityName, Virtual,
# PartyList, ManagedProperty and File columns: generate.py leaves those out).
TYPES = frozenset(
    {
        "String",
        "Memo",
        "Integer",
        "BigInt",
        "Decimal",
        "Double",
        "Money",
        "Boolean",
        "DateTime",
        "Picklist",
        "State",
        "Status",
        "Lookup",
        "Customer",
        "Owner",
        "Uniqueidentifier",
    }
)


@functools.cache
def page(table: str) -> dict[str, Any]:
    """The stored reference data of one table (`reference/<table>.json`)."""
    with (REFERENCE / f"{table}.json").open(encoding="utf-8") as fh:
        return json.load(fh)


@functools.cache
def shipped_tables() -> frozenset[str]:
    """Logical names of the tables the sandbox ships (one module each in `tables/`)."""
    from . import tables

    return frozenset(i.name for i in pkgutil.iter_modules(tables.__path__) if i.name[0] != "_")


def columns(
    table: str, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Column]:
    """The documented columns of `table`, in page order, with `overrides` (field values of
    `model.Column` by column name) applied."""
    data = page(table)
    shipped = shipped_tables()
    out: dict[str, Column] = {}
    for name, spec in data["columns"].items():
        column = _column(name, spec, shipped)
        if column is not None:
            out[name] = column
    _owner_relationships(out)
    state, status = out.get("statecode"), out.get("statuscode")
    if state is not None and status is not None and state.options:
        out["statuscode"] = replace(status, default=state.options[0].default_status)
    for name, fields in (overrides or {}).items():
        out[name] = replace(out[name], **fields)
    return out


def table(
    name: str,
    *,
    object_type_code: int,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    **settings: Any,
) -> Table:
    """A `Table` made of what the page documents (entity set, keys, names, ownership, columns)
    plus the sandbox `settings` (`duplicate_rules`, `is_activity`, ...)."""
    props = dict(page(name)["table"])
    return Table(
        logical_name=props["logical_name"],
        entity_set=props["entity_set"],
        primary_id=props["primary_id"],
        primary_name=props["primary_name"],
        display=props["display"],
        display_collection=props["display_collection"],
        object_type_code=object_type_code,
        columns=columns(name, overrides),
        ownership=props.get("ownership", "UserOwned"),
        description=props.get("description", ""),
        schema_name=props.get("schema_name"),
        **settings,
    )


def _column(name: str, spec: Mapping[str, Any], shipped: frozenset[str]) -> Column | None:
    kind = spec["type"]
    if kind not in TYPES:
        raise ValueError(f"reference column {name} has unsupported type {kind!r}")
    read_only = bool(spec.get("read_only", False))
    relationships: tuple[Relationship, ...] = ()
    if kind in ("Lookup", "Customer", "Owner"):
        rels = []
        for target, rel in spec.get("rel", {}).items():
            if target not in shipped:
                continue
            schema_name, navigation = (rel, name) if isinstance(rel, str) else rel
            rels.append(Relationship(schema_name=schema_name, target=target, navigation=navigation))
        if not rels and name not in ("owninguser", "owningteam", "ownerid"):
            return None
        relationships = tuple(rels)
    return Column(
        name,
        kind,
        spec.get("display", ""),
        required=spec.get("required", "None"),
        description=spec.get("description", ""),
        max_length=spec.get("max_length"),
        min_value=spec.get("min"),
        max_value=spec.get("max"),
        precision=spec.get("precision"),
        date_behavior=spec.get("behavior") if kind == "DateTime" else None,
        date_format=spec.get("format") if kind == "DateTime" else None,
        format=spec.get("format") if kind in ("String", "Memo") else None,
        options=_options(kind, spec.get("options", ())),
        default=_default(kind, spec),
        relationships=relationships,
        read_only=read_only,
        valid_for_create=not read_only and spec.get("create", True),
        valid_for_update=not read_only and spec.get("update", True),
        schema_name=spec.get("schema"),
    )


def _options(kind: str, raw: Any) -> tuple[Option, ...]:
    if kind == "State":  # [value, label, default status]
        return tuple(Option(v, label, default_status=d) for v, label, d in raw)
    if kind == "Status":  # [value, label, state]
        return tuple(Option(v, label, state=s) for v, label, s in raw)
    if kind == "Boolean":  # No (0) first, as the model's boolean columns keep them
        return tuple(Option(v, label) for v, label in sorted(raw))
    return tuple(Option(v, label) for v, label in raw)


def _default(kind: str, spec: Mapping[str, Any]) -> Any:
    if kind == "Boolean":
        return int(spec.get("default", 0))
    if kind == "State":  # a new record starts in the first state
        return spec["options"][0][0]
    if kind == "Status":  # ... with that state's default status
        return None
    return spec.get("default")


def _owner_relationships(cols: dict[str, Column]) -> None:
    """Give `ownerid` the owning user/team relationships too (see the module docstring)."""
    owner = cols.get("ownerid")
    if owner is None or owner.type != "Owner":
        return
    rels = []
    for name in ("owninguser", "owningteam"):
        column = cols.get(name)
        if column is not None:
            rels += [replace(r, navigation="ownerid") for r in column.relationships]
    if rels:
        cols["ownerid"] = replace(owner, relationships=tuple(rels))
