"""lead: a prospect (Dynamics 365 Sales).

Columns as documented (reference/lead.json), with the computed full name every person-like
table shares (`documented.FULL_NAME`)
and the computed address composites (`documented.ADDRESS_COMPOSITES`)."""

from ..documented import ADDRESS_COMPOSITES, FULL_NAME, table

TABLE = table(
    "lead",
    object_type_code=4,
    duplicate_rules=(("emailaddress1",),),
    overrides={
        **FULL_NAME,
        **ADDRESS_COMPOSITES,
        # The sandbox has always rated new leads Warm (the form default); kept for its users.
        "leadqualitycode": {"default": 2},
    },
)
