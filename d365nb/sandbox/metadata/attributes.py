"""`AttributeMetadata` objects (what `EntityDefinitions(...)/Attributes` returns) and option sets.

Each AttributeType maps to one derived metadata type (`StringAttributeMetadata`, ...). Without
a type cast only the properties every `AttributeMetadata` has may be selected or filtered on -
as in Dataverse, the derived ones (`MaxLength`, `Targets`, `OptionSet`) need the cast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..schema.model import Column, Option, Table
from .labels import INTRODUCED_VERSION, label, managed, metadata_id, schema_name

NAMESPACE = "Microsoft.Dynamics.CRM"
BASE_TYPE = "AttributeMetadata"


@dataclass(frozen=True)
class AttributeKind:
    """How one AttributeType appears in metadata."""

    metadata_type: str  # derived EntityType name, e.g. "StringAttributeMetadata"
    type_name: str  # AttributeTypeName.Value, e.g. "StringType"
    properties: tuple[str, ...] = ()  # structural properties the derived type adds
    navigations: tuple[str, ...] = ()  # navigation properties (expandable)


_OPTION_NAVS = ("OptionSet", "GlobalOptionSet")
_NUMBER = ("MinValue", "MaxValue", "Format", "ImeMode", "SourceTypeMask", "FormulaDefinition")
_ENUM = (
    "DefaultFormValue",
    "FormulaDefinition",
    "SourceTypeMask",
    "ParentPicklistLogicalName",
    "ChildPicklistLogicalNames",
)

KINDS: dict[str, AttributeKind] = {
    "String": AttributeKind(
        "StringAttributeMetadata",
        "StringType",
        (
            "MaxLength",
            "DatabaseLength",
            "Format",
            "FormatName",
            "ImeMode",
            "IsLocalizable",
            "YomiOf",
            "FormulaDefinition",
            "SourceTypeMask",
        ),
    ),
    "Memo": AttributeKind(
        "MemoAttributeMetadata",
        "MemoType",
        ("MaxLength", "DatabaseLength", "Format", "FormatName", "ImeMode", "IsLocalizable"),
    ),
    "Integer": AttributeKind("IntegerAttributeMetadata", "IntegerType", _NUMBER),
    "BigInt": AttributeKind("BigIntAttributeMetadata", "BigIntType", ("MinValue", "MaxValue")),
    "Decimal": AttributeKind(
        "DecimalAttributeMetadata",
        "DecimalType",
        ("MinValue", "MaxValue", "Precision", "ImeMode", "FormulaDefinition", "SourceTypeMask"),
    ),
    "Double": AttributeKind(
        "DoubleAttributeMetadata",
        "DoubleType",
        ("MinValue", "MaxValue", "Precision", "ImeMode", "FormulaDefinition", "SourceTypeMask"),
    ),
    "Money": AttributeKind(
        "MoneyAttributeMetadata",
        "MoneyType",
        (
            "MinValue",
            "MaxValue",
            "Precision",
            "PrecisionSource",
            "ImeMode",
            "IsBaseCurrency",
            "CalculationOf",
            "FormulaDefinition",
            "SourceTypeMask",
        ),
    ),
    "Boolean": AttributeKind(
        "BooleanAttributeMetadata",
        "BooleanType",
        ("DefaultValue", "FormulaDefinition", "SourceTypeMask"),
        _OPTION_NAVS,
    ),
    "DateTime": AttributeKind(
        "DateTimeAttributeMetadata",
        "DateTimeType",
        (
            "Format",
            "DateTimeBehavior",
            "CanChangeDateTimeBehavior",
            "ImeMode",
            "MinSupportedValue",
            "MaxSupportedValue",
            "FormulaDefinition",
            "SourceTypeMask",
        ),
    ),
    "Picklist": AttributeKind("PicklistAttributeMetadata", "PicklistType", _ENUM, _OPTION_NAVS),
    "MultiSelectPicklist": AttributeKind(
        "MultiSelectPicklistAttributeMetadata", "MultiSelectPicklistType", _ENUM, _OPTION_NAVS
    ),
    "State": AttributeKind("StateAttributeMetadata", "StateType", _ENUM, _OPTION_NAVS),
    "Status": AttributeKind("StatusAttributeMetadata", "StatusType", _ENUM, _OPTION_NAVS),
    "Lookup": AttributeKind("LookupAttributeMetadata", "LookupType", ("Targets", "Format")),
    "Customer": AttributeKind("LookupAttributeMetadata", "CustomerType", ("Targets", "Format")),
    "Owner": AttributeKind("LookupAttributeMetadata", "OwnerType", ("Targets", "Format")),
    "Uniqueidentifier": AttributeKind("UniqueIdentifierAttributeMetadata", "UniqueidentifierType"),
}

# Properties of the AttributeMetadata base type: the only ones valid without a cast.
BASE_PROPERTIES = frozenset(
    {
        "MetadataId",
        "HasChanged",
        "LogicalName",
        "SchemaName",
        "EntityLogicalName",
        "AttributeOf",
        "AttributeType",
        "AttributeTypeName",
        "ColumnNumber",
        "Description",
        "DisplayName",
        "DeprecatedVersion",
        "IntroducedVersion",
        "ExternalName",
        "IsAuditEnabled",
        "IsCustomAttribute",
        "IsCustomizable",
        "IsDataSourceSecret",
        "IsFilterable",
        "IsGlobalFilterEnabled",
        "IsLogical",
        "IsManaged",
        "IsPrimaryId",
        "IsPrimaryName",
        "IsRenameable",
        "IsRequiredForForm",
        "IsRetrievable",
        "IsSearchable",
        "IsSecured",
        "IsSortableEnabled",
        "IsValidForAdvancedFind",
        "IsValidForCreate",
        "IsValidForForm",
        "IsValidForGrid",
        "IsValidForRead",
        "IsValidForUpdate",
        "IsValidODataAttribute",
        "LinkedAttributeId",
        "RequiredLevel",
        "SourceType",
        "AutoNumberFormat",
        "InheritsFrom",
        "CanBeSecuredForCreate",
        "CanBeSecuredForRead",
        "CanBeSecuredForUpdate",
        "CanModifyAdditionalSettings",
    }
)

# Cast segment name -> the AttributeTypes it selects (Lookup covers Customer and Owner too).
CASTS: dict[str, frozenset[str]] = {}
for _type, _kind in KINDS.items():
    CASTS.setdefault(_kind.metadata_type, frozenset())
    CASTS[_kind.metadata_type] = CASTS[_kind.metadata_type] | {_type}
CASTS["MultiSelectPicklistAttributeMetadata"] |= {"Virtual"}  # its AttributeType (see above)


def kind_of(column: Column) -> AttributeKind:
    # An AttributeType the sandbox has no derived type for is served as plain AttributeMetadata.
    return KINDS.get(column.type, AttributeKind(BASE_TYPE, f"{column.type}Type"))


def properties_of(metadata_type: str | None) -> frozenset[str]:
    """Structural properties valid on `metadata_type` (None = the AttributeMetadata base)."""
    if metadata_type is None:
        return BASE_PROPERTIES
    extra = {p for k in KINDS.values() if k.metadata_type == metadata_type for p in k.properties}
    return BASE_PROPERTIES | extra


def navigations_of(metadata_type: str | None) -> frozenset[str]:
    if metadata_type is None:
        return frozenset()
    return frozenset(
        n for k in KINDS.values() if k.metadata_type == metadata_type for n in k.navigations
    )


def attribute_metadata(table: Table, column: Column, number: int) -> dict[str, Any]:
    """The full metadata object of one column: base properties, then its type's own."""
    kind = kind_of(column)
    key = ("attribute", table.logical_name, column.name)
    schema = getattr(column, "schema_name", None) or schema_name(column.name)
    item: dict[str, Any] = {
        "@odata.type": f"#{NAMESPACE}.{kind.metadata_type}",
        "MetadataId": metadata_id(*key),
        "HasChanged": None,
        "LogicalName": column.name,
        "SchemaName": schema,
        "EntityLogicalName": table.logical_name,
        "AttributeOf": getattr(column, "attribute_of", None),
        # A choices column is "Virtual" with type name MultiSelectPicklistType in Dataverse.
        "AttributeType": "Virtual" if column.type == "MultiSelectPicklist" else column.type,
        "AttributeTypeName": {"Value": kind.type_name},
        "ColumnNumber": number,
        "DisplayName": label(column.display, *key, "display"),
        "Description": label(column.description, *key, "description"),
        "RequiredLevel": managed(
            column.required,
            "canmodifyrequirementlevelsettings",
            column.required != "SystemRequired",
        ),
        "IsPrimaryId": column.name == table.primary_id,
        "IsPrimaryName": column.name == table.primary_name,
        "IsValidForCreate": column.valid_for_create and not column.read_only,
        "IsValidForUpdate": column.valid_for_update and not column.read_only,
        "IsValidForRead": True,
        "IsValidForAdvancedFind": managed(True, "canmodifysearchsettings", True),
        "IsValidForForm": True,
        "IsValidForGrid": True,
        "IsValidODataAttribute": True,
        "IsRetrievable": True,
        "IsFilterable": True,
        "IsSearchable": column.type in ("String", "Memo", "Lookup", "Customer", "Owner"),
        "IsSortableEnabled": managed(True, "canmodifyissortablesettings", True),
        "IsGlobalFilterEnabled": managed(False, "canmodifyglobalfiltersettings", True),
        "IsAuditEnabled": managed(True, "canmodifyauditsettings", True),
        "IsCustomizable": managed(True, "iscustomizable"),
        "IsRenameable": managed(True, "isrenameable"),
        "CanModifyAdditionalSettings": managed(True, "canmodifyadditionalsettings"),
        "IsCustomAttribute": column.custom,
        "IsDataSourceSecret": False,
        "IsLogical": False,
        "IsManaged": not column.custom,
        "IsRequiredForForm": column.required == "SystemRequired",
        "IsSecured": False,
        "CanBeSecuredForCreate": False,
        "CanBeSecuredForRead": False,
        "CanBeSecuredForUpdate": False,
        "LinkedAttributeId": None,
        "SourceType": 0,
        "AutoNumberFormat": None,
        "InheritsFrom": None,
        "ExternalName": None,
        "DeprecatedVersion": None,
        "IntroducedVersion": INTRODUCED_VERSION,
    }
    item.update(_derived(table, column, kind))
    return item


