"""systemuser: a person with access to the organization (BusinessOwned, no owner column)."""

from ..model import Option, Table
from ._columns import boolean, columns, fullname, lookup, primary_key, system_columns, text

TABLE = Table(
    logical_name="systemuser",
    entity_set="systemusers",
    primary_id="systemuserid",
    primary_name="fullname",
    display="User",
    display_collection="Users",
    object_type_code=8,
    ownership="BusinessOwned",
    description="Person with access to the Microsoft CRM system and who owns objects in the Microsoft CRM database.",
    columns=columns(
        primary_key("systemuserid", "User"),
        text("firstname", "First Name", 64, required="Recommended"),
        text("lastname", "Last Name", 64, required="ApplicationRequired"),
        fullname("Full Name"),
        text("domainname", "User Name", 1024, required="SystemRequired"),
        text("internalemailaddress", "Primary Email", 100, fmt="Email"),
        text("title", "Title", 128),
        text("jobtitle", "Job Title", 100),
        text("mobilephone", "Mobile Phone", 64, fmt="Phone"),
        boolean("isdisabled", "Status", (Option(0, "Enabled"), Option(1, "Disabled"))),
        lookup(
            "parentsystemuserid",
            "Manager",
            ("systemuser", "user_parent_user", "parentsystemuserid"),
        ),
        *system_columns("systemuserbase", owned=False),
    ),
)
