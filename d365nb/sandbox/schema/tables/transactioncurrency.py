"""transactioncurrency: a currency money columns are kept in; the store creates the base one.

Columns as documented (reference/transactioncurrency.json); see `schema/documented.py`."""

from ..documented import table

TABLE = table("transactioncurrency", object_type_code=9105)