def _derived(table: Table, column: Column, kind: AttributeKind) -> dict[str, Any]:
    """Values of the properties the column's derived metadata type adds."""
    values: dict[str, Any] = {
        "MaxLength": column.max_length,
        "DatabaseLength": (column.max_length or 0) * 2,
        "Format": column.date_format if column.type == "DateTime" else column.format,
        "FormatName": {"Value": column.format or "Text"},
        "ImeMode": "Auto",
        "IsLocalizable": False,
        "YomiOf": None,
        "FormulaDefinition": None,
        "SourceTypeMask": 0,
        "MinValue": column.min_value,
        "MaxValue": column.max_value,
        "Precision": column.precision,
        "PrecisionSource": 2,
        "IsBaseCurrency": False,
        "CalculationOf": None,
        "DefaultValue": bool(column.default) if column.type == "Boolean" else column.default,
        "DefaultFormValue": column.default if column.default is not None else -1,
        "ParentPicklistLogicalName": None,
        "ChildPicklistLogicalNames": [],
        "DateTimeBehavior": {"Value": column.date_behavior or "UserLocal"},
        "CanChangeDateTimeBehavior": managed(False, "canchangedatetimebehavior"),
        "MinSupportedValue": "1753-01-01T00:00:00Z",
        "MaxSupportedValue": "9999-12-30T23:59:59Z",
        "Targets": list(column.targets),
    }
    if column.type == "Integer":
        values["Format"] = "None"
    if column.type in ("Lookup", "Customer", "Owner"):
        values["Format"] = None
    return {p: values[p] for p in kind.properties}


