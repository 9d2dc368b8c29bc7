"""The analyst's magics (issue 14): flat expand, query cells, --save/--tz, write-back from a
frame with a preview, filter hints, help for every verb, session basics. Each runs through an
IPython shell connected to a sandbox over loopback HTTP.

Filters: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/filter-rows
Conditional updates: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.support.records import dataverse_ascending
from tests.support.refusals import one_line_refusal
from tests.support.shells import CellFailed, connected


@pytest.fixture
def fresh(bare_shell, empty_sandbox):
    """The shell on a fresh, empty sandbox (writes do not touch the shared one) with 3 leads."""
    with connected(bare_shell, empty_sandbox, "fresh") as shell:
        from d365nb.client.registry import connections

        conn = connections.get("fresh")
        ids = [
            conn.create("leads", {"lastname": f"Fresh{i}", "subject": f"s{i}"}) for i in range(3)
        ]
        shell.user_ns["_ids"] = ids
        yield shell, conn, ids


def test_expand_gives_dotted_columns_and_explode_rows(shell, d365):
    df = d365(
        shell,
        "list contacts --select fullname --expand parentcustomerid_account($select=name) --top 3",
    )
    assert "parentcustomerid_account.name" in df.columns
    assert not any(isinstance(v, dict) for v in df["parentcustomerid_account.name"])
    query = (
        "list accounts --select name --expand contact_customer_accounts($select=fullname) "
        '--orderby "name asc" --top 6'
    )
    nested = d365(shell, query)
    rows = d365(shell, query + " --explode")
    assert "contact_customer_accounts.fullname" in rows.columns
    # One row per contact; an account without contacts keeps one row.
    assert len(rows) == sum(max(len(v), 1) for v in nested["contact_customer_accounts"])
    assert rows.index.has_duplicates


def test_query_cell_body_is_the_filter_and_option_lines(shell, d365):
    cell = (
        "# leads still new, made this year or later\n"
        "statuscode eq 'New'\n"
        "  and createdon ge 2000-01-01T00:00:00Z\n"
        '--orderby "lastname asc"\n'
        "--select lastname,statuscode\n"
    )
    df = d365(shell, "list leads --top 5 --labels", cell=cell)
    assert len(df) == 5 and list(df.columns) == ["lastname", "statuscode"]
    assert set(df["statuscode"].astype(str)) == {"New"}  # the label was sent as its value
    assert list(df["lastname"]) == dataverse_ascending(df["lastname"])
    with pytest.raises(CellFailed, match="give the filter once"):
        d365(shell, 'list leads --filter "statuscode eq 1"', cell="statuscode eq 2")


def test_an_empty_filter_is_refused_not_all_rows(shell, d365):
    with pytest.raises(CellFailed, match="--filter is empty"):
        d365(shell, 'list leads --filter "  "')


@pytest.mark.parametrize(
    ("flt", "hint"),
    [
        ("statuscode == 1", "OData has no ==: write eq"),
        ("createdon gt 12/31/2025", "2025-12-31T00:00:00Z (not 12/31/2025)"),
        ("createdon gt '2025-12-31'", "not quoted in OData: createdon gt 2025-12-31T00:00:00Z"),
        ("lastnam eq 'x'", "did you mean lastname"),
        ("statuscode eq 'Nope'", "statuscode is a choice: compare its value, one of 1 (New)"),
        ("lastname eq Smith", "text values are quoted in OData: lastname eq 'Smith'"),
    ],
)
def test_filter_mistakes_get_a_one_line_hint(shell, d365, flt, hint):
    assert hint in one_line_refusal(lambda: d365(shell, f'list leads --filter "{flt}"'))


def test_save_and_tz(shell, d365, tmp_path):
    pytest.importorskip("openpyxl")
    pytest.importorskip("pyarrow")
    out = tmp_path / "leads.xlsx"
    shell.user_ns["_out"] = str(out)
    df = d365(shell, "list leads --select lastname,createdon --top 4 --save {_out}")
    assert str(df["createdon"].dt.tz) == "UTC"
    back = pd.read_excel(out, index_col=0)
    assert list(back["lastname"]) == list(df["lastname"])
    # Excel has no zones: the wall time in the frame's zone (UTC here) is written.
    assert list(back["createdon"]) == list(df["createdon"].dt.tz_localize(None))

    naive = d365(shell, "list leads --select createdon --top 2 --tz naive")
    assert naive["createdon"].dt.tz is None
    shell.run_line_magic("config", "D365Magic.tz = 'Asia/Tokyo'")
    tokyo = d365(shell, "list leads --select createdon --top 2")
    assert str(tokyo["createdon"].dt.tz) == "Asia/Tokyo"
    assert list(tokyo["createdon"]) == list(
        d365(shell, "list leads --select createdon --top 2 --tz UTC")["createdon"]
    )

    parquet = tmp_path / "c.parquet"
    shell.user_ns["_pq"] = str(parquet)
    d365(
        shell,
        "changes leads --select lastname --save {_pq}",
    )
    assert len(pd.read_parquet(parquet)) > 0
    with pytest.raises(CellFailed, match=r"use a \.csv, \.parquet or \.xlsx"):
        d365(shell, "list leads --top 1 --save out.txt")


def test_update_from_a_read_frame_previews_then_sends_only_changes(fresh, d365, capsys):
    shell, conn, ids = fresh
    df = d365(shell, "list leads --select lastname,subject,createdon -o edited")
    df.loc[ids[0], "subject"] = "new subject"
    df.loc[ids[1], "createdon"] = pd.Timestamp("2001-01-01", tz="UTC")
    capsys.readouterr()
    preview = d365(shell, "update leads --from edited")
    out = capsys.readouterr().out
    assert "skipped 1 column (read-only: createdon); 1 edited cell in them not sent" in out
    assert "1 changed cell in 1 lead records would be updated; nothing changed" in out
    assert list(preview["column"]) == ["subject"] and list(preview["new"]) == ["new subject"]
    assert conn.get("leads", ids[0], select="subject")["subject"] == "s0"  # nothing written

    result = d365(shell, "update leads --from edited --yes")
    assert list(result.index) == [ids[0]] and result["error"].isna().all()
    assert conn.get("leads", ids[0], select="subject")["subject"] == "new subject"
    capsys.readouterr()
    assert d365(shell, "update leads --from edited --yes") is None
    assert "no changed cells" in capsys.readouterr().out


def test_every_verb_answers_help(shell, d365, capsys):
    from d365nb.notebook.args import COMMANDS

    for name in COMMANDS:
        d365(shell, f"{name} --help")
        first = capsys.readouterr().out
        d365(shell, f"help {name}")
        second = capsys.readouterr().out
        assert name in first and first.strip(), name
        assert second.strip(), name
    d365(shell, "trigger --help")
    assert "--every" in capsys.readouterr().out
    d365(shell, "help filter")
    text = capsys.readouterr().out
    for word in ("eq ne gt ge lt le", "contains", "LastXDays", "createdon ge 2026-01-01T00:00:00Z"):
        assert word in text


def test_every_help_filter_example_runs(shell, d365):
    """The examples `%d365 help filter` shows are valid filters (the sandbox parses them as
    Dataverse documents them)."""
    from d365nb.client.registry import connections
    from d365nb.notebook.args import FILTER_EXAMPLES

    shell.user_ns["user_id"] = connections.get("nbtest").whoami()["UserId"]
    for _, flt, _ in FILTER_EXAMPLES:
        d365(shell, "list leads --top 1", cell=flt)


def test_truncated_result_says_so_with_the_count(shell, d365, magic):
    magic.page_size = 100
    magic.max_pages = 1
    one = d365(shell, "list leads --select lastname")
    count = one.attrs["count"]
    assert len(one) == 100 and one.attrs["truncated"] and count > 100
    footer = shell.display_formatter.format(one)[0]["text/plain"].splitlines()[-1]
    assert f"first 100 of {count:,} rows · more: --all or --pages N" in footer
    every = d365(shell, "list leads --select lastname --all")
    assert len(every) == count and not every.attrs["truncated"]


def test_magic_and_python_api_read_the_same_by_default(shell, d365, magic):
    from d365nb.client.registry import connections

    magic.page_size = 200  # several pages
    via_magic = d365(shell, "list leads --select lastname")
    via_api = connections.get("nbtest").list("leads", select="lastname", page_size=200)
    assert len(via_magic) == len(via_api) and via_magic.attrs["pages"] > 1
    assert not via_magic.attrs["truncated"]


def test_python_api_warns_when_max_pages_cuts_the_read(shell):
    from d365nb.client.api import TruncatedRead
    from d365nb.client.registry import connections

    with pytest.warns(TruncatedRead, match=r"50 of [0-9,]+ rows"):
        connections.get("nbtest").list("leads", select="lastname", page_size=50, max_pages=1)


def test_get_with_expand_shows_the_related_fields_flat(shell, d365):
    from d365nb.client.registry import connections

    conn = connections.get("nbtest")
    [contact_id] = conn.list(
        "contacts", select="fullname", filter="_parentcustomerid_value ne null", top=1
    ).index
    shell.user_ns["cid"] = contact_id
    frame = d365(
        shell,
        "get contacts {cid} --select fullname --expand parentcustomerid_account($select=name)",
    )
    expected = conn.get("contacts", contact_id, expand="parentcustomerid_account($select=name)")
    assert (
        frame.loc["parentcustomerid_account.name", "value"]
        == (expected["parentcustomerid_account"]["name"])
    )
