"""account: a business that is a customer or potential customer.

Columns as documented (reference/account.json); see `schema/documented.py`."""

from ..documented import table

TABLE = table(
    "account",
    object_type_code=1,
    duplicate_rules=(("name",), ("emailaddress1",)),
)
