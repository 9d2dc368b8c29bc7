"""activityparty: a person or group taking part in an activity (sender, To, Cc, ...).

Columns as documented (reference/activityparty.json); see `schema/documented.py`. The party's
name (`partyidname`) is the primary name."""

from ..documented import table

TABLE = table("activityparty", object_type_code=135, change_tracking=False)
