"""task: an activity (to-do) regarding an account, contact or lead."""

from ..model import Table
from ._columns import (
    choice,
    columns,
    datetime_,
    integer,
    lookup,
    memo,
    primary_key,
    state_status,
    system_columns,
    text,
)

_STATE, _STATUS = state_status(
    [(0, "Open", 2), (1, "Completed", 5), (2, "Canceled", 6)],
    [
        (2, "Not Started", 0),
        (3, "In Progress", 0),
        (4, "Waiting on someone else", 0),
        (7, "Deferred", 0),
        (5, "Completed", 1),
        (6, "Canceled", 2),
    ],
)

TABLE = Table(
    logical_name="task",
    entity_set="tasks",
    primary_id="activityid",
    primary_name="subject",
    display="Task",
    display_collection="Tasks",
    object_type_code=4212,
    is_activity=True,
    description="Generic activity representing work needed to be done.",
    columns=columns(
        primary_key("activityid", "Task"),
        text("subject", "Subject", 200, required="ApplicationRequired"),
        memo("description", "Description", 2000),
        datetime_("scheduledstart", "Start Date"),
        datetime_("scheduledend", "Due Date"),
        datetime_("actualstart", "Actual Start", fmt="DateOnly"),
        datetime_("actualend", "Actual End", fmt="DateOnly"),
        integer("percentcomplete", "Percent Complete", 0, 100),
        integer("actualdurationminutes", "Duration", 0, 2147483647),
        text("category", "Category", 250),
        text("subcategory", "Sub-Category", 250),
        choice("prioritycode", "Priority", {0: "Low", 1: "Normal", 2: "High"}, default=1),
        lookup(
            "regardingobjectid",
            "Regarding",
            ("account", "Account_Tasks", "regardingobjectid_account_task"),
            ("contact", "Contact_Tasks", "regardingobjectid_contact_task"),
            ("lead", "Lead_Tasks", "regardingobjectid_lead_task"),
        ),
        _STATE,
        _STATUS,
        *system_columns("task", owner_rels=("user_task", "team_task")),
    ),
)
