"""`%d365 aggregate` and the `%%d365 fetchxml` cell, against the sandbox over loopback HTTP;
the last test runs them in a real kernel (nbclient), plot included.

Aggregation as Microsoft documents it for the Web API
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/aggregate-data) and
FetchXML paging (https://learn.microsoft.com/power-apps/developer/data-platform/fetchxml/page-results).
"""

from __future__ import annotations

import sys

import nbformat
import pandas as pd
import pytest
from IPython.core.error import UsageError

from tests.support.notebooks import kernel_client
from tests.support.shells import CellFailed as CellError
from tests.support.shells import run_cell as run


def _count(api, flt: str | None = None) -> int:
    params = {"$filter": flt} if flt else {}
    return int(api.get("leads/$count", params=params).text.lstrip("\ufeff"))


def test_aggregate_as_the_issue_writes_it(shell, api):
    frame = run(
        shell,
        '%d365 aggregate leads --groupby statuscode --agg "n=count(),total=sum(estimatedvalue),'
        "avg_x=avg(estimatedvalue),u=countdistinct(ownerid),lo=min(estimatedvalue),"
        'hi=max(estimatedvalue)" -o by_status',
    )
    assert shell.user_ns["by_status"] is frame
    assert list(frame.columns) == ["statuscode", "n", "total", "avg_x", "u", "lo", "hi"]
    for _, row in frame.iterrows():
        assert row["n"] == _count(api, f"statuscode eq {row['statuscode']}")
    assert (frame["lo"] <= frame["avg_x"]).all() and (frame["avg_x"] <= frame["hi"]).all()


def test_filter_and_labels(shell, api):
    shell.user_ns["state"] = 0
    frame = run(shell, '%d365 aggregate leads --groupby statuscode --agg "n=count()" '
                       '--filter "statecode eq {state}" --labels')  # fmt: skip
    assert set(frame["statuscode"]) == {"New", "Contacted"}
    assert int(frame["n"].sum()) == _count(api, "statecode eq 0")


def test_filter_accepts_a_choice_label(shell, api):
    frame = run(shell, '%d365 aggregate leads --agg "n=count()" --filter "statuscode eq \'New\'"')
    assert int(frame["n"].iloc[0]) == _count(api, "statuscode eq 1")


def test_bad_agg_is_one_line_with_the_closest_name_and_no_request(shell):
    from d365nb.client.registry import connections

    run(shell, '%d365 aggregate leads --agg "n=count()"')  # metadata cached
    conn = connections.get("nbtest")
    before = conn.requests_sent
    with pytest.raises(CellError) as info:
        run(shell, '%d365 aggregate leads --groupby statuscod --agg "n=count()"')
    assert isinstance(info.value.error, UsageError)
    text = str(info.value.error)
    assert text.startswith("%d365 aggregate:") and "did you mean statuscode" in text
    assert "\n" not in text
    with pytest.raises(CellError) as info:
        run(shell, '%d365 aggregate leads --agg "n=total(estimatedvalue)"')
    assert "unknown method 'total'" in str(info.value.error)
    assert conn.requests_sent == before


def test_neither_groupby_nor_agg_is_a_usage_error(shell):
    with pytest.raises(CellError) as info:
        run(shell, "%d365 aggregate leads")
    assert "--groupby, --agg or both" in str(info.value.error)


def test_plot_draws_with_pandas(shell):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.close("all")
    frame = run(shell, '%d365 aggregate leads --groupby statuscode --agg "n=count()" --plot bar')
    figure = plt.gcf()
    bars = figure.axes[0].patches
    assert len(bars) == len(frame)
    assert sorted(b.get_height() for b in bars) == sorted(float(v) for v in frame["n"])
    plt.close("all")


