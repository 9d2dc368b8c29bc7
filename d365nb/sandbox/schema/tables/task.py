"""task: an activity (to-do) regarding an account, contact, lead or opportunity.

Columns as documented (reference/task.json); see `schema/documented.py`."""

from ..documented import table

TABLE = table(
    "task",
    object_type_code=4212,
    is_activity=True,
    # Dataverse applies no choice default through the API; the sandbox has always started
    # tasks at Normal priority (the form default, DefaultFormValue 1).
    overrides={"prioritycode": {"default": 1}},
)
