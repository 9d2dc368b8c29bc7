"""contact: a person with whom a business unit has a relationship.

Columns as documented (reference/contact.json), with the computed full name every person-like
table shares (`documented.FULL_NAME`)
and the computed address composites (`documented.ADDRESS_COMPOSITES`)."""

from ..documented import ADDRESS_COMPOSITES, FULL_NAME, table

TABLE = table(
    "contact",
    object_type_code=2,
    duplicate_rules=(("emailaddress1",),),
    overrides={**FULL_NAME, **ADDRESS_COMPOSITES},
)