def test_plot_without_matplotlib_prints_a_hint_and_shows_the_table(shell, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    frame = run(shell, '%d365 aggregate leads --groupby statuscode --agg "n=count()" --plot pie')
    assert isinstance(frame, pd.DataFrame) and len(frame) > 1
    out = capsys.readouterr().out
    hint = out.splitlines()[0]
    assert (
        hint
        == "--plot needs matplotlib: pip install 'd365nb[plot]' (the table is shown without it)"
    )
    assert "Traceback" not in out
    assert f"{len(frame)} rows" in out  # the table (and its footer) is still shown


def test_fetchxml_cell_with_all_pages(shell, api):
    frame = run(
        shell,
        "%%d365 fetchxml -o rows --all\n"
        "<fetch count='500'><entity name='lead'><attribute name='fullname'/>"
        "<order attribute='leadid'/></entity></fetch>",
    )
    assert shell.user_ns["rows"] is frame
    assert len(frame) == _count(api) and frame["leadid"].is_unique
    assert frame.attrs["pages"] > 1


def test_fetchxml_cell_first_page_only_says_more_match(shell):
    frame = run(shell, "%%d365 fetchxml\n<fetch count='5'><entity name='lead'>"
                       "<attribute name='fullname'/></entity></fetch>")  # fmt: skip
    from d365nb.notebook.display import footer_of

    assert len(frame) == 5
    assert "more: --all" in footer_of(frame)


def test_fetchxml_cell_values_are_xml_escaped(shell, api):
    """A Python value can never change the query's structure: quotes are escaped."""
    shell.user_ns["name"] = "O'Neil"
    frame = run(shell, "%%d365 fetchxml\n<fetch><entity name='lead'><attribute name='lastname'/>"
                       "<filter><condition attribute='lastname' operator='eq' value='{name}'/>"
                       "</filter></entity></fetch>")  # fmt: skip
    assert len(frame) == _count(api, "lastname eq 'O''Neil'") > 0
    assert set(frame["lastname"]) == {"O'Neil"}


def test_fetchxml_link_entity_columns(shell):
    frame = run(shell, "%%d365 fetchxml\n<fetch top='20'><entity name='contact'>"
                       "<attribute name='fullname'/><link-entity name='account' from='accountid' "
                       "to='parentcustomerid' alias='acc'><attribute name='name'/></link-entity>"
                       "</entity></fetch>")  # fmt: skip
    assert "acc.name" in frame.columns and frame["acc.name"].notna().all()


def test_fetchxml_without_a_body_or_with_bad_xml(shell):
    with pytest.raises(CellError) as info:
        run(shell, "%d365 fetchxml")
    assert "cell body" in str(info.value.error)
    with pytest.raises(CellError) as info:
        run(shell, "%%d365 fetchxml\n<fetch><entity name='lead'>")
    text = str(info.value.error)
    assert "not well-formed XML" in text and "\n" not in text


def test_help_lists_both_commands(shell, capsys):
    run(shell, "%d365 help aggregate")
    assert "--plot {bar,line,pie}" in capsys.readouterr().out
    run(shell, "%d365 fetchxml --help")
    assert "--all" in capsys.readouterr().out


@pytest.mark.slow
def test_in_a_real_kernel_with_a_plot(tmp_path):
    """nbclient runs a notebook: connect, aggregate with --plot bar (a PNG in the output),
    and a fetchxml cell."""
    pytest.importorskip("matplotlib")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext d365nb\n%d365 connect sandbox"),
        nbformat.v4.new_code_cell(
            '%d365 aggregate leads --groupby statuscode --agg "n=count()" --plot bar -o agg'
        ),
        nbformat.v4.new_code_cell("print(int(agg['n'].sum()), list(agg.columns))"),
        nbformat.v4.new_code_cell(
            "%%d365 fetchxml -o few\n<fetch top='3'><entity name='lead'>"
            "<attribute name='fullname'/></entity></fetch>"
        ),
        nbformat.v4.new_code_cell("print(len(few))"),
    ]
    client = kernel_client(nb, tmp_path, timeout=180)
    client.execute()
    plot_outputs = nb.cells[1].outputs
    assert any("image/png" in o.get("data", {}) for o in plot_outputs)
    assert any("n" in o.get("data", {}).get("text/plain", "") for o in plot_outputs)
    printed = "".join(o.get("text", "") for o in nb.cells[2].outputs)
    assert printed.startswith("1200 ") and "['statuscode', 'n']" in printed
    assert "".join(o.get("text", "") for o in nb.cells[4].outputs).strip() == "3"
