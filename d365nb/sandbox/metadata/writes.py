"""Metadata writes and the metadata the organisation makes at run time: alternate keys
(`EntityKeyMetadata`) under `EntityDefinitions(...)/Keys`.

    GET  EntityDefinitions(LogicalName='account')/Keys[(LogicalName='x') | (<MetadataId>)]
    POST EntityDefinitions(LogicalName='account')/Keys   {SchemaName, DisplayName, KeyAttributes}

Keys are kept by the organisation's store (not the shared catalog), each backed by a unique
index. Dataverse builds the index in a background job; the sandbox builds it at once, so a new
key is `Active` when the POST answers (and the POST fails when rows already share values).
See https://learn.microsoft.com/power-apps/developer/data-platform/define-alternate-keys-entity
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import replace
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..errors import BadRequest, ResourceNotFound
from ..schema.model import AlternateKey, Column, Option, Relationship, Table
from ..service import Service
from . import custom_schema
from .labels import label, metadata_id
from .paths import not_found, parse_key
from .query import MetadataError
from .responses import api_root, collection, headers, single

# Column types an alternate key may use (define-alternate-keys-entity: "Valid columns").
_KEY_TYPES = frozenset({"Decimal", "Integer", "String", "DateTime", "Lookup", "Picklist"})
_MAX_KEYS = 10  # "up to ten alternate key definitions for a table"
_MAX_KEY_COLUMNS = 16
_SCHEMA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def key_metadata(table: Table, key: AlternateKey) -> dict[str, Any]:
    """An `EntityKeyMetadata` object as Dataverse returns it."""
    ident = metadata_id("key", table.logical_name, key.logical_name)
    return {
        "MetadataId": ident,
        "HasChanged": None,
        "LogicalName": key.logical_name,
        "SchemaName": key.schema_name,
        "EntityLogicalName": table.logical_name,
        "DisplayName": label(key.display, "key", table.logical_name, key.logical_name),
        "KeyAttributes": list(key.attributes),
        "EntityKeyIndexStatus": "Active",
        "AsyncJob": None,
        "IsManaged": False,
        "IsCustomizable": {
            "Value": True,
            "CanBeChanged": True,
            "ManagedPropertyLogicalName": "iscustomizable",
        },
        "IsSecondaryKey": False,
        "IsExportKey": False,
        "IsSynchronous": True,
        "IntroducedVersion": "1.0",
    }


KEY_PROPERTIES = frozenset(
    key_metadata(Table("x", "xs", "xid", "name", "X", "Xs", 0), AlternateKey("x", "k", "K", ("a",)))
)


def list_keys(
    request: Request, table: Table, ref: str, key_text: str | None, rest: list
) -> Response:
    """`GET EntityDefinitions(...)/Keys` and `.../Keys(LogicalName='x')`."""
    if rest:
        raise ResourceNotFound(rest[0][0])
    store = request.app.state.org.store
    items = [key_metadata(table, k) for k in store.alternate_keys(table.logical_name)]
    path = f"EntityDefinitions({ref})/Keys"
    if key_text is None:
        return collection(request, path, None, items)
    prop, value = parse_key(key_text, "LogicalName")
    for item in items:
        if item[prop] == value:
            return single(request, path, None, item)
    raise not_found(f"key '{value}' of entity '{table.logical_name}'")


async def create_key(request: Request, table: Table, ref: str) -> Response:
    """`POST EntityDefinitions(...)/Keys`: 204 with `OData-EntityId` of the new key."""
    org = request.app.state.org
    body = _json_object(await request.body())
    schema_name = body.get("SchemaName")
    if not isinstance(schema_name, str) or not _SCHEMA_NAME.match(schema_name):
        raise _invalid("SchemaName is required: a name of letters, digits and '_'.")
    attributes = body.get("KeyAttributes")
    if (
        not isinstance(attributes, list)
        or not attributes
        or not all(isinstance(a, str) for a in attributes)
    ):
        raise _invalid("KeyAttributes is required: a non-empty array of column logical names.")
    if len(set(attributes)) != len(attributes) or len(attributes) > _MAX_KEY_COLUMNS:
        raise _invalid(f"KeyAttributes must name distinct columns, at most {_MAX_KEY_COLUMNS}.")
    for name in attributes:
        column = table.columns.get(name)
        if column is None:
            raise _invalid(
                f"The attribute '{name}' does not exist on entity '{table.logical_name}'."
            )
        if column.type not in _KEY_TYPES or name == table.primary_id:
            raise _invalid(
                f"The attribute '{name}' of type {column.type} cannot be part of an entity key."
            )
    display = _label_text(body.get("DisplayName")) or schema_name
    key = AlternateKey(table.logical_name, schema_name, display, tuple(attributes))
    existing = org.store.alternate_keys(table.logical_name)
    if any(k.logical_name == key.logical_name for k in existing):
        raise _invalid(
            f"An entity key with the name {schema_name} already exists.", code="0x80047013"
        )
    if any(set(k.attributes) == set(key.attributes) for k in existing):
        raise _invalid("An entity key with the same set of attributes already exists.")
    if len(existing) >= _MAX_KEYS:
        raise _invalid(f"An entity can have at most {_MAX_KEYS} keys.")
    async with org.writing(request.scope):
        try:
            await org.off_loop(org.store.add_alternate_key, key)
        except sqlite3.IntegrityError:
            raise _invalid(
                f"The index for entity key {schema_name} cannot be created: records of "
                f"{table.logical_name} already share values of {', '.join(attributes)}.",
                code="0x80060892",
            ) from None
    ident = key_metadata(table, key)["MetadataId"]
    location = f"{api_root(request)}EntityDefinitions({ref})/Keys({ident})"
    return Response(status_code=204, headers={**headers(), "OData-EntityId": location})


async def delete_key(request: Request, table: Table, key_text: str) -> Response:
    """`DELETE EntityDefinitions(...)/Keys(LogicalName='x' | <MetadataId>)`: 204; the
    records keep their values, which need not be unique any more."""
    org = request.app.state.org
    prop, value = parse_key(key_text, "LogicalName")
    async with org.writing(request.scope):
        for key in org.store.alternate_keys(table.logical_name):
            if key_metadata(table, key)[prop] == value:
                await org.off_loop(org.store.remove_alternate_key, key)
                return Response(status_code=204, headers=headers())
    raise not_found(f"key '{value}' of entity '{table.logical_name}'")


def _json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise BadRequest("The request body is empty: send the definition as a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def _label_text(value: Any) -> str | None:
    """The en-US text of a `Label` body value (`{"LocalizedLabels": [{"Label": ...}]}`)."""
    if isinstance(value, dict):
        labels = value.get("LocalizedLabels")
        if isinstance(labels, list):
            for item in labels:
                if isinstance(item, dict) and isinstance(item.get("Label"), str):
                    return item["Label"]
    return None


def _invalid(message: str, code: str = "0x80044331") -> MetadataError:
    return MetadataError(400, code, message)


# -- custom tables and columns ------------------------------------------------------------------
#
# POST EntityDefinitions                       a custom table with its primary name column
# POST EntityDefinitions(...)/Attributes       a column of a supported type
#
# The organisation's schema is replaced by a new dict holding the new or changed `Table` (the
# shipped `Table` objects are shared by every sandbox of the process and never mutated), so
# every cache keyed by the schema object (catalog, `$metadata`, navigations) is rebuilt.
# See https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-update-entity-definitions-using-web-api
# and .../webapi/create-update-column-definitions-using-web-api

# A custom name has a customization prefix: `new_BankAccount` (publisher prefix, then "_").
_CUSTOM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,7}_[A-Za-z0-9_]+$")
_FIRST_CUSTOM_TYPE_CODE = 10000  # custom tables get object type codes from 10000 up
_DEFAULT_OPTION_VALUE = 100000000  # the default publisher's option value prefix (10000)

# `@odata.type` of an attribute body -> AttributeType the sandbox keeps.
_ATTRIBUTE_TYPES = {
    "StringAttributeMetadata": "String",
    "MemoAttributeMetadata": "Memo",
    "IntegerAttributeMetadata": "Integer",
    "BigIntAttributeMetadata": "BigInt",
    "DecimalAttributeMetadata": "Decimal",
    "DoubleAttributeMetadata": "Double",
    "MoneyAttributeMetadata": "Money",
    "BooleanAttributeMetadata": "Boolean",
    "DateTimeAttributeMetadata": "DateTime",
    "PicklistAttributeMetadata": "Picklist",
    "MultiSelectPicklistAttributeMetadata": "MultiSelectPicklist",
}
_NS = "Microsoft.Dynamics.CRM."
# Limits Dataverse applies when a body leaves them out.
_NUMBER_DEFAULTS = {
    "Integer": (-2147483648, 2147483647, None),
    "BigInt": (-9223372036854775808, 9223372036854775807, None),
    "Decimal": (-100000000000, 100000000000, 2),
    "Double": (-100000000000, 100000000000, 2),
    "Money": (-922337203685477, 922337203685477, 2),
}


async def create_entity(request: Request) -> Response:
    """`POST EntityDefinitions`: 204 with `OData-EntityId: .../EntityDefinitions(<MetadataId>)`."""
    org = request.app.state.org
    body = _json_object(await request.body())
    schema_name = body.get("SchemaName")
    if not isinstance(schema_name, str) or not _CUSTOM_NAME.match(schema_name):
        raise _invalid(
            "SchemaName is required and must start with a customization prefix, "
            "e.g. 'new_BankAccount'."
        )
    logical = schema_name.lower()
    ownership = body.get("OwnershipType", "UserOwned")
    if ownership not in ("UserOwned", "OrganizationOwned"):
        raise _invalid("OwnershipType must be UserOwned or OrganizationOwned.")
    if body.get("IsActivity"):
        raise _invalid("The sandbox does not create activity tables (IsActivity must be false).")
    display = _label_text(body.get("DisplayName"))
    plural = _label_text(body.get("DisplayCollectionName"))
    if not display or not plural:
        raise _invalid("DisplayName and DisplayCollectionName are required labels.")
    attributes = body.get("Attributes")
    if not isinstance(attributes, list) or not all(isinstance(a, dict) for a in attributes):
        raise _invalid("Attributes must be an array holding the primary name attribute.")
    primary = [a for a in attributes if a.get("IsPrimaryName") is True]
    if len(primary) != 1 or len(attributes) != 1:
        raise _invalid(
            "Attributes must hold exactly one StringAttributeMetadata with IsPrimaryName true."
        )
    entity_set = body.get("EntitySetName") or plural_of(logical)
    if not isinstance(entity_set, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", entity_set):
        raise _invalid("EntitySetName must be a name of letters, digits and '_'.")
    async with org.writing(request.scope):
        schema = org.schema
        if logical in schema:
            raise _invalid(f"An entity with the name {schema_name} already exists.", "0x80047013")
        if any(t.entity_set == entity_set for t in schema.values()):
            raise _invalid(f"The entity set name {entity_set} is already in use.", "0x80047013")
        name_column = column_from_body(logical, primary[0], existing=())
        if name_column.type != "String":
            raise _invalid("The primary name attribute must be a StringAttributeMetadata.")
        codes = [t.object_type_code for t in schema.values()]
        table = Table(
            logical_name=logical,
            entity_set=entity_set,
            primary_id=f"{logical}id",
            primary_name=name_column.name,
            display=display,
            display_collection=plural,
            object_type_code=max([_FIRST_CUSTOM_TYPE_CODE - 1, *codes]) + 1,
            columns=standard_columns(logical, schema_name, display, ownership, schema),
            ownership=ownership,
            description=_label_text(body.get("Description")) or "",
            schema_name=schema_name,
            custom=True,
        )
        table.columns[name_column.name] = name_column
        new_schema = {**schema, logical: table}
        await org.off_loop(org.store.add_table, new_schema, logical)
        _publish(org, new_schema)
    location = f"{api_root(request)}EntityDefinitions({metadata_id('entity', logical)})"
    return Response(status_code=204, headers={**headers(), "OData-EntityId": location})


async def create_attribute(request: Request, table: Table, ref: str) -> Response:
    """`POST EntityDefinitions(...)/Attributes`: 204 with the new attribute's `OData-EntityId`."""
    org = request.app.state.org
    body = _json_object(await request.body())
    async with org.writing(request.scope):
        current = org.schema[table.logical_name]
        column = column_from_body(current.logical_name, body, existing=current.columns)
        added = [column]
        if column.type == "Money":
            added += _currency_columns(current, column, org.schema)
        new_table = replace(current, columns={**current.columns})
        new_schema = {**org.schema, current.logical_name: new_table}
        for extra in added:
            new_table.columns[extra.name] = extra
            await org.off_loop(org.store.add_column, new_schema, current.logical_name, extra)
        _publish(org, new_schema)
    ident = metadata_id("attribute", current.logical_name, column.name)
    location = f"{api_root(request)}EntityDefinitions({ref})/Attributes({ident})"
    return Response(status_code=204, headers={**headers(), "OData-EntityId": location})


