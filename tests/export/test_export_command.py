"""``%d365 flow export <flow> --to logicapp [-o file.json] [--arm] [--legacy] [--org URL]`` in
an IPython shell against the sandbox."""

from __future__ import annotations

import json

import pytest

from tests.support.export import ORG
from tests.support.flows import stop_flows
from tests.support.shells import CellFailed, connected, run_cell


@pytest.fixture
def shell(bare_shell, sandbox_handle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with connected(bare_shell, sandbox_handle, "exportcmd", org=ORG):
        run_cell(bare_shell, "%d365 trigger lead_to_task created leads --every 10s")
        run_cell(
            bare_shell,
            "%%d365 action lead_to_task create_task\n"
            'create tasks subject="{trigger[subject]}" regardingobjectid=leads({trigger[leadid]})',
        )
        yield bare_shell
        stop_flows()


def test_export_returns_the_definition(shell, assert_valid):
    definition = run_cell(shell, "%d365 flow export lead_to_task --to logicapp --org {org}")
    assert_valid(definition)
    assert definition["actions"]["create_task"]["inputs"]["method"] == "post"


def test_export_writes_a_file_and_says_so(shell, tmp_path, capsys, assert_valid):
    command = "%d365 flow export lead_to_task --to logicapp -o flow.json --arm --org {org}"
    assert run_cell(shell, command) is None
    out = capsys.readouterr().out
    assert "exported to flow.json (Logic Apps ARM template, 1 action(s))" in out
    assert "warning" not in out
    template = json.loads((tmp_path / "flow.json").read_text())
    assert template["resources"][1]["type"] == "Microsoft.Logic/workflows"
    assert_valid(template)


def test_legacy_export_from_the_magic(shell, assert_valid):
    definition = run_cell(shell, "%d365 flow export lead_to_task --legacy --org {org}")
    assert "When_a_record_is_created" in assert_valid(definition)["triggers"]


def test_a_sandbox_flow_needs_org(shell, tmp_path):
    with pytest.raises(CellFailed, match="runs on a sandbox: http://127.0.0.1"):
        run_cell(shell, "%d365 flow export lead_to_task -o flow.json")
    assert not (tmp_path / "flow.json").exists()


def test_service_principal_connection_from_the_magic(shell, assert_valid):
    template = run_cell(
        shell, "%d365 flow export lead_to_task --arm --connection service-principal --org {org}"
    )
    values = template["resources"][0]["properties"]["parameterValues"]
    assert values["token:grantType"] == "client_credentials"
    assert_valid(template)


def test_python_steps_are_listed_as_a_warning(shell, capsys, assert_valid):
    run_cell(shell, "%%d365 action lead_to_task score\nlen(trigger['subject'])")
    with pytest.raises(CellFailed, match="step score is Python .* --placeholders"):
        run_cell(shell, "%d365 flow export lead_to_task --org {org}")
    assert_valid(run_cell(shell, "%d365 flow export lead_to_task --org {org} --placeholders"))
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
        run_cell(shell, line)
    assert message in str(err.value) and "\n" not in str(err.value).strip()


def test_a_refused_export_writes_no_file(shell, tmp_path):
    run_cell(shell, '%%d365 action lead_to_task bad\ncreate tasks subject="{secret_var}"')
    with pytest.raises(CellFailed, match="step bad"):
        run_cell(shell, "%d365 flow export lead_to_task -o out.json --org {org}")
    assert not (tmp_path / "out.json").exists()
