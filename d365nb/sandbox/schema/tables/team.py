"""team: a group of users who share records (BusinessOwned, no owner column).

Columns as documented (reference/team.json); see `schema/documented.py`. Dataverse fills the
required team type and membership type when a create leaves them out; so does the sandbox (the
store also defaults the administrator to the creator and the business unit to the root one)."""

from ..documented import table

TABLE = table(
    "team",
    object_type_code=9,
    overrides={"teamtype": {"default": 0}, "membershiptype": {"default": 0}},
)