def plural_of(logical: str) -> str:
    """The entity set name Dataverse derives from a logical name: its English plural
    (`new_bankaccount` -> `new_bankaccounts`, `new_category` -> `new_categories`)."""
    if logical.endswith(("s", "x", "z", "ch", "sh")):
        return logical + "es"
    if logical.endswith("y") and logical[-2:-1] not in ("a", "e", "i", "o", "u"):
        return logical[:-1] + "ies"
    return logical + "s"


def column_from_body(table: str, body: dict[str, Any], existing: Any) -> Column:
    """A `Column` from an AttributeMetadata body (400 for anything the sandbox cannot hold)."""
    odata_type = str(body.get("@odata.type", "")).lstrip("#")
    kind = _ATTRIBUTE_TYPES.get(odata_type.removeprefix(_NS))
    if kind is None:
        named = body.get("AttributeTypeName")
        type_name = named.get("Value") if isinstance(named, dict) else None
        kind = {v: v for v in _ATTRIBUTE_TYPES.values()}.get(
            str(type_name or "").removesuffix("Type")
        )
    if kind is None:
        raise _invalid(
            "Set @odata.type to one of: " + ", ".join(f"{_NS}{t}" for t in _ATTRIBUTE_TYPES) + "."
        )
    schema_name = body.get("SchemaName")
    if not isinstance(schema_name, str) or not _CUSTOM_NAME.match(schema_name):
        raise _invalid(
            "SchemaName is required and must start with a customization prefix, e.g. 'new_Balance'."
        )
    name = schema_name.lower()
    if name in existing:
        raise _invalid(
            f"An attribute with the name {name} already exists on entity {table}.", "0x80047013"
        )
    display = _label_text(body.get("DisplayName"))
    if not display:
        raise _invalid("DisplayName is a required label.")
    required = body.get("RequiredLevel", {"Value": "None"})
    level = required.get("Value") if isinstance(required, dict) else None
    if level not in ("None", "Recommended", "ApplicationRequired"):
        raise _invalid("RequiredLevel.Value must be None, Recommended or ApplicationRequired.")
    fields: dict[str, Any] = {
        "required": level,
        "description": _label_text(body.get("Description")) or "",
        "schema_name": schema_name,
        "custom": True,
    }
    if kind in ("String", "Memo"):
        default_length = 100 if kind == "String" else 2000
        fields["max_length"] = _int(body, "MaxLength", default_length, 1, 1048576)
        fmt = body.get("FormatName") or body.get("Format")
        fmt = fmt.get("Value") if isinstance(fmt, dict) else fmt
        fields["format"] = fmt or ("Text" if kind == "String" else "TextArea")
    elif kind in _NUMBER_DEFAULTS:
        low, high, precision = _NUMBER_DEFAULTS[kind]
        fields["min_value"] = _number(body, "MinValue", low, low, high)
        fields["max_value"] = _number(body, "MaxValue", high, low, high)
        if fields["min_value"] > fields["max_value"]:
            raise _invalid("MinValue must not be greater than MaxValue.")
        if precision is not None:
            fields["precision"] = _int(body, "Precision", precision, 0, 10)
    elif kind == "DateTime":
        behavior = body.get("DateTimeBehavior", {"Value": "UserLocal"})
        behavior = behavior.get("Value") if isinstance(behavior, dict) else behavior
        if behavior not in ("UserLocal", "DateOnly", "TimeZoneIndependent"):
            raise _invalid("DateTimeBehavior must be UserLocal, DateOnly or TimeZoneIndependent.")
        fmt = body.get("Format") or ("DateOnly" if behavior == "DateOnly" else "DateAndTime")
        if fmt not in ("DateOnly", "DateAndTime"):
            raise _invalid("Format must be DateOnly or DateAndTime.")
        fields["date_behavior"], fields["date_format"] = behavior, fmt
    elif kind == "Boolean":
        fields["options"] = _boolean_options(body.get("OptionSet"))
        default = body.get("DefaultValue", False)
        if not isinstance(default, bool):
            raise _invalid("DefaultValue of a Boolean attribute must be true or false.")
        fields["default"] = int(default)
    elif kind in ("Picklist", "MultiSelectPicklist"):
        fields["options"] = _options(body.get("OptionSet"))
        default = body.get("DefaultFormValue")
        chosen = isinstance(default, int) and default != -1
        if kind == "Picklist" and chosen and default not in {o.value for o in fields["options"]}:
            raise _invalid("DefaultFormValue must be one of the options.")
    return Column(name, kind, display, **fields)