def option_set(table: Table, column: Column) -> dict[str, Any] | None:
    """The local option set of a choice or Boolean column (its `OptionSet` navigation)."""
    key = ("optionset", table.logical_name, column.name)
    common = {
        "MetadataId": metadata_id(*key),
        "HasChanged": None,
        "IsCustomOptionSet": False,
        "IsGlobal": False,
        "IsManaged": True,
        "IsCustomizable": managed(True, "iscustomizable"),
        "Name": f"{table.logical_name}_{column.name}",
        "ExternalTypeName": None,
        "IntroducedVersion": INTRODUCED_VERSION,
        "Description": label(column.description, *key, "description"),
        "DisplayName": label(column.display, *key, "display"),
    }
    if column.type == "Boolean":
        by_value = {o.value: o for o in column.options}
        false = by_value.get(0, Option(0, "No"))
        true = by_value.get(1, Option(1, "Yes"))
        return {
            **common,
            "OptionSetType": "Boolean",
            "TrueOption": _option(true, column.type, *key),
            "FalseOption": _option(false, column.type, *key),
        }
    if column.type in ("Picklist", "State", "Status", "MultiSelectPicklist"):
        return {
            **common,
            # a choices column's options are a Picklist option set (multi-select-picklist doc)
            "OptionSetType": "Picklist" if column.type == "MultiSelectPicklist" else column.type,
            "ParentOptionSetName": None,
            "Options": [_option(o, column.type, *key) for o in column.options],
        }
    return None


OPTION_SET_PROPERTIES = frozenset(
    {
        "MetadataId",
        "HasChanged",
        "IsCustomOptionSet",
        "IsGlobal",
        "IsManaged",
        "IsCustomizable",
        "Name",
        "ExternalTypeName",
        "IntroducedVersion",
        "Description",
        "DisplayName",
        "OptionSetType",
        "ParentOptionSetName",
        "Options",
        "TrueOption",
        "FalseOption",
    }
)


def _option(option: Option, column_type: str, *key: str) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if column_type == "State":
        item["@odata.type"] = f"#{NAMESPACE}.StateOptionMetadata"
    elif column_type == "Status":
        item["@odata.type"] = f"#{NAMESPACE}.StatusOptionMetadata"
    item.update(
        {
            "Value": option.value,
            "Color": None,
            "IsManaged": True,
            "ExternalValue": None,
            "ParentValues": [],
            "Tag": None,
            "IsHidden": False,
            "MetadataId": None,
            "HasChanged": None,
            "Label": label(option.label, *key, str(option.value)),
            "Description": label(None),
        }
    )
    if column_type == "State":
        item["DefaultStatus"] = option.default_status
        item["InvariantName"] = option.label.replace(" ", "")
    elif column_type == "Status":
        item["State"] = option.state
        item["TransitionData"] = None
    return item


def cast_type(segment: str) -> str | None:
    """`Microsoft.Dynamics.CRM.PicklistAttributeMetadata` -> `PicklistAttributeMetadata`."""
    prefix = NAMESPACE + "."
    if segment.startswith(prefix) and segment[len(prefix) :] in CASTS:
        return segment[len(prefix) :]
    return None
