"""account: a business that is a customer or potential customer."""

from ..model import Table
from ._columns import (
    ALLOW_DONT,
    boolean,
    choice,
    columns,
    integer,
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
    logical_name="account",
    entity_set="accounts",
    primary_id="accountid",
    primary_name="name",
    display="Account",
    display_collection="Accounts",
    object_type_code=1,
    duplicate_rules=(("name",), ("emailaddress1",)),
    description="Business that represents a customer or potential customer.",
    columns=columns(
        primary_key("accountid", "Account"),
        text("name", "Account Name", 160, required="ApplicationRequired"),
        text("accountnumber", "Account Number", 20),
        money("revenue", "Annual Revenue"),
        integer("numberofemployees", "Number of Employees", 0, 1000000000),
        choice("accountcategorycode", "Category", {1: "Preferred Customer", 2: "Standard"}),
        choice(
            "industrycode",
            "Industry",
            {
                1: "Accounting",
                3: "Business Services",
                6: "Consulting",
                7: "Consumer Services",
                12: "Financial",
                19: "Manufacturing",
                25: "Retail",
                33: "Transportation",
            },
        ),
        boolean("creditonhold", "Credit Hold"),
        money("creditlimit", "Credit Limit"),
        boolean("donotpostalmail", "Do not allow Mails", ALLOW_DONT),
        text("address1_line1", "Address 1: Street 1", 250),
        text("address1_city", "Address 1: City", 80),
        text("address1_country", "Address 1: Country/Region", 80),
        text("telephone1", "Main Phone", 50, fmt="Phone"),
        text("emailaddress1", "Email", 100, fmt="Email"),
        text("websiteurl", "Website", 200, fmt="Url"),
        memo("description", "Description", 2000),
        lookup(
            "primarycontactid",
            "Primary Contact",
            ("contact", "account_primary_contact", "primarycontactid"),
        ),
        lookup(
            "parentaccountid",
            "Parent Account",
            ("account", "account_parent_account", "parentaccountid"),
        ),
        _STATE,
        _STATUS,
        *system_columns("accountbase", owner_rels=("user_accounts", "team_accounts")),
    ),
)