def standard_columns(
    logical: str, schema_name: str, display: str, ownership: str, schema: dict[str, Table]
) -> dict[str, Column]:
    """The columns every custom table gets: its key, audit columns, owner, state and status,
    version number (as the create-entity doc's example table shows them)."""

    def lookup(name: str, label_text: str, target: str, relationship: str) -> Column:
        return Column(
            name,
            "Lookup",
            label_text,
            relationships=(Relationship(relationship, target, name),),
            read_only=True,
            valid_for_create=False,
            valid_for_update=False,
        )

    def audit_time(name: str, label_text: str) -> Column:
        return Column(
            name,
            "DateTime",
            label_text,
            date_behavior="UserLocal",
            date_format="DateAndTime",
            read_only=True,
            valid_for_create=False,
            valid_for_update=False,
        )

    key = Column(
        f"{logical}id",
        "Uniqueidentifier",
        display,
        required="SystemRequired",
        valid_for_update=False,
        schema_name=f"{schema_name}Id",
    )
    cols = [
        key,
        audit_time("createdon", "Created On"),
        audit_time("modifiedon", "Modified On"),
    ]
    if "systemuser" in schema:
        cols += [
            lookup("createdby", "Created By", "systemuser", f"lk_{logical}_createdby"),
            lookup("modifiedby", "Modified By", "systemuser", f"lk_{logical}_modifiedby"),
        ]
    if ownership == "UserOwned" and "systemuser" in schema:
        targets = [Relationship(f"user_{logical}", "systemuser", "ownerid")]
        if "team" in schema:
            targets.append(Relationship(f"team_{logical}", "team", "ownerid"))
        cols.append(
            Column(
                "ownerid", "Owner", "Owner", required="SystemRequired", relationships=tuple(targets)
            )
        )
        if "businessunit" in schema:
            cols.append(
                lookup(
                    "owningbusinessunit",
                    "Owning Business Unit",
                    "businessunit",
                    f"business_unit_{logical}",
                )
            )
    cols += [
        Column(
            "statecode",
            "State",
            "Status",
            required="SystemRequired",
            options=(
                Option(0, "Active", default_status=1),
                Option(1, "Inactive", default_status=2),
            ),
            default=0,
            valid_for_create=False,
        ),
        Column(
            "statuscode",
            "Status",
            "Status Reason",
            options=(Option(1, "Active", state=0), Option(2, "Inactive", state=1)),
            default=1,
        ),
        Column(
            "versionnumber",
            "BigInt",
            "Version Number",
            min_value=-9223372036854775808,
            max_value=9223372036854775807,
            read_only=True,
            valid_for_create=False,
            valid_for_update=False,
        ),
    ]
    return {c.name: c for c in cols}


