"""The Python handle of a sandbox (``d365nb.sandbox.start``): ``stop()`` stops serving and closes
the database before it returns; ``stop(wait=False)`` returns at once and the sandbox finishes
and closes on its own thread; stopping twice is harmless."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from d365nb import sandbox
from tests.support.waiting import wait_for


def closed(handle) -> bool:
    try:
        handle.org.store.count("lead")
    except sqlite3.ProgrammingError:  # "Cannot operate on a closed database."
        return True
    return False


def test_stop_returns_once_it_stopped_and_closed_its_database(tmp_path):
    db = tmp_path / "org.sqlite"
    handle = sandbox.start(data="empty", db=str(db))
    httpx.post(
        handle.api + "leads",
        json={"lastname": "kept"},
        headers={"Authorization": f"Bearer {handle.token}"},
    ).raise_for_status()
    handle.stop()
    assert not handle.running and closed(handle)
    with pytest.raises(httpx.ConnectError):
        httpx.get(handle.api, timeout=2)
    handle.stop()  # twice: nothing happens
    with sandbox.start(db=str(db)) as again:  # the file is free for the next sandbox
        assert again.org.store.count("lead") == 1


def test_stop_without_waiting_returns_at_once_and_closes_when_done():
    handle = sandbox.start(data="empty")
    handle.stop(wait=False)
    wait_for(lambda: not handle.running, timeout=10, what="the server thread to end")
    wait_for(lambda: closed(handle), timeout=10, what="the database to close")
    handle.stop()  # a later waiting stop is harmless


def test_a_database_of_an_earlier_version_gains_the_columns_added_since(tmp_path):
    """A ``--db`` kept from an earlier d365nb (whose tables lacked columns documented since) is
    brought up to date on open: its rows stay, the new columns read null and can be written."""
    db = tmp_path / "old.sqlite"
    with sandbox.start(data="empty", db=str(db)) as first:
        lead = first.org.store.insert_rows("lead", [{"lastname": "kept"}])[0]["leadid"]
    raw = sqlite3.connect(db)
    raw.execute('ALTER TABLE "lead" DROP COLUMN "yomifullname"')  # as an earlier schema had it
    raw.commit()
    raw.close()
    with sandbox.start(db=str(db)) as again:
        auth = {"Authorization": f"Bearer {again.token}"}
        row = httpx.get(f"{again.api}leads({lead})?$select=lastname,yomifullname", headers=auth)
        assert row.status_code == 200, row.text
        assert (row.json()["lastname"], row.json()["yomifullname"]) == ("kept", None)
        made = httpx.post(again.api + "leads", json={"lastname": "new"}, headers=auth)
        assert made.status_code == 204, made.text
