"""``d365nb flow export <notebook> [--flow F] (--org URL | --sandbox) [--target URL] [--legacy]
[--arm] [-o file]``: the export from a terminal (e.g. a deployment pipeline)."""

from __future__ import annotations

import json

import nbformat
import pytest

from d365nb.cli import main
from tests.support.export import ORG


def notebook(path, *flows: str):
    nb = nbformat.v4.new_notebook()
    for name in flows:
        nb.cells.append(nbformat.v4.new_code_cell(f"%d365 trigger {name} created leads --every 5m"))
        nb.cells.append(
            nbformat.v4.new_code_cell(
                f"%%d365 action {name} create_task\n"
                'create tasks subject="{trigger[subject]}" regardingobjectid=leads({trigger[leadid]})'
            )
        )
    nbformat.write(nb, path)
    return path


def test_export_prints_a_valid_definition(
    tmp_path, sandbox_handle, monkeypatch, capsys, assert_valid
):
    monkeypatch.setenv("D365NB_TOKEN", sandbox_handle.token)
    nb = notebook(tmp_path / "flows.ipynb", "lead_to_task")
    assert main(["flow", "export", str(nb), "--org", sandbox_handle.url, "--target", ORG]) == 0
    captured = capsys.readouterr()
    definition = assert_valid(json.loads(captured.out))
    trigger = definition["triggers"]["When_a_row_is_added,_modified_or_deleted"]
    assert trigger["inputs"]["headers"]["organization"] == "@parameters('organization')"
    assert definition["parameters"]["organization"]["defaultValue"] == ORG
    assert captured.err == ""  # declarative only, real target: nothing to warn about
    assert not (tmp_path / ".d365nb").exists()  # exporting leaves the notebook's store alone
    assert sandbox_handle.token not in captured.out


def test_export_to_a_file_as_arm_with_the_legacy_trigger(
    tmp_path, sandbox_handle, monkeypatch, capsys, assert_valid
):
    monkeypatch.setenv("D365NB_TOKEN", sandbox_handle.token)
    nb = notebook(tmp_path / "flows.ipynb", "a", "b")
    out = tmp_path / "b.json"
    args = ["flow", "export", str(nb), "--org", sandbox_handle.url, "--flow", "b"]
    assert main([*args, "--target", ORG, "--legacy", "--arm", "-o", str(out)]) == 0
    assert "flow b exported to" in capsys.readouterr().err
    template = json.loads(out.read_text())
    assert "When_a_record_is_created" in assert_valid(template)["triggers"]


def test_a_sandbox_export_needs_a_target(tmp_path, sandbox_handle, monkeypatch, capsys):
    monkeypatch.setenv("D365NB_TOKEN", sandbox_handle.token)
    nb = notebook(tmp_path / "flows.ipynb", "lead_to_task")
    assert main(["flow", "export", str(nb), "--org", sandbox_handle.url]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a loopback address no Logic App can reach" in err and "--target" in err
    assert "\n" not in err


@pytest.mark.parametrize(
    ("flows", "extra", "message"),
    [
        (("a", "b"), [], "defines 2 flows (a, b): choose one with --flow"),
        (("a",), ["--flow", "ghost"], "unknown flow 'ghost' in flows.ipynb"),
        ((), [], "flows.ipynb defines no flows"),
    ],
)
def test_bad_export_input_is_one_line(
    tmp_path, sandbox_handle, monkeypatch, capsys, flows, extra, message
):
    monkeypatch.setenv("D365NB_TOKEN", sandbox_handle.token)
    nb = notebook(tmp_path / "flows.ipynb", *flows)
    assert main(["flow", "export", str(nb), "--org", sandbox_handle.url, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("d365nb flow export: ") and message in err and "\n" not in err
