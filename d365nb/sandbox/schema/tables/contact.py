"""contact: a person with whom a business unit has a relationship."""

from ..model import Table
from ._columns import (
    ALLOW_DONT,
    boolean,
    choice,
    columns,
    date_only,
    fullname,
    lookup,
    memo,
    money,
    primary_key,
    state_status,
    system_columns,
    text,
)

_STATE, _STATUS = state_status(
    [(0, "Active", 1), (1, "Inactive", 2)], [(1, "Active", 0), (2, "Inactive", 1)]
)

TABLE = Table(
    logical_name="contact",
    entity_set="contacts",
    primary_id="contactid",
    primary_name="fullname",
    display="Contact",
    display_collection="Contacts",
    object_type_code=2,
    duplicate_rules=(("emailaddress1",),),
    description="Person with whom a business unit has a relationship, such as customer, supplier, and colleague.",
    columns=columns(
        primary_key("contactid", "Contact"),
        text("firstname", "First Name", 50, required="Recommended"),
        text("lastname", "Last Name", 50, required="ApplicationRequired"),
        fullname("Full Name"),
        text("jobtitle", "Job Title", 100),
        text("emailaddress1", "Email", 100, fmt="Email"),
        text("telephone1", "Business Phone", 50, fmt="Phone"),
        text("mobilephone", "Mobile Phone", 50, fmt="Phone"),
        text("address1_city", "Address 1: City", 80),
        text("address1_country", "Address 1: Country/Region", 80),
        money("annualincome", "Annual Income"),
        date_only("birthdate", "Birthday"),
        choice("gendercode", "Gender", {1: "Male", 2: "Female"}),
        boolean("donotemail", "Do not allow Emails", ALLOW_DONT),
        boolean("creditonhold", "Credit Hold"),
        memo("description", "Description", 2000),
        lookup(
            "parentcustomerid",
            "Company Name",
            ("account", "contact_customer_accounts", "parentcustomerid_account"),
            ("contact", "contact_customer_contacts", "parentcustomerid_contact"),
            kind="Customer",
        ),
        _STATE,
        _STATUS,
        *system_columns("contactbase", owner_rels=("contact_owning_user", "team_contacts")),
    ),
)
