"""Options: ``%config D365Magic.x``, ``[tool.d365nb]`` in pyproject.toml, ``D365NB_*`` variables."""

from __future__ import annotations

import pytest

from d365nb.notebook.config import env_options, find_pyproject, pyproject_options
from tests.support.shells import run_cell


def _reload(shell):
    from d365nb.notebook.extension import _LOADED

    shell.run_line_magic("unload_ext", "d365nb")
    shell.run_line_magic("load_ext", "d365nb")
    return _LOADED[id(shell)]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with a pyproject.toml; the test runs from a subfolder of it."""
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n\n[tool.d365nb]\npage_size = 250\nshow_progress = false\n"
        "flows_dir = 'ignored: not a magic option'\n",
        encoding="utf-8",
    )
    sub = tmp_path / "notebooks"
    sub.mkdir()
    monkeypatch.chdir(sub)
    for name in [k for k in __import__("os").environ if k.startswith("D365NB_")]:
        monkeypatch.delenv(name)
    return tmp_path


def test_pyproject_found_from_a_subfolder(project):
    assert find_pyproject() == project / "pyproject.toml"
    options, _ = pyproject_options()
    assert options["page_size"] == 250


def test_dict_option_and_magic_subtable_are_read_other_subtables_ignored(
    project, bare_shell, capsys
):
    (project / "pyproject.toml").write_text(
        "[tool.d365nb]\nconnect_options = { timeout = 45 }\n\n"
        "[tool.d365nb.magic]\npreview_rows = 3\n\n[tool.d365nb.flows]\ndir = 'x'\n",
        encoding="utf-8",
    )
    magic = _reload(bare_shell)
    assert magic.connect_options == {"timeout": 45} and magic.preview_rows == 3
    assert "ignoring" not in capsys.readouterr().out


def test_env_options_are_named_after_traits():
    assert env_options({"D365NB_PAGE_SIZE": "5", "OTHER": "x"}) == {"page_size": "5"}


def test_pyproject_options_apply_at_load(project, bare_shell):
    magic = _reload(bare_shell)
    assert magic.page_size == 250 and magic.show_progress is False


def test_environment_overrides_pyproject(project, bare_shell, monkeypatch):
    monkeypatch.setenv("D365NB_PAGE_SIZE", "300")
    monkeypatch.setenv("D365NB_SHORT_ERRORS", "false")
    magic = _reload(bare_shell)
    assert magic.page_size == 300 and magic.short_errors is False


def test_bad_value_is_reported_in_one_line_and_skipped(project, bare_shell, monkeypatch, capsys):
    monkeypatch.setenv("D365NB_DISPLAY_LIMIT", "lots")
    magic = _reload(bare_shell)
    assert magic.display_limit == 20
    out = capsys.readouterr().out
    assert "ignoring option display_limit='lots' from environment" in out


def test_ipython_config_wins_over_environment(project, bare_shell, monkeypatch):
    monkeypatch.setenv("D365NB_PAGE_SIZE", "300")
    bare_shell.config.D365Magic.page_size = 77
    try:
        magic = _reload(bare_shell)
        assert magic.page_size == 77
    finally:
        del bare_shell.config["D365Magic"]


def test_percent_config_changes_how_list_pages(shell, d365, magic):
    run_cell(shell, "%config D365Magic.page_size = 40")
    assert magic.page_size == 40
    frame = d365(shell, "list leads --select lastname --pages 2")
    assert (len(frame), frame.attrs["pages"]) == (80, 2)


def test_default_alias_picks_the_connection(shell, d365, sandbox):
    import d365nb

    other = d365nb.connect(sandbox.url, token=sandbox.token, alias="nbother")
    try:
        run_cell(shell, "%d365 use nbtest")
        run_cell(shell, "%config D365Magic.default_alias = 'nbother'")
        frame = d365(shell, "list leads --select lastname --top 1")
        data, _ = shell.display_formatter.format(frame)
        assert data["text/plain"].endswith("· nbother")
    finally:
        from d365nb.client.registry import connections

        connections.remove(other)
        other.close()


def test_connect_options_refuse_secrets_without_echoing_them(project, bare_shell, capsys, caplog):
    (project / "pyproject.toml").write_text(
        "[tool.d365nb]\nconnect_options = { auth = { client_secret = 'pp-s3cret-1' } }\n",
        encoding="utf-8",
    )
    magic = _reload(bare_shell)
    out = capsys.readouterr().out
    assert magic.connect_options == {}
    assert "ignoring option connect_options from" in out and "client_secret" in out
    assert "pp-s3cret-1" not in out
    # %config reports a refused value through IPython's log rather than raising.
    run_cell(bare_shell, "%config D365Magic.connect_options = {'token': 'cfg-s3cret-2'}")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "must not hold secrets (token)" in logged
    out = capsys.readouterr()
    assert "cfg-s3cret-2" not in out.out + out.err + logged
    assert magic.connect_options == {}
