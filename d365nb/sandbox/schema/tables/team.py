"""team: a group of users who share records (BusinessOwned, no owner column)."""

from ..model import Table
from ._columns import choice, columns, lookup, memo, primary_key, system_columns, text

TABLE = Table(
    logical_name="team",
    entity_set="teams",
    primary_id="teamid",
    primary_name="name",
    display="Team",
    display_collection="Teams",
    object_type_code=9,
    ownership="BusinessOwned",
    description="Collection of system users that routinely collaborate.",
    columns=columns(
        primary_key("teamid", "Team"),
        text("name", "Team Name", 160, required="SystemRequired"),
        choice(
            "teamtype",
            "Team Type",
            {0: "Owner", 1: "Access", 2: "Security Group", 3: "Office Group"},
            default=0,
        ),
        text("emailaddress", "Email", 100, fmt="Email"),
        memo("description", "Description", 2000),
        lookup(
            "administratorid",
            "Administrator",
            ("systemuser", "lk_teambase_administratorid", "administratorid"),
        ),
        *system_columns("teambase", owned=False),
    ),
)
