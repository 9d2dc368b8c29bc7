"""Detection against the sandbox over HTTP: created / updated / deleted, --since, --columns,
--filter, coalescing, draining a backlog page by page, and the one-request idle poll."""

from __future__ import annotations

import uuid

import pytest

from d365nb.flows.detect import Detector
from d365nb.flows.model import FlowError, Trigger


def poll(detector: Detector, checkpoint, history, own=frozenset()):
    """One poll: every page's changes, the final checkpoint, pages seen."""
    changes, pages = [], list(detector.poll(checkpoint, set(own), history, "f"))
    for page in pages:
        changes += page.changes
        history.put_snapshots("f", page.snapshots)
    return changes, pages[-1].checkpoint, pages


def lead(d365, **values) -> str:
    return d365.create("leads", {"lastname": "Tester", **values})


@pytest.fixture
def tag() -> str:
    """A unique subject prefix so tests sharing the sandbox do not see each other's leads."""
    return uuid.uuid4().hex[:8]


def created(d365, tag, **kw) -> Detector:
    filter_ = f"startswith(subject,'{tag}')"
    return Detector(Trigger("created", "leads", 1, filter=kw.pop("filter", filter_), **kw), d365)


def test_created_since_now_fires_once_per_new_record_only(d365, history, tag):
    old = lead(d365, subject=f"{tag} old")
    det = created(d365, tag)
    cp = det.start("now")
    new = [lead(d365, subject=f"{tag} new {i}") for i in range(3)]
    d365.update("leads", old, {"subject": f"{tag} old, edited"})  # an update is not a creation
    changes, cp, _ = poll(det, cp, history)
    assert [c.record_id for c in changes] == new
    assert all(c.change == "created" and c.key == f"{c.record_id}:created" for c in changes)
    assert changes[0].record["subject"] == f"{tag} new 0"
    assert "statuscode@OData.Community.Display.V1.FormattedValue" in changes[0].record
    again, _, _ = poll(det, cp, history)
    assert again == []


def test_created_since_beginning_and_since_a_time(d365, history, tag):
    first = lead(d365, subject=f"{tag} a")
    det = created(d365, tag)
    changes, _, _ = poll(det, det.start("beginning"), history)
    assert [c.record_id for c in changes] == [first]
    changes, _, _ = poll(det, det.start("2999-01-01T00:00:00Z"), history)
    assert changes == []


def test_created_filter_limits_the_records(d365, history, tag):
    det = created(d365, tag, filter=f"startswith(subject,'{tag}') and lastname eq 'Match'")
    cp = det.start("now")
    lead(d365, subject=f"{tag} x")
    wanted = lead(d365, subject=f"{tag} y", lastname="Match")
    changes, _, _ = poll(det, cp, history)
    assert [c.record_id for c in changes] == [wanted]


def test_several_updates_between_polls_give_one_change_with_the_latest_state(d365, history, tag):
    rid = lead(d365, subject=f"{tag} u")
    det = Detector(Trigger("updated", "leads", 1, filter=f"startswith(subject,'{tag}')"), d365)
    cp = det.start("now")
    lead(d365, subject=f"{tag} created later")  # a creation is not an update
    for n in (1, 2, 3):
        d365.update("leads", rid, {"jobtitle": f"v{n}"})
    changes, cp, _ = poll(det, cp, history)
    assert [(c.record_id, c.record["jobtitle"]) for c in changes] == [(rid, "v3")]
    assert changes[0].key == f"{rid}:{changes[0].record['versionnumber']}"
    d365.update("leads", rid, {"jobtitle": "v4"})
    changes, _, _ = poll(det, cp, history)
    assert [c.record["jobtitle"] for c in changes] == ["v4"]


def test_updated_with_columns_fires_only_when_one_of_them_changed(d365, history, tag):
    rid = lead(d365, subject=f"{tag} c", jobtitle="Analyst")
    trigger = Trigger(
        "updated", "leads", 1, filter=f"startswith(subject,'{tag}')", columns=["jobtitle"]
    )
    det = Detector(trigger, d365)
    cp = det.start("now")
    det.baseline(history, "f")
    d365.update("leads", rid, {"companyname": "Other Co"})
    changes, cp, _ = poll(det, cp, history)
    assert changes == []
    d365.update("leads", rid, {"jobtitle": "Manager"})
    changes, cp, _ = poll(det, cp, history)
    assert [c.record["jobtitle"] for c in changes] == ["Manager"]
    d365.update("leads", rid, {"jobtitle": "Manager", "companyname": "Third"})  # same value
    changes, _, _ = poll(det, cp, history)
    assert changes == []


