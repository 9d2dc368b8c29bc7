"""Loading, unloading and self-documentation of ``%d365``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from IPython.core.error import UsageError

from d365nb.notebook.args import COMMANDS, help_text
from tests.support.shells import CellFailed

HEAVY = ("pandas", "httpx", "d365nb.sandbox", "d365nb.client.api", "tqdm")


def test_load_ext_imports_no_heavy_module():
    code = (
        "import sys, json\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'd365nb')\n"
        f"print(json.dumps({{m: m in sys.modules for m in {list(HEAVY)!r}}}))\n"
        "print('d365' in ip.magics_manager.magics['line'], 'd365' in ip.magics_manager.magics['cell'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    ).stdout.splitlines()
    assert json.loads(out[0]) == dict.fromkeys(HEAVY, False)
    assert out[1] == "True True"


def test_line_and_cell_magic_registered_and_removed_by_unload(bare_shell):
    magics = bare_shell.magics_manager.magics
    assert "d365" in magics["line"] and "d365" in magics["cell"]
    bare_shell.run_line_magic("unload_ext", "d365nb")
    assert "d365" not in magics["line"] and "d365" not in magics["cell"]
    assert "%d365" not in bare_shell.strdispatchers["complete_command"].strs
    bare_shell.run_line_magic("load_ext", "d365nb")  # the fixture unloads again
    assert "d365" in magics["line"]


def test_magic_docstring_documents_every_command(bare_shell):
    doc = bare_shell.find_line_magic("d365").__doc__
    for name in COMMANDS:
        assert f"  {name} " in doc
    assert '%d365 list leads --filter "statuscode eq 1"' in doc


@pytest.mark.parametrize("name", [n for n, c in COMMANDS.items() if not c.external])
def test_help_for_each_command_has_usage_and_example(name):
    text = help_text(name)
    assert text.startswith(f"usage: %d365 {name}")
    assert "examples:" in text


def test_help_command_prints_one_command(bare_shell, d365, capsys):
    d365(bare_shell, "help list")
    out = capsys.readouterr().out
    assert "usage: %d365 list" in out and "--filter F" in out and "--all" in out


def test_dash_dash_help_prints_usage_and_does_nothing_else(bare_shell, d365, capsys):
    assert d365(bare_shell, "create --help") is None
    assert "usage: %d365 create" in capsys.readouterr().out


def test_unknown_command_suggests_the_closest(bare_shell, d365):
    with pytest.raises(CellFailed) as failed:
        d365(bare_shell, "lsit leads")
    assert isinstance(failed.value.error, UsageError)
    assert "unknown command 'lsit'. Did you mean: list?" in str(failed.value)


def test_missing_argument_shows_the_usage_line(bare_shell, d365):
    with pytest.raises(CellFailed) as failed:
        d365(bare_shell, "get leads")
    text = str(failed.value)
    assert "the following arguments are required: id" in text
    assert "usage: %d365 get" in text


def test_unbalanced_quote_is_one_line_error(bare_shell, d365):
    with pytest.raises(CellFailed, match="No closing quotation"):
        d365(bare_shell, 'list leads --filter "statuscode eq 1')


def test_not_connected_says_how_to_connect(bare_shell, d365):
    from d365nb.client.registry import connections

    # Other tests may have left connections open: set them aside for this test.
    saved, current = connections.items(), connections.current
    for alias, _ in saved:
        connections.remove(alias)
    try:
        with pytest.raises(CellFailed, match="not connected; run %d365 connect sandbox"):
            d365(bare_shell, "list leads")
    finally:
        for alias, conn in saved:
            connections.add(conn, alias, make_current=conn is current)


def test_flow_commands_dispatch_or_say_unavailable(bare_shell, d365):
    try:
        import d365nb.notebook.flow_commands  # noqa: F401
    except ModuleNotFoundError:
        with pytest.raises(CellFailed, match="flows are not available"):
            d365(bare_shell, "flow status x")
    else:
        with pytest.raises(CellFailed) as failed:
            d365(bare_shell, "flow status no_such_flow_here")
        assert "no_such_flow_here" in str(failed.value)


def test_cell_body_refused_for_a_line_only_command(bare_shell, d365):
    with pytest.raises(CellFailed, match="takes no cell body"):
        d365(bare_shell, "tables", cell="x")


def test_question_mark_shows_the_generated_help(bare_shell, capsys):
    bare_shell.run_cell("%d365?")
    out = capsys.readouterr().out
    assert "commands:" in out and "changes" in out and "examples:" in out


def test_misspelt_option_suggests_the_right_one(bare_shell, d365):
    with pytest.raises(CellFailed) as failed:
        d365(bare_shell, 'list leads --fliter "statuscode eq 1"')
    assert "unrecognized arguments: --fliter" in str(failed.value)
    assert "did you mean --filter?" in str(failed.value)
