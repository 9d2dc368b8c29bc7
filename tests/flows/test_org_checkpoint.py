"""Checkpoints belong to an organisation (issue 17 item 2). A flow's checkpoint and its runs
record the organisation they were taken on (``WhoAmI``'s OrganizationId, plus the URL). Started
against another organisation, the flow never applies the old checkpoint: it starts per
``--since`` and says so in one line; runs queued on the other organisation are not run here;
the other organisation's history stays readable, labelled with its org.

A sandbox has a stable organisation id per database (``--db``) and a new one per in-memory
start. WhoAmI: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/whoami
"""

from __future__ import annotations

import uuid

import pytest

import d365nb
from d365nb import sandbox
from d365nb.flows import Flow
from d365nb.flows.history import Change, History
from tests.support.waiting import wait_for


def connect(handle):
    return d365nb.connect(handle.url, token=handle.token, alias=f"org-{uuid.uuid4().hex[:6]}")


def org_of(conn) -> str:
    return conn.whoami()["OrganizationId"].lower()


def make(conn, store: History, tag: str) -> Flow:
    flow = Flow("orgs", conn, history=store).on_created(
        "leads", every="1s", filter=f"startswith(subject,'{tag}')"
    )
    return flow.step("echo", "trigger['subject']")


def succeeded(flow: Flow, n: int) -> bool:
    runs = flow.runs(all_orgs=True)
    return int((runs.status == "Succeeded").sum()) >= n


def test_sandbox_org_is_stable_per_database_and_new_per_memory_start(tmp_path):
    db = str(tmp_path / "org.db")
    ids = []
    for kwargs in ({"db": db}, {"db": db}, {}, {}):
        with sandbox.start(data="empty", **kwargs) as handle:
            conn = connect(handle)
            ids.append(org_of(conn))
            conn.close()
    assert ids[0] == ids[1]  # the same database: the same organisation
    assert len({ids[1], ids[2], ids[3]}) == 3  # each in-memory start: a new one


@pytest.mark.slow
def test_a_checkpoint_of_another_org_is_not_applied(tmp_path, capsys):
    store = History(tmp_path / ".d365nb" / "flows.sqlite")
    tag = uuid.uuid4().hex[:8]
    with sandbox.start(data="empty") as first:
        a = connect(first)
        # Advance A's row versions well past where a fresh organisation starts.
        a.create_many("leads", [{"subject": f"pad {i}", "lastname": "Pad"} for i in range(40)])
        flow = make(a, store, tag)
        flow.start()
        assert capsys.readouterr().out == ""  # a first start has nothing to say
        a.create("leads", {"subject": f"{tag} on A", "lastname": "A"})
        wait_for(lambda: succeeded(flow, 1), what="the run on A")
        # A run found on A but never finished (the process stopped first).
        owed = store.enqueue(
            "orgs",
            [Change(str(uuid.uuid4()), "owed-on-a", "created", {"subject": "owed"})],
            store.checkpoint("orgs"),
            flow.organisation(),
        )[0]
        flow.stop()
        org_a, url_a = org_of(a), a.url
        assert store.checkpoint("orgs")["org"] == {"id": org_a, "url": url_a}
        a.close()

    with sandbox.start(data="empty") as second:
        b = connect(second)
        org_b = org_of(b)
        assert org_b != org_a
        flow = make(b, store, tag)
        flow.start()
        notice = capsys.readouterr().out.strip()
        assert notice == (
            f"flow orgs: its checkpoint was taken on organisation {org_a} ({url_a}), not on "
            f"this one ({org_b}, {b.url}); starting from --since now"
        )
        lead = b.create("leads", {"subject": f"{tag} on B", "lastname": "B"})
        # Fires: with A's watermark (a higher row version) this lead would never be seen.
        wait_for(lambda: succeeded(flow, 2), what="the run on B")
        # What the flow shows is this organisation's; every run stays readable, labelled.
        assert list(flow.runs().record_id) == [lead] and set(flow.runs().org) == {org_b}
        assert flow.status_data()["succeeded"] == 1
        runs = flow.runs(all_orgs=True)
        on_b = runs[runs.org == org_b]
        assert list(on_b.record_id) == [lead] and list(on_b.org_url) == [b.url]
        on_a = runs[runs.org == org_a]
        assert set(on_a.status) == {"Succeeded", "Cancelled"} and len(on_a) == 2
        cancelled = store.run(owed.run_id)
        assert cancelled["status"] == "Cancelled" and org_b in cancelled["error"]
        assert store.checkpoint("orgs")["org"] == {"id": org_b, "url": b.url}
        flow.stop()

        # The same organisation again: its checkpoint applies, silently.
        flow = make(b, store, tag)
        flow.start()
        assert capsys.readouterr().out == ""
        flow.stop()
        b.close()


def test_the_same_database_keeps_its_checkpoint(tmp_path, capsys):
    store = History(tmp_path / ".d365nb" / "flows.sqlite")
    db = str(tmp_path / "sandbox.db")
    tag = uuid.uuid4().hex[:8]
    with sandbox.start(data="empty", db=db) as handle:
        conn = connect(handle)
        flow = make(conn, store, tag)
        flow.start()
        flow.stop()
        conn.close()
    with sandbox.start(data="empty", db=db) as handle:
        conn = connect(handle)
        # Written while no flow ran: the resumed checkpoint finds it (since=now would not).
        lead = conn.create("leads", {"subject": f"{tag} while stopped", "lastname": "S"})
        flow = make(conn, store, tag)
        flow.start()
        assert capsys.readouterr().out == ""
        wait_for(lambda: succeeded(flow, 1), what="the missed lead")
        assert list(flow.runs().record_id) == [lead]
        flow.stop()
        conn.close()


def test_a_checkpoint_that_never_recorded_its_org_is_not_applied(tmp_path, d365, capsys):
    store = History(tmp_path / ".d365nb" / "flows.sqlite")
    flow = make(d365, store, "x")
    store.set_checkpoint("orgs", {"signature": flow.detector().signature(), "position": [10**9]})
    flow.start()
    line = capsys.readouterr().out.strip()
    assert "its checkpoint was taken on an unrecorded organisation" in line and "\n" not in line
    assert store.checkpoint("orgs")["position"] != [10**9]
