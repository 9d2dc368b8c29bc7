"""``%d365 flow export <flow> --to logicapp [-o file.json] [--arm] [--legacy] [--org URL]`` in
an IPython shell against the sandbox."""

from __future__ import annotations

import json
from typing import Any

import pytest
from export_support import ORG
from IPython.testing import globalipapp

from d365nb.flows import flows


class CellFailed(Exception):
    pass


def cell(shell: Any, source: str) -> Any:
    result = shell.run_cell(source, store_history=True)
    error = result.error_before_exec or result.error_in_exec
    if error is not None:
        raise CellFailed(str(error))
    return result.result


@pytest.fixture
def shell(sandbox_handle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shell = globalipapp.start_ipython() or globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "d365nb")
    shell.user_ns.update(_url=sandbox_handle.url, _token=sandbox_handle.token, org=ORG)
    cell(shell, "%d365 connect {_url} --token {_token} --alias exportcmd")
    cell(shell, "%d365 trigger lead_to_task created leads --every 10s")
    cell(
        shell,
        "%%d365 action lead_to_task create_task\n"
        'create tasks subject="{trigger[subject]}" regardingobjectid=leads({trigger[leadid]})',
    )
    yield shell
    for flow in list(flows.values()):
        flow.stop()
    flows.clear()
    from d365nb.client.registry import connections

    conn = connections.get("exportcmd")
    connections.remove(conn)
    conn.close()
    shell.run_line_magic("unload_ext", "d365nb")


def test_export_returns_the_definition(shell, assert_valid):
    definition = cell(shell, "%d365 flow export lead_to_task --to logicapp --org {org}")
    assert_valid(definition)
    assert definition["actions"]["create_task"]["inputs"]["method"] == "post"


def test_export_writes_a_file_and_says_so(shell, tmp_path, capsys, assert_valid):
    assert cell(shell, "%d365 flow export lead_to_task --to logicapp -o flow.json --arm") is None
    out = capsys.readouterr().out
    assert "exported to flow.json (Logic Apps ARM template, 1 action(s))" in out
    assert "warning: the organisation is http://127.0.0.1" in out  # a sandbox is not deployable
    template = json.loads((tmp_path / "flow.json").read_text())
    assert template["resources"][1]["type"] == "Microsoft.Logic/workflows"
    assert_valid(template)


def test_legacy_export_from_the_magic(shell, assert_valid):
    definition = cell(shell, "%d365 flow export lead_to_task --legacy --org {org}")
    assert "When_a_record_is_created" in assert_valid(definition)["triggers"]


def test_python_steps_are_listed_as_a_warning(shell, capsys, assert_valid):
    cell(shell, "%%d365 action lead_to_task score\nlen(trigger['subject'])")
    assert_valid(cell(shell, "%d365 flow export lead_to_task --org {org}"))
    assert "warning: 1 step(s) exported as placeholders to rewrite before deploying: score" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%d365 flow export ghost --to logicapp", "unknown flow 'ghost'"),
        ("%d365 flow export lead_to_task --to powerautomate", "the only target is logicapp"),
        ("%d365 flow export --to logicapp", "the following arguments are required: flow"),
        ("%d365 flow export lead_to_task --zip", "unrecognized arguments: --zip"),
    ],
)
def test_bad_export_input_is_one_line(shell, line, message):
    with pytest.raises(CellFailed) as err:
        cell(shell, line)
    assert message in str(err.value) and "\n" not in str(err.value).strip()


def test_a_refused_export_writes_no_file(shell, tmp_path):
    cell(shell, '%%d365 action lead_to_task bad\ncreate tasks subject="{secret_var}"')
    with pytest.raises(CellFailed, match="step bad"):
        cell(shell, "%d365 flow export lead_to_task -o out.json --org {org}")
    assert not (tmp_path / "out.json").exists()