def test_deleted_uses_change_tracking(d365, history, tag):
    rid = lead(d365, subject=f"{tag} d")
    det = Detector(Trigger("deleted", "leads", 1, mode="changes"), d365)
    assert det.strategy == "changes"
    cp = det.start("now")
    d365.delete("leads", rid)
    changes, cp, _ = poll(det, cp, history)
    assert [(c.record_id, c.change, c.key) for c in changes] == [(rid, "deleted", f"{rid}:deleted")]
    assert poll(det, cp, history)[0] == []


def test_created_via_change_tracking(d365, history, tag):
    old = lead(d365, subject=f"{tag} old")
    det = Detector(Trigger("created", "leads", 1, mode="changes"), d365)
    cp = det.start("now")
    new = lead(d365, subject=f"{tag} new")
    d365.update("leads", old, {"jobtitle": "changed"})
    changes, _, _ = poll(det, cp, history)
    assert [c.record_id for c in changes] == [new]


def test_a_backlog_is_drained_page_by_page(d365, history, tag):
    det = Detector(
        Trigger("created", "leads", 1, filter=f"startswith(subject,'{tag}')"), d365, page_size=40
    )
    cp = det.start("now")
    result = d365.create_many(
        "leads", [{"lastname": "Bulk", "subject": f"{tag} {i}"} for i in range(100)]
    )
    changes, cp, pages = poll(det, cp, history)
    assert len(pages) == 3 and [len(p.changes) for p in pages] == [40, 40, 20]
    assert sorted(c.record_id for c in changes) == sorted(result.ids)
    # Each page carries the checkpoint after it, so a crash mid-backlog resumes where it was.
    assert pages[0].checkpoint["position"] < pages[1].checkpoint["position"]


def test_an_idle_poll_is_one_request(d365, history, tag):
    det = created(d365, tag)
    cp = det.start("now")
    before = d365.requests_sent
    changes, _, _ = poll(det, cp, history)
    assert changes == [] and d365.requests_sent - before == 1


def test_own_writes_are_skipped_once(d365, history, tag):
    det = created(d365, tag)
    cp = det.start("now")
    mine, theirs = lead(d365, subject=f"{tag} mine"), lead(d365, subject=f"{tag} theirs")
    changes, _, pages = poll(det, cp, history, own={mine})
    assert [c.record_id for c in changes] == [theirs]
    assert pages[0].own == [mine]


def test_an_update_in_the_second_of_the_creation_after_a_poll_still_fires(d365, history, tag):
    det = Detector(Trigger("updated", "leads", 1, filter=f"startswith(subject,'{tag}')"), d365)
    cp = det.start("now")
    for attempt in range(20):  # until the update lands in the same whole second as the creation
        rid = lead(d365, subject=f"{tag} same second {attempt}")
        changes, cp, _ = poll(det, cp, history)
        assert changes == []  # the creation is not an update
        d365.update("leads", rid, {"jobtitle": "edited"})
        record = d365.get("leads", rid, select=["createdon", "modifiedon"])
        changes, cp, _ = poll(det, cp, history)
        if record["createdon"] == record["modifiedon"]:
            break
    else:
        pytest.fail("never managed an update within the second of the creation")
    # modifiedon == createdon, yet the record came back with a newer version: an update.
    assert [(c.record_id, c.record["jobtitle"]) for c in changes] == [(rid, "edited")]
    assert poll(det, cp, history)[0] == []


def test_change_tracking_since_a_past_time_sees_what_came_after_it(d365, history, tag):
    old = lead(d365, subject=f"{tag} before the start")
    cases = [
        ("created", "2000-01-01T00:00:00Z", True),  # a full sync, not "from now"
        ("created", "2999-01-01T00:00:00Z", False),
        ("updated", "2999-01-01T00:00:00Z", False),  # modified before --since: not an event
    ]
    for kind, since, expected in cases:
        det = Detector(Trigger(kind, "leads", 1, since=since, mode="changes"), d365)
        d365.update("leads", old, {"jobtitle": f"edited {kind} {since}"})
        changes, _, _ = poll(det, det.start(since), history)
        assert (old in [c.record_id for c in changes]) is expected, (kind, since)


def test_a_deleted_trigger_only_watches_from_now(d365):
    for since in ("beginning", "2020-01-01T00:00:00Z"):
        with pytest.raises(FlowError, match="deleted trigger can only watch from now"):
            Detector(Trigger("deleted", "leads", 1, since=since, mode="changes"), d365)
