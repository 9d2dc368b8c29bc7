"""account: a business that is a customer or potential customer.

Columns as documented (reference/account.json); see `schema/documented.py`; the
address composites computed from their parts (`documented.ADDRESS_COMPOSITES`)."""

from ..documented import ADDRESS_COMPOSITES, table

TABLE = table(
    "account",
    object_type_code=1,
    duplicate_rules=(("name",), ("emailaddress1",)),
    overrides=ADDRESS_COMPOSITES,
)
