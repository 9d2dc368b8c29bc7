"""systemuser: a person with access to the organization (BusinessOwned, no owner column).

Columns as documented (reference/systemuser.json); see `schema/documented.py`. The full name is
computed by the store ("First Last"); the required settings Dataverse fills itself when a user is
added get their documented default (DefaultFormValue)."""

from ..documented import FULL_NAME, table

TABLE = table(
    "systemuser",
    object_type_code=8,
    overrides={
        **FULL_NAME,
        "accessmode": {"default": 0},
        "azurestate": {"default": 0},
        "caltype": {"default": 0},
        "emailrouteraccessapproval": {"default": 0},
        "incomingemaildeliverymethod": {"default": 1},
        "outgoingemaildeliverymethod": {"default": 1},
        "invitestatuscode": {"default": 0},
        "systemmanagedusertype": {"default": 0},
    },
)
