"""The `$metadata` document: OData CSDL XML describing every table, derived from the schema.

Entity types carry their key, one property per column (lookups as `_<name>_value` Edm.Guid, as
Dataverse exposes them), single-valued navigation properties from each lookup relationship and
collection-valued ones on the referenced side, each pointing at its partner with a referential
constraint. `annotations=True` adds the annotations Dataverse adds for `?annotations=true`:
read-only (`Computed`, `Permissions`), `Description` and the change-tracking capability.
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.sax.saxutils import quoteattr

from ..schema.model import Column, Table, edm_type

NAMESPACE = "Microsoft.Dynamics.CRM"
ALIAS = "mscrm"
BASE_ENTITY = "crmbaseentity"
CONTAINER = "System"


def property_name(column: Column) -> str:
    """The Web API property of a column: lookups are read as `_<name>_value`."""
    return f"_{column.name}_value" if column.is_lookup else column.name


def _attr(**attrs: object) -> str:
    return "".join(f" {k}={quoteattr(str(v))}" for k, v in attrs.items() if v is not None)


def _annotation_bool(term: str) -> str:
    return f'<Annotation Term="{term}" Bool="true"/>'


def _property(column: Column, annotations: bool) -> str:
    extra: dict[str, object] = {}
    if column.type in ("Decimal", "Money"):
        extra["Scale"] = "Variable"
    if column.type in ("String", "Memo") and column.max_length:
        extra["MaxLength"] = column.max_length
    head = f"<Property{_attr(Name=property_name(column), Type=edm_type(column), **extra)}"
    notes: list[str] = []
    if annotations:
        if column.description:
            notes.append(
                f'<Annotation Term="Org.OData.Core.V1.Description" String={quoteattr(column.description)}/>'
            )
        if column.read_only or not (column.valid_for_create or column.valid_for_update):
            notes.append(_annotation_bool("Org.OData.Core.V1.Computed"))
            notes.append(
                '<Annotation Term="Org.OData.Core.V1.Permissions"><EnumMember>'
                "Org.OData.Core.V1.Permission/Read</EnumMember></Annotation>"
            )
    if not notes:
        return head + "/>"
    return head + ">" + "".join(notes) + "</Property>"


def _navigations(schema: Mapping[str, Table], table: Table) -> list[str]:
    """Single-valued navs from this table's lookups, collection navs from others' lookups."""
    single: dict[str, list[tuple[Column, str, str]]] = {}  # nav -> [(column, target, partner)]
    for column in table.columns.values():
        for rel in column.relationships:
            if rel.target in schema:
                single.setdefault(rel.navigation, []).append((column, rel.target, rel.schema_name))
    out: list[str] = []
    for nav, uses in single.items():
        column = uses[0][0]
        if len(uses) == 1:
            # One target: a typed navigation with its partner and the lookup as constraint.
            _, target, partner = uses[0]
            ref = schema[target].primary_id
            out.append(
                f"<NavigationProperty{_attr(Name=nav, Type=f'{ALIAS}.{target}', Partner=partner)}>"
                f"<ReferentialConstraint{_attr(Property=property_name(column), ReferencedProperty=ref)}/>"
                "</NavigationProperty>"
            )
        else:
            # Several targets behind one name (ownerid -> systemuser|team): typed as the base.
            out.append(f"<NavigationProperty{_attr(Name=nav, Type=f'{ALIAS}.{BASE_ENTITY}')}/>")
    # One collection per name; a name two lookups carry (`user_accounts`: the shared `ownerid`
    # and the read-only `owninguser`) partners the single-target one, as in Dataverse.
    collections: dict[str, tuple[str, str | None]] = {}  # name -> (child table, partner)
    for other in schema.values():
        for column in other.columns.values():
            for rel in column.relationships:
                if rel.target != table.logical_name:
                    continue
                shared = sum(1 for r in column.relationships if r.navigation == rel.navigation) > 1
                partner = None if shared else rel.navigation
                known = collections.get(rel.schema_name)
                if known is None or (known[1] is None and partner is not None):
                    collections[rel.schema_name] = (other.logical_name, partner)
    for name, (child, partner) in collections.items():
        out.append(
            f"<NavigationProperty{_attr(Name=name, Type=f'Collection({ALIAS}.{child})', Partner=partner)}/>"
        )
    return out


def _entity_type(schema: Mapping[str, Table], table: Table, annotations: bool) -> str:
    props = "".join(_property(c, annotations) for c in table.columns.values())
    navs = "".join(_navigations(schema, table))
    return (
        f"<EntityType{_attr(Name=table.logical_name, BaseType=f'{ALIAS}.{BASE_ENTITY}')}>"
        f"<Key><PropertyRef Name={quoteattr(table.primary_id)}/></Key>"
        f"{props}{navs}</EntityType>"
    )


def _entity_set(schema: Mapping[str, Table], table: Table, annotations: bool) -> str:
    bindings: dict[str, str] = {}
    for column in table.columns.values():
        for rel in column.relationships:
            if rel.target in schema:
                # A shared nav (ownerid) binds to its first target's set; OData allows one target.
                bindings.setdefault(rel.navigation, schema[rel.target].entity_set)
    for other in schema.values():
        for column in other.columns.values():
            for rel in column.relationships:
                if rel.target == table.logical_name:
                    bindings.setdefault(rel.schema_name, other.entity_set)
    body = "".join(
        f"<NavigationPropertyBinding{_attr(Path=path, Target=target)}/>"
        for path, target in bindings.items()
    )
    if annotations and table.change_tracking:
        body += (
            '<Annotation Term="Org.OData.Capabilities.V1.ChangeTracking"><Record>'
            '<PropertyValue Property="Supported" Bool="true"/></Record></Annotation>'
        )
    head = f"<EntitySet{_attr(Name=table.entity_set, EntityType=f'{ALIAS}.{table.logical_name}')}"
    return head + (f">{body}</EntitySet>" if body else "/>")


_OPERATIONS = f"""<ComplexType Name="WhoAmIResponse"><Property Name="BusinessUnitId" Type="Edm.Guid" Nullable="false"/><Property Name="UserId" Type="Edm.Guid" Nullable="false"/><Property Name="OrganizationId" Type="Edm.Guid" Nullable="false"/></ComplexType>\
<ComplexType Name="CreateMultipleResponse"><Property Name="Ids" Type="Collection(Edm.Guid)" Nullable="false"/></ComplexType>\
<Function Name="WhoAmI"><ReturnType Type="{ALIAS}.WhoAmIResponse" Nullable="false"/></Function>\
<Action Name="CreateMultiple" IsBound="true"><Parameter Name="entityset" Type="Collection({ALIAS}.{BASE_ENTITY})" Nullable="false"/><Parameter Name="Targets" Type="Collection({ALIAS}.{BASE_ENTITY})" Nullable="false"/><ReturnType Type="{ALIAS}.CreateMultipleResponse" Nullable="false"/></Action>\
<Action Name="UpdateMultiple" IsBound="true"><Parameter Name="entityset" Type="Collection({ALIAS}.{BASE_ENTITY})" Nullable="false"/><Parameter Name="Targets" Type="Collection({ALIAS}.{BASE_ENTITY})" Nullable="false"/></Action>\
<Action Name="UpsertMultiple" IsBound="true"><Parameter Name="entityset" Type="Collection({ALIAS}.{BASE_ENTITY})" Nullable="false"/><Parameter Name="Targets" Type="Collection({ALIAS}.{BASE_ENTITY})" Nullable="false"/></Action>"""


def build_csdl(schema: Mapping[str, Table], annotations: bool = False) -> str:
    """The whole `$metadata` document for `schema`."""
    tables = sorted(schema.values(), key=lambda t: t.logical_name)
    types = "".join(_entity_type(schema, t, annotations) for t in tables)
    sets = "".join(_entity_set(schema, t, annotations) for t in tables)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">'
        "<edmx:DataServices>"
        f'<Schema Namespace="{NAMESPACE}" Alias="{ALIAS}" '
        'xmlns="http://docs.oasis-open.org/odata/ns/edm">'
        f'<EntityType Name="{BASE_ENTITY}" Abstract="true"/>'
        f"{types}{_OPERATIONS}"
        f'<EntityContainer Name="{CONTAINER}">{sets}'
        f'<FunctionImport Name="WhoAmI" Function="{ALIAS}.WhoAmI"/>'
        "</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"
    )