def _currency_columns(table: Table, money: Column, schema: dict[str, Table]) -> list[Column]:
    """What Dataverse adds with a table's first Money column (the transaction currency and
    exchange rate) and with every Money column (its `<name>_base` value in base currency)."""
    out: list[Column] = []
    if "transactioncurrencyid" not in table.columns and "transactioncurrency" in schema:
        out.append(
            Column(
                "transactioncurrencyid",
                "Lookup",
                "Currency",
                custom=True,
                relationships=(
                    Relationship(
                        f"TransactionCurrency_{table.logical_name}",
                        "transactioncurrency",
                        "transactioncurrencyid",
                    ),
                ),
            )
        )
        out.append(
            Column(
                "exchangerate",
                "Decimal",
                "Exchange Rate",
                custom=True,
                precision=10,
                min_value=0.0000000001,
                max_value=100000000000,
                read_only=True,
                valid_for_create=False,
                valid_for_update=False,
            )
        )
    out.append(
        replace(
            money,
            name=f"{money.name}_base",
            display=f"{money.display} (Base)",
            schema_name=f"{money.schema_name}_Base",
            required="None",
            precision=4,
            read_only=True,
            valid_for_create=False,
            valid_for_update=False,
        )
    )
    return out


def _publish(org: Any, schema: dict[str, Table]) -> None:
    """Serve `schema` from now on: the org's write service is rebuilt over it (reads take
    `org.schema` per request); the definitions are kept with the data (`custom_schema`)."""
    custom_schema.save(org.store, schema)
    org.schema = schema
    org.service = Service(schema, org.store, org.user_id)


