"""The connector trigger's options on notebook triggers: ``--orderby`` orders one poll's runs,
``--top`` caps the records one poll takes (the rest wait for the next poll) and ``--select``
limits the columns fetched. The Dynamics 365 trigger documents ``$filter``, ``$orderby``,
``$skip`` and ``$top`` (https://learn.microsoft.com/connectors/dynamicscrmonline/#when-a-record-is-created);
the query options are Dataverse's (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/overview).
"""

from __future__ import annotations

import pytest

from d365nb.flows import Flow, FlowError
from d365nb.flows.export import export
from tests.support.export import ORG
from tests.support.waiting import wait_for


def started(flow: Flow) -> Flow:
    flow.start()
    wait_for(lambda: flow.state == "Running")
    # The first poll (due at once) is over: what the test creates next comes in one poll.
    wait_for(lambda: flow.history.checks(flow.name, 1), what="the first poll")
    return flow


def count(flow: Flow) -> int:
    runs = flow.runs()
    return int(runs.status.isin(["Succeeded", "Failed"]).sum())


def test_top_takes_at_most_n_records_per_poll_and_the_rest_next_time(conn, history):
    seen: list[str] = []
    flow = Flow("topped", conn, history=history).on_created("leads", every="1h", top=2)
    flow.step("s", "seen.append(trigger['subject'])", namespace={"seen": seen})
    started(flow)
    for i in range(5):
        conn.create("leads", {"subject": f"lead {i}"})
    for expected in (2, 4, 5):
        flow.poll_now()
        wait_for(lambda e=expected: count(flow) == e, what=f"{expected} runs")
    # Oldest first across polls, so none is skipped.
    assert seen == [f"lead {i}" for i in range(5)]
    conn.create("leads", {"subject": "lead 5"})
    flow.poll_now()
    wait_for(lambda: count(flow) == 6)
    assert seen[-1] == "lead 5"


def test_orderby_orders_the_runs_of_one_poll(conn, history):
    seen: list[str] = []
    flow = Flow("ordered", conn, history=history).on_created(
        "leads", every="1h", orderby="subject desc"
    )
    flow.step("s", "seen.append(trigger['subject'])", namespace={"seen": seen})
    started(flow)
    for subject in ("banana", "apple", "cherry"):
        conn.create("leads", {"subject": subject})
    flow.poll_now()
    wait_for(lambda: count(flow) == 3)
    assert seen == ["cherry", "banana", "apple"]
    assert "ordered by subject desc" in flow.trigger.describe()


def test_select_limits_the_columns_fetched(conn, history):
    keys: list[set[str]] = []
    flow = Flow("narrow", conn, history=history).on_created("leads", every="1h", select="subject")
    flow.step("s", "keys.append(set(trigger))\ntrigger['subject']", namespace={"keys": keys})
    started(flow)
    conn.create("leads", {"subject": "x", "jobtitle": "Buyer", "firstname": "Ann"})
    flow.poll_now()
    wait_for(lambda: count(flow) == 1)
    [fetched] = keys
    assert "subject" in fetched and "leadid" in fetched
    assert "jobtitle" not in fetched and "firstname" not in fetched


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"orderby": "nosuch desc"}, "bad --orderby: table leads has no column 'nosuch'"),
        ({"orderby": "subject sideways"}, "bad --orderby 'subject sideways'"),
        ({"top": 0}, "bad --top 0: use a whole number from 1 to 5000"),
        ({"top": "ten"}, "bad --top 'ten'"),
        ({"top": 5001}, "bad --top 5001"),
    ],
)
def test_bad_trigger_options_are_one_line_and_change_nothing(conn, history, options, message):
    flow = Flow("bad", conn, history=history).on_created("leads", every="1h")
    with pytest.raises(FlowError, match=message) as err:
        flow.on_created("leads", every="1h", **options)
    assert "\n" not in str(err.value)
    assert flow.trigger.orderby is None and flow.trigger.top is None


def test_orderby_and_top_export_to_the_legacy_trigger_only(conn, history):
    flow = Flow("exp", conn, history=history).on_created(
        "leads", every="3m", orderby="createdon desc", top=50
    )
    flow.step("get", "get leads {trigger[leadid]}")
    legacy = export(flow, legacy=True, org=ORG).definition
    queries = legacy["triggers"]["When_a_record_is_created"]["inputs"]["queries"]
    assert queries == {"$orderby": "createdon desc", "$top": 50}
    result = export(flow, org=ORG)
    assert any("--orderby/--top are not exported" in note for note in result.warnings)


def test_trigger_options_survive_a_reload(conn, history):
    flow = Flow("kept", conn, history=history).on_created(
        "leads", every="1h", orderby="subject", top=7
    )
    again = Flow.load("kept", conn, history=history)
    assert (again.trigger.orderby, again.trigger.top) == (["subject asc"], 7)
    assert flow.trigger.to_dict() == again.trigger.to_dict()
