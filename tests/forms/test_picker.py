"""The lookup picker: lookup type + debounced search by primary name, $top 10."""

from __future__ import annotations

import dataclasses
import threading

from d365nb.notebook.forms.picker import Debouncer, LookupPicker, RecordSearch
from tests.support.forms import unique
from tests.support.waiting import wait_for


def test_typing_a_word_sends_one_search_for_the_last_text(conn, reader):
    name = unique("Debounce")
    account_id = reader.create("accounts", {"name": name})
    picker = LookupPicker(conn, ["account"], delay=5.0)  # long delay: only flush() can fire it
    for i in range(1, len(name) + 1):
        picker.query.value = name[:i]
    assert picker.searches == 0
    picker.flush()
    assert picker.searches == 1
    assert [rid for _, rid in picker.results.options] == [account_id]


def test_a_pause_in_typing_fires_the_search_by_itself(conn, reader):
    name = unique("Pause")
    reader.create("contacts", {"lastname": name})
    picker = LookupPicker(conn, ["contact"], delay=0.05)
    picker.query.value = name
    wait_for(lambda: len(picker.results.options) == 1)
    assert picker.searches == 1


def test_startswith_and_contains(conn, reader):
    tag = unique("Mode").split()[1]
    reader.create("accounts", {"name": f"Alpha {tag}"})
    reader.create("accounts", {"name": f"{tag} Beta"})
    picker = LookupPicker(conn, ["account"])
    assert [label for label, _ in picker.search(tag)] == [f"{tag} Beta"]
    picker.mode.value = "contains"
    picker.flush()
    assert sorted(label for label, _ in picker.search(tag)) == sorted(
        [f"Alpha {tag}", f"{tag} Beta"]
    )


def test_at_most_ten_results_ordered_by_name(conn, reader):
    tag = unique("Many")
    for i in range(12):
        reader.create("accounts", {"name": f"{tag} {i:02d}"})
    found = RecordSearch(conn, "accounts")(tag)
    assert [label for label, _ in found] == [f"{tag} {i:02d}" for i in range(10)]


def test_names_with_quotes_and_guid_shapes_are_searched_as_text(conn, reader):
    name = f"O'Neil {unique('Q')}"
    reader.create("contacts", {"lastname": name})
    assert [label for label, _ in RecordSearch(conn, "contact")("O'Neil " + name.split()[1])] == [
        name
    ]
    assert RecordSearch(conn, "contact")("00000000-0000-0000-0000-00000000000a") == []


def test_wildcard_characters_in_a_search_are_matched_as_typed(conn, reader):
    tag = unique("Pct").replace(" ", "")
    for name in (f"{tag} 100% Juice", f"{tag} 1000 Juice", f"{tag} [A] Co", f"{tag} A Co"):
        reader.create("accounts", {"name": name})
    search = RecordSearch(conn, "accounts")
    assert [label for label, _ in search(f"{tag} 100%")] == [f"{tag} 100% Juice"]
    assert [label for label, _ in search(f"{tag} [A]")] == [f"{tag} [A] Co"]
    assert [label for label, _ in search("% Juice", "contains")] == [f"{tag} 100% Juice"]


def test_the_lookup_type_decides_the_table_searched_and_the_value(conn, reader):
    name = unique("Typed")
    contact_id = reader.create("contacts", {"lastname": name})
    picker = LookupPicker(conn, ["account", "contact"])
    assert picker.target.layout.display == ""  # several types: the dropdown is shown
    assert picker.search(name) == []
    picker.target.value = "contact"
    picker.search(name)
    picker.results.value = contact_id
    assert picker.value == ("contacts", contact_id)
    changes = []
    picker.on_change(changes.append)
    picker.target.value = "account"  # a new type drops the old pick
    assert picker.value is None and changes == [None]


def test_single_target_hides_the_type_dropdown(conn):
    assert LookupPicker(conn, ["systemuser"]).target.layout.display == "none"


def test_search_errors_show_in_the_picker_instead_of_raising(conn):
    picker = LookupPicker(conn, ["account"])
    picker.mode.value = "contains"
    searcher = picker._searcher()
    # A column the server does not know makes it refuse the query (shared metadata untouched).
    searcher.meta = dataclasses.replace(searcher.meta, primary_name="nosuchcolumn")
    picker.search("x")
    assert "d365nb-error" in picker.status.value


def test_debouncer_flush_waits_for_a_call_in_flight():
    started, release, calls = threading.Event(), threading.Event(), []

    def slow(text):
        started.set()
        release.wait(5)
        calls.append(text)

    debounced = Debouncer(slow, delay=0.0)
    debounced("a")
    started.wait(5)
    threading.Timer(0.05, release.set).start()
    debounced.flush()
    assert calls == ["a"]