def _options(value: Any) -> tuple[Option, ...]:
    """`OptionSet.Options` of a choice body: each a `Label` and a `Value` (assigned from the
    default publisher's prefix when left out)."""
    if not isinstance(value, dict) or not isinstance(value.get("Options"), list):
        raise _invalid("A choice attribute needs an OptionSet with Options.")
    if value.get("IsGlobal"):
        raise _invalid("The sandbox keeps option sets local: IsGlobal must be false.")
    out: list[Option] = []
    for i, item in enumerate(value["Options"]):
        text = _label_text(item.get("Label")) if isinstance(item, dict) else None
        if not text:
            raise _invalid("Every option needs a Label.")
        number = item.get("Value", _DEFAULT_OPTION_VALUE + i)
        if isinstance(number, bool) or not isinstance(number, int):
            raise _invalid("An option's Value must be an integer.")
        out.append(Option(number, text))
    if not out:
        raise _invalid("A choice attribute needs at least one option.")
    if len({o.value for o in out}) != len(out):
        raise _invalid("Option values must be distinct.")
    return tuple(out)


def _boolean_options(value: Any) -> tuple[Option, ...]:
    if value is None:
        return (Option(0, "No"), Option(1, "Yes"))
    if not isinstance(value, dict):
        raise _invalid("OptionSet of a Boolean attribute needs TrueOption and FalseOption.")
    texts = []
    for side, fallback in (("FalseOption", "No"), ("TrueOption", "Yes")):
        option = value.get(side)
        texts.append(_label_text(option.get("Label")) if isinstance(option, dict) else fallback)
    return (Option(0, texts[0] or "No"), Option(1, texts[1] or "Yes"))


def _int(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(f"{name} must be an integer from {low} to {high}.")
    return value


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _invalid(f"{name} must be a number from {low:g} to {high:g}.")
    return value
