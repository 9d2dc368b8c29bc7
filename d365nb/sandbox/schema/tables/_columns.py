"""Column builders shared by the table definitions.

These keep the definitions short and make the common (system) columns identical on every table.
They only build `model` objects: nothing here is specific to one table.
"""

from __future__ import annotations

from ..model import Column, Option, Relationship

YES_NO = (Option(0, "No"), Option(1, "Yes"))
ALLOW_DONT = (Option(0, "Allow"), Option(1, "Do Not Allow"))


def primary_key(name: str, display: str) -> Column:
    """The primary id: client-supplied on create is honoured, never updatable."""
    return Column(
        name, "Uniqueidentifier", display, required="SystemRequired", valid_for_update=False
    )


def text(
    name: str,
    display: str,
    max_length: int,
    required: str = "None",
    fmt: str = "Text",
    description: str = "",
) -> Column:
    return Column(
        name,
        "String",
        display,
        required=required,
        max_length=max_length,
        format=fmt,
        description=description,
    )


def memo(name: str, display: str, max_length: int = 2000) -> Column:
    return Column(name, "Memo", display, max_length=max_length, format="TextArea")


def fullname(display: str = "Full Name") -> Column:
    """Dataverse's computed name: "First Last" (the default full-name format)."""
    return Column(
        "fullname",
        "String",
        display,
        max_length=160,
        format="Text",
        read_only=True,
        valid_for_create=False,
        valid_for_update=False,
        computed_from=("firstname", "lastname"),
    )


def integer(
    name: str,
    display: str,
    min_value: float = -2147483648,
    max_value: float = 2147483647,
    required: str = "None",
) -> Column:
    return Column(
        name, "Integer", display, required=required, min_value=min_value, max_value=max_value
    )


def money(name: str, display: str) -> Column:
    return Column(
        name, "Money", display, min_value=-922337203685477, max_value=922337203685477, precision=2
    )


def decimal(name: str, display: str, precision: int = 2) -> Column:
    return Column(
        name,
        "Decimal",
        display,
        min_value=-100000000000,
        max_value=100000000000,
        precision=precision,
    )


def boolean(
    name: str, display: str, options: tuple[Option, ...] = YES_NO, default: bool = False
) -> Column:
    return Column(name, "Boolean", display, options=options, default=int(default))


def datetime_(
    name: str, display: str, behavior: str = "UserLocal", fmt: str = "DateAndTime"
) -> Column:
    return Column(name, "DateTime", display, date_behavior=behavior, date_format=fmt)


def date_only(name: str, display: str) -> Column:
    return Column(name, "DateTime", display, date_behavior="DateOnly", date_format="DateOnly")


def choice(
    name: str,
    display: str,
    options: dict[int, str],
    default: int | None = None,
    required: str = "None",
) -> Column:
    opts = tuple(Option(v, label) for v, label in options.items())
    return Column(name, "Picklist", display, options=opts, default=default, required=required)


def lookup(
    name: str,
    display: str,
    *targets: tuple[str, str, str],
    kind: str = "Lookup",
    required: str = "None",
    read_only: bool = False,
) -> Column:
    """A lookup; each target is (target table, relationship schema name, navigation property)."""
    rels = tuple(Relationship(schema_name=s, target=t, navigation=n) for t, s, n in targets)
    return Column(
        name,
        kind,
        display,
        required=required,
        relationships=rels,
        read_only=read_only,
        valid_for_create=not read_only,
        valid_for_update=not read_only,
    )


def state_status(
    states: list[tuple[int, str, int]], statuses: list[tuple[int, str, int]]
) -> tuple[Column, Column]:
    """`statecode` (value, label, default status) and `statuscode` (value, label, state)."""
    state_opts = tuple(Option(v, label, default_status=d) for v, label, d in states)
    status_opts = tuple(Option(v, label, state=s) for v, label, s in statuses)
    first = state_opts[0]
    state = Column(
        "statecode",
        "State",
        "Status",
        required="SystemRequired",
        options=state_opts,
        default=first.value,
    )
    status = Column(
        "statuscode", "Status", "Status Reason", options=status_opts, default=first.default_status
    )
    return state, status


def system_columns(
    base: str, owned: bool = True, owner_rels: tuple[str, str] = ("", "")
) -> list[Column]:
    """createdon/modifiedon/createdby/modifiedby/versionnumber (+ ownerid for user-owned tables).

    `base` names the relationships the way Dataverse does (`lk_leadbase_createdby`);
    `owner_rels` are the one-to-many names from systemuser and team (`lead_owning_user`,
    `team_leads`). Owner lookups share the navigation property `ownerid` for both targets, as in
    Dataverse (`_ownerid_value@...associatednavigationproperty` is `ownerid`).
    """
    cols = [
        Column(
            "createdon",
            "DateTime",
            "Created On",
            date_behavior="UserLocal",
            date_format="DateAndTime",
            read_only=True,
            valid_for_create=False,
            valid_for_update=False,
        ),
        Column(
            "modifiedon",
            "DateTime",
            "Modified On",
            date_behavior="UserLocal",
            date_format="DateAndTime",
            read_only=True,
            valid_for_create=False,
            valid_for_update=False,
        ),
        lookup(
            "createdby",
            "Created By",
            ("systemuser", f"lk_{base}_createdby", "createdby"),
            read_only=True,
        ),
        lookup(
            "modifiedby",
            "Modified By",
            ("systemuser", f"lk_{base}_modifiedby", "modifiedby"),
            read_only=True,
        ),
        Column(
            "versionnumber",
            "BigInt",
            "Version Number",
            read_only=True,
            valid_for_create=False,
            valid_for_update=False,
        ),
    ]
    if owned:
        user_rel, team_rel = owner_rels
        cols.append(
            lookup(
                "ownerid",
                "Owner",
                ("systemuser", user_rel, "ownerid"),
                ("team", team_rel, "ownerid"),
                kind="Owner",
                required="SystemRequired",
            )
        )
    return cols


def columns(*cols: Column) -> dict[str, Column]:
    """Columns keyed by logical name, in definition order."""
    return {c.name: c for c in cols}
