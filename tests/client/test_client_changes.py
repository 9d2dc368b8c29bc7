"""Change tracking: initial sync, then created/updated/deleted since a token."""

import asyncio

from d365nb.client.api import AsyncDataverse


def test_changes_since_a_token(empty_d365):
    start = empty_d365.changes("tasks", select="subject")
    assert start.upserted == [] and start.deleted == [] and start.token
    a = empty_d365.create("tasks", {"subject": "a"})
    b = empty_d365.create("tasks", {"subject": "b"})
    empty_d365.update("tasks", a, {"subject": "a2"})
    empty_d365.delete("tasks", b)
    delta = empty_d365.changes("tasks", start.token, select="subject")
    assert [(r["activityid"], r["subject"]) for r in delta.upserted] == [(a, "a2")]
    assert delta.deleted == [b]
    quiet = empty_d365.changes("tasks", delta.token, select="subject")
    assert quiet.upserted == [] and quiet.deleted == [] and quiet.token


def test_async_changes(empty_sandbox):
    async def main():
        async with AsyncDataverse(empty_sandbox.url, token=empty_sandbox.token) as conn:
            first = await conn.changes("tasks")
            new_id = await conn.create("tasks", {"subject": "async"})
            delta = await conn.changes("tasks", first.token)
            return new_id, delta

    new_id, delta = asyncio.run(main())
    assert [r["activityid"] for r in delta.upserted] == [new_id]


def test_changes_carry_formatted_values(empty_d365):
    """Change-tracking flow triggers expose formatted values (issue 6), so changes() asks for
    them: a choice column comes with its label."""
    start = empty_d365.changes("tasks", select="subject,prioritycode")
    empty_d365.create("tasks", {"subject": "labelled", "prioritycode": 2})
    delta = empty_d365.changes("tasks", start.token, select="subject,prioritycode")
    (record,) = delta.upserted
    assert record["prioritycode@OData.Community.Display.V1.FormattedValue"] == "High"
