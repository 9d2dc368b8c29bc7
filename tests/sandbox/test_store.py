"""The store without HTTP: versions, tombstones, transactions, defaults and persistence."""

from __future__ import annotations

import pytest

from d365nb.sandbox import schema
from d365nb.sandbox.store import TOMBSTONES, Store


@pytest.fixture
def store():
    s = Store(schema.load())
    yield s
    s.close()


def test_every_write_gets_a_higher_global_version(store):
    (a,) = store.insert_many("account", [{"name": "A"}])
    (c,) = store.insert_many("contact", [{"lastname": "C"}])
    va, vc = store.get("account", a)["versionnumber"], store.get("contact", c)["versionnumber"]
    assert vc > va
    store.update("account", a, {"name": "A2"})
    assert store.get("account", a)["versionnumber"] > vc
    assert store.version == store.get("account", a)["versionnumber"]


def test_delete_leaves_a_tombstone_with_a_version(store):
    (a,) = store.insert_many("account", [{"name": "A"}])
    before = store.version
    assert store.delete("account", a)
    rows = store.conn.execute(f"SELECT tablename, id, versionnumber FROM {TOMBSTONES}").fetchall()
    assert rows == [("account", a, before + 1)]
    assert not store.delete("account", a)


def test_insert_many_fills_defaults_state_status_and_fullname(store):
    ids = store.insert_many(
        "lead",
        [
            {"subject": "s", "firstname": "Ann", "lastname": "Lee"},
            {"subject": "s", "lastname": "Solo", "statuscode": 5},
            {"subject": "s", "lastname": "Q", "statecode": 1},
        ],
    )
    first, second, third = (store.get("lead", i) for i in ids)
    assert first["fullname"] == "Ann Lee" and second["fullname"] == "Solo"
    assert (first["statecode"], first["statuscode"]) == (0, 1)
    assert (second["statecode"], second["statuscode"]) == (2, 5)
    assert (third["statecode"], third["statuscode"]) == (1, 3)
    assert first["leadqualitycode"] == 2 and first["donotemail"] == 0
    assert first["createdon"] == first["modifiedon"]


def test_inner_transaction_failure_rolls_back_alone(store):
    (a,) = store.insert_many("account", [{"name": "A"}])
    (b,) = store.insert_many("account", [{"name": "B"}])
    with store.transaction():
        store.update("account", a, {"name": "A2"})
        with pytest.raises(RuntimeError), store.transaction():
            store.update("account", b, {"name": "B2"})
            raise RuntimeError("part fails")
    assert store.get("account", a)["name"] == "A2"
    assert store.get("account", b)["name"] == "B"


def test_outer_failure_rolls_back_everything(store):
    (a,) = store.insert_many("account", [{"name": "A"}])
    with pytest.raises(RuntimeError), store.transaction():
        store.update("account", a, {"name": "A2"})
        store.insert_many("account", [{"name": "C"}])
        raise RuntimeError("batch fails")
    assert store.get("account", a)["name"] == "A"
    assert store.count("account") == 1


def test_file_database_keeps_rows_and_versions(tmp_path):
    path = str(tmp_path / "org.sqlite")
    first = Store(schema.load(), path)
    (a,) = first.insert_many("account", [{"name": "Kept"}])
    first.set_meta("user_id", "u")
    high = first.version
    first.close()
    again = Store(schema.load(), path)
    assert again.get("account", a)["name"] == "Kept"
    assert again.get_meta("user_id") == "u"
    assert again.version == high
    assert again.next_version() == high + 1
    again.close()


def test_primary_names_in_one_query(store):
    ids = store.insert_many("account", [{"name": f"N{i}"} for i in range(5)])
    assert store.primary_names("account", ids[:3]) == {i: f"N{n}" for n, i in enumerate(ids[:3])}


def test_text_compares_case_insensitively(store):
    store.insert_many("contact", [{"lastname": "O'Neil"}])
    n = store.conn.execute("SELECT count(*) FROM contact WHERE lastname = 'o''neil'").fetchone()[0]
    assert n == 1


def test_in_memory_stores_start_empty_and_apart(store):
    """New in-memory stores are copies of one empty database made per schema: rows written to
    one are not in the next, and the copy has every table and index a file database gets."""
    store.insert_many("account", [{"name": "Only here"}])
    other = Store(schema.load())
    try:
        assert other.conn.execute("SELECT count(*) FROM account").fetchone()[0] == 0
        assert other.version == store.version - 1  # only the new row's version is missing
    finally:
        other.close()


def test_in_memory_and_file_databases_have_the_same_tables_and_indexes(tmp_path, store):
    on_disk = Store(schema.load(), str(tmp_path / "org.sqlite"))
    sql = "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY 2"
    try:
        assert store.conn.execute(sql).fetchall() == on_disk.conn.execute(sql).fetchall()
    finally:
        on_disk.close()
