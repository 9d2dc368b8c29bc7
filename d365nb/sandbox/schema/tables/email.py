"""email: an e-mail activity; its senders and recipients are activity parties
(`email_activity_parties`).

Columns as documented (reference/email.json); see `schema/documented.py`."""

from ..documented import table

TABLE = table("email", object_type_code=4202, is_activity=True)
