"""Footers, display limit, progress bars and error rendering."""

from __future__ import annotations

import pandas as pd
from tqdm import tqdm as tqdm_class

from d365nb.client.errors import BadRequest, UnknownTable
from d365nb.notebook.display import footer_of, format_footer, remember_footer
from d365nb.notebook.error_lines import redact, render_error
from d365nb.notebook.progress import Progress
from tests.support.shells import run_cell


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _open_bars() -> int:
    return len(getattr(tqdm_class, "_instances", ()))


def test_footer_text():
    assert (
        format_footer(1, pages=1, elapsed=0.213, alias="sandbox")
        == "1 row · 1 page · 0.21 s · sandbox"
    )
    assert format_footer(1500, pages=2) == "1,500 rows · 2 pages"


def test_footer_belongs_to_the_returned_object_only():
    frame = remember_footer(pd.DataFrame({"a": [1, 2]}), "2 rows")
    assert footer_of(frame) == "2 rows"
    assert footer_of(frame.head(1)) is None


def test_progress_stays_hidden_for_quick_work():
    clock = Clock()
    progress = Progress("leads", after=1.0, clock=clock)
    progress(100, 1000)
    clock.now = 0.5
    progress(500, 1000)
    progress.close()
    assert not progress.shown


def test_progress_appears_after_the_threshold_and_closes_completely(capsys):
    clock = Clock()
    before = _open_bars()
    with Progress("leads", after=1.0, clock=clock) as progress:
        progress(100, 1000)
        clock.now = 1.5
        progress(600, 1000)
        assert progress.shown and _open_bars() == before + 1
        assert progress._bar.n == 600 and progress._bar.total == 1000
    assert _open_bars() == before
    assert "leads" in capsys.readouterr().err


def test_progress_disabled_never_shows():
    clock = Clock()
    progress = Progress("leads", after=0.0, enabled=False, clock=clock)
    clock.now = 10
    progress(1, 2)
    assert not progress.shown


def test_long_read_shows_progress_that_completes(shell, d365, magic, capsys):
    magic.progress_after = 0.0
    magic.page_size = 200
    before = _open_bars()
    frame = d365(shell, "list leads --select lastname --pages 3")
    assert len(frame) == 600
    err = capsys.readouterr().err
    assert "leads" in err and "rows" in err
    assert _open_bars() == before


def test_bulk_write_shows_progress_that_completes(shell, d365, magic, capsys):
    magic.progress_after = 0.0
    shell.user_ns["many"] = pd.DataFrame({"subject": [f"progress {i}" for i in range(120)]})
    before = _open_bars()
    result = d365(shell, "create tasks --from many")
    assert result["error"].isna().all()
    assert "tasks" in capsys.readouterr().err
    assert _open_bars() == before


def test_show_progress_off_prints_no_bar(shell, d365, magic, capsys):
    magic.progress_after = 0.0
    run_cell(shell, "%config D365Magic.show_progress = False")
    d365(shell, "list leads --select lastname --top 5")
    assert "leads" not in capsys.readouterr().err


def test_display_limit_truncates_the_shown_rows(shell, d365):
    run_cell(shell, "%config D365Magic.display_limit = 4")
    frame = d365(shell, "list leads --select lastname --top 30")
    text = shell.display_formatter.format(frame)[0]["text/plain"]
    assert len(frame) == 30
    assert "..." in text and text.count("\n") < 12
    assert text.endswith("nbtest")


def test_error_is_one_line_with_code_and_hint():
    err = UnknownTable("no table named 'leadz'; did you mean leads?")
    assert render_error(err) == (
        "no table named 'leadz'; did you mean leads? - %d365 tables lists the tables"
    )
    bad = BadRequest("Expression expected at position 13.", status=400, code="0x80060888",
                     method="GET", url="http://x/api/data/v9.2/leads?$filter=a")  # fmt: skip
    assert render_error(bad) == "Expression expected at position 13. (HTTP 400, code 0x80060888)"
    debug = render_error(bad, debug=True).splitlines()
    assert (
        debug[1] == "request: GET http://x/api/data/v9.2/leads?$filter=a; Authorization: Bearer ***"
    )


def test_error_notes_join_the_one_line_before_the_generic_hint():
    err = UnknownTable("no table named 'leadz'")
    err.add_note("did you mean\nleads?")
    assert render_error(err) == (
        "no table named 'leadz' - did you mean leads? - %d365 tables lists the tables"
    )


def test_redact_hides_bearer_tokens_and_given_secrets():
    text = redact("Authorization: Bearer abc.def-123 and s3cr3t-value", ("s3cr3t-value",))
    assert text == "Authorization: Bearer *** and ***"
