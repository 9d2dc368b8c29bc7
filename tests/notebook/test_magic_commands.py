"""Every ``%d365`` command against the sandbox over loopback HTTP, checked with raw HTTP reads."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest
from IPython.core.error import UsageError

from tests.support.records import dataverse_ascending
from tests.support.shells import CellFailed, run_cell


def _tag() -> str:
    return f"nb-{uuid.uuid4().hex[:10]}"


def _tasks(api, subject_prefix: str) -> list[dict]:
    response = api.get(
        "tasks",
        params={
            "$filter": f"startswith(subject,'{subject_prefix}')",
            "$select": "subject,percentcomplete,prioritycode,scheduledend",
        },
    )
    response.raise_for_status()
    return response.json()["value"]


def test_list_exactly_as_the_issue_writes_it(shell, d365, api):
    frame = run_cell(shell, '%d365 list leads --filter "statuscode eq 1"')
    expected = api.get("leads", params={"$filter": "statuscode eq 1", "$select": "leadid"}).json()
    assert isinstance(frame, pd.DataFrame)
    assert frame.index.name == "leadid"
    assert set(frame.index) == {row["leadid"] for row in expected["value"]}
    assert (frame["statuscode"] == 1).all()


def test_filter_interpolates_a_python_string_as_a_quoted_literal(shell, d365):
    shell.user_ns["name"] = "O'Neil"
    frame = d365(shell, 'list leads --filter "lastname eq {name}" --select lastname')
    assert len(frame) > 0
    assert set(frame["lastname"]) == {"O'Neil"}


def test_dollar_text_is_not_expanded_by_ipython(shell, d365, api):
    tag = _tag()
    shell.user_ns["total"] = 42
    d365(shell, f'create tasks subject="{tag} costs $total"')
    assert [t["subject"] for t in _tasks(api, tag)] == [f"{tag} costs $total"]


def test_select_top_orderby_and_output_variable(shell, d365):
    result = d365(
        shell, 'list leads --select fullname,lastname --orderby "lastname asc" --top 7 -o few'
    )
    assert shell.user_ns["few"] is result
    assert len(result) == 7
    assert list(result.columns) == ["fullname", "lastname"]
    assert list(result["lastname"]) == dataverse_ascending(result["lastname"])


def test_pages_and_all_control_how_much_is_read(shell, d365, magic):
    magic.page_size = 100
    magic.max_pages = 1  # the default (0) reads every page, as d365.list does
    one = d365(shell, "list leads --select lastname")
    two = d365(shell, "list leads --select lastname --pages 2")
    every = d365(shell, "list leads --select lastname --all")
    assert (len(one), one.attrs["pages"]) == (100, 1)
    assert (len(two), two.attrs["pages"]) == (200, 2)
    assert len(every) > 200 and every.attrs["pages"] == -(-len(every) // 100)
    footer = shell.display_formatter.format(one)[0]["text/plain"].splitlines()[-1]
    assert footer.endswith(f"first 100 of {one.attrs['count']:,} rows · more: --all or --pages N")
    top = d365(shell, "list leads --select lastname --top 250")
    assert (len(top), top.attrs["pages"]) == (250, 1)  # --top is honoured beyond one page size


def test_count_and_labels(shell, d365):
    frame = d365(
        shell, 'list leads --filter "statuscode eq 1" --select statuscode --count --labels --top 3'
    )
    assert frame.attrs["count"] is not None and frame.attrs["count"] >= len(frame)
    assert set(frame["statuscode"].astype(str)) == {"New"}


def test_get_returns_a_column_per_row_frame_with_labels(shell, d365, api):
    lead = api.get("leads", params={"$top": "1", "$select": "leadid,lastname"}).json()["value"][0]
    shell.user_ns["lead_id"] = lead["leadid"]
    frame = d365(shell, "get leads {lead_id} --select lastname,statuscode -o rec")
    assert frame.loc["lastname", "value"] == lead["lastname"]
    assert frame.loc["statuscode", "label"]  # formatted value shown beside the code
    assert shell.user_ns["rec"].attrs["record"]["leadid"] == lead["leadid"]


def test_create_update_delete_one_record(shell, d365, api):
    tag = _tag()
    task_id = d365(
        shell,
        f'create tasks subject="{tag} call" percentcomplete=0 prioritycode=High scheduledend=12/31/2026',
    )
    [task] = _tasks(api, tag)
    assert (task["percentcomplete"], task["prioritycode"]) == (0, 2)
    assert task["scheduledend"].startswith("2026-12-31")
    shell.user_ns["tid"] = task_id
    d365(shell, "update tasks {tid} percentcomplete=50")
    assert _tasks(api, tag)[0]["percentcomplete"] == 50
    d365(shell, "delete tasks {tid}")
    assert _tasks(api, tag) == []


def test_create_with_owner_lookup_to_a_systemuser(shell, d365, api):
    tag = _tag()
    me = api.get("WhoAmI").json()["UserId"]
    shell.user_ns["me"] = me
    task_id = d365(shell, f'create tasks subject="{tag}" ownerid=systemusers({{me}})')
    record = api.get(
        f"tasks({task_id})",
        params={"$select": "_ownerid_value"},
        headers={"Prefer": 'odata.include-annotations="*"'},
    ).json()
    assert record["_ownerid_value"] == me
    assert record["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "systemuser"


def test_create_with_lookup_to_a_lead(shell, d365, api):
    tag = _tag()
    lead_id = api.get("leads", params={"$top": "1", "$select": "leadid"}).json()["value"][0][
        "leadid"
    ]
    shell.user_ns["lead_id"] = lead_id
    task_id = d365(shell, f'create tasks subject="{tag}" regardingobjectid=leads({{lead_id}})')
    record = api.get(f"tasks({task_id})", params={"$select": "_regardingobjectid_value"}).json()
    assert record["_regardingobjectid_value"] == lead_id


def test_cell_body_with_field_lines(shell, d365, api):
    tag = _tag()
    shell.user_ns["n"] = 30
    d365(
        shell,
        "create tasks",
        cell=f'subject: "{tag} from lines"\npercentcomplete: {{n}}\nprioritycode: Low\n',
    )
    [task] = _tasks(api, tag)
    assert (task["subject"], task["percentcomplete"], task["prioritycode"]) == (
        f"{tag} from lines",
        30,
        0,
    )


def test_cell_body_json_array_creates_many(shell, d365, api):
    tag = _tag()
    frame = d365(
        shell, "create tasks", cell=f'[{{"subject": "{tag} a"}}, {{"subject": "{tag} b"}}]'
    )
    assert len(frame) == 2 and frame["error"].isna().all()
    assert sorted(t["subject"] for t in _tasks(api, tag)) == [f"{tag} a", f"{tag} b"]


def test_bulk_create_and_update_from_a_dataframe(shell, d365, api):
    tag = _tag()
    shell.user_ns["new_tasks"] = pd.DataFrame(
        {"subject": [f"{tag} {i}" for i in range(25)], "percentcomplete": range(25)}
    )
    created = d365(shell, "create tasks --from new_tasks")
    assert len(created) == 25 and created["error"].isna().all()
    assert len(_tasks(api, tag)) == 25
    shell.user_ns["changed"] = pd.DataFrame(
        {"percentcomplete": [100] * 25}, index=pd.Index(list(created["id"]), name="activityid")
    )
    updated = d365(shell, "update tasks --from changed")
    assert updated["error"].isna().all()
    assert {t["percentcomplete"] for t in _tasks(api, tag)} == {100}


def test_update_where_without_yes_previews_and_changes_nothing(shell, d365, api, capsys):
    tag = _tag()
    for i in range(3):
        d365(shell, f'create tasks subject="{tag} {i}" percentcomplete=1')
    capsys.readouterr()
    preview = d365(
        shell, f"update tasks --where \"startswith(subject,'{tag}')\" percentcomplete=77"
    )
    assert "3 task records would be updated; nothing changed" in capsys.readouterr().out
    assert len(preview) == 3
    assert {t["percentcomplete"] for t in _tasks(api, tag)} == {1}
    d365(shell, f"update tasks --where \"startswith(subject,'{tag}')\" percentcomplete=77 --yes")
    assert {t["percentcomplete"] for t in _tasks(api, tag)} == {77}


def test_delete_where_needs_yes(shell, d365, api):
    tag = _tag()
    shell.user_ns["prefix"] = tag
    for i in range(2):
        d365(shell, f'create tasks subject="{tag} {i}"')
    d365(shell, 'delete tasks --where "startswith(subject,{prefix})"')
    assert len(_tasks(api, tag)) == 2
    result = d365(shell, 'delete tasks --where "startswith(subject,{prefix})" --yes')
    assert len(result) == 2 and result["error"].isna().all()
    assert _tasks(api, tag) == []


def test_changes_then_since_last_shows_upserted_and_deleted(shell, d365, api):
    first = d365(shell, "changes tasks --select subject")
    assert "change" in first.columns and first.attrs["token"]
    tag = _tag()
    kept = d365(shell, f'create tasks subject="{tag} kept"')
    gone = d365(shell, f'create tasks subject="{tag} gone"')
    shell.user_ns["gone"] = gone
    d365(shell, "delete tasks {gone}")
    delta = d365(shell, "changes tasks --since last --select subject")
    assert delta.loc[kept, "change"] == "upserted"
    assert delta.loc[kept, "subject"] == f"{tag} kept"
    assert delta.loc[gone, "change"] == "deleted"
    token = delta.attrs["token"]
    shell.user_ns["tok"] = token
    assert len(d365(shell, "changes tasks --since {tok}")) == 0


def test_tables_describe_whoami_connections(shell, d365, sandbox):
    tables = d365(shell, "tables")
    assert {"lead", "task"} <= set(tables.index)
    described = d365(shell, "describe tasks")
    assert "percentcomplete" in described.index
    me = d365(shell, "whoami")
    assert me.loc["UserId", "value"]
    conns = d365(shell, "connections")
    assert bool(conns.loc["nbtest", "current"]) is True


def test_use_switches_and_unknown_alias_suggests(shell, d365):
    with pytest.raises(CellFailed, match="no connection 'nbtst'. Did you mean nbtest"):
        d365(shell, "use nbtst")
    d365(shell, "use nbtest")


def test_footer_line_is_shown_under_the_table(shell, d365):
    frame = d365(shell, "list leads --select lastname --top 3")
    data, _ = shell.display_formatter.format(frame)
    last = data["text/plain"].splitlines()[-1]
    assert last.startswith("3 rows · 1 page · ") and last.endswith(" s · nbtest")
    html_formatter = shell.display_formatter.formatters["text/html"]
    enabled, html_formatter.enabled = html_formatter.enabled, True  # off in a terminal shell
    try:
        html = html_formatter(frame)
        plain_html = html_formatter(pd.DataFrame({"a": [1]}))
    finally:
        html_formatter.enabled = enabled
    assert "3 rows · 1 page" in html and "d365nb-footer" in html
    assert "<table" in plain_html and "d365nb-footer" not in plain_html


# -- bad input: one line, nothing written ------------------------------------------------------


def _error(shell, d365, line, cell=None) -> str:
    with pytest.raises(CellFailed) as failed:
        d365(shell, line, cell)
    assert isinstance(failed.value.error, UsageError)
    text = str(failed.value.error)
    assert "Traceback" not in text
    return text


def test_unknown_table_suggests_names(shell, d365):
    text = _error(shell, d365, "list leadz")
    assert "leadz" in text and "did you mean" in text and "leads" in text


def test_unknown_column_suggests_names(shell, d365, api):
    tag = _tag()
    text = _error(shell, d365, f"create tasks subject={tag} percentcomplet=5")
    assert "no column 'percentcomplet'; did you mean percentcomplete" in text
    assert _tasks(api, tag) == []


def test_unknown_column_in_odata_text_gets_a_suggestion_from_cached_metadata(shell, d365):
    text = _error(shell, d365, "list leads --filter \"lastnam eq 'x'\" --orderby fullname")
    assert "Could not find a property named 'lastnam'" in text and "did you mean lastname" in text
    text = _error(shell, d365, "list leads --select fullname,lastnam")  # checked by the client
    assert "no column 'lastnam'; did you mean lastname" in text
    text = _error(shell, d365, 'list leads --orderby "fulname desc"')
    assert "did you mean fullname" in text
    text = _error(shell, d365, 'list leads --filter "_ownerid_valu eq null"')
    assert "did you mean _ownerid_value" in text
    assert len(text.splitlines()) == 1


def test_unknown_column_in_where_is_named_and_nothing_is_deleted(shell, d365, api):
    tag = _tag()
    d365(shell, f'create tasks subject="{tag}"')
    text = _error(shell, d365, f"delete tasks --where \"subjct eq '{tag}'\" --yes")
    assert "did you mean subject" in text
    assert len(_tasks(api, tag)) == 1


def test_malformed_filter_shows_server_message_with_position_and_code(shell, d365):
    text = _error(shell, d365, 'list leads --filter "statuscode eq"')
    assert "position" in text and "0x80060888" in text
    assert len(text.splitlines()) == 1


def test_bad_value_names_field_expected_type_and_example(shell, d365, api):
    tag = _tag()
    text = _error(shell, d365, f"create tasks subject={tag} percentcomplete=lots")
    assert "percentcomplete" in text and "whole number" in text and "e.g. percentcomplete=" in text
    assert _tasks(api, tag) == []


def test_every_one_line_error_names_the_command_that_failed(shell, d365):
    assert _error(shell, d365, "create tasks subject").startswith("%d365 create: 'subject' is")
    assert _error(shell, d365, "get leads {no_such_name}").startswith("%d365 get: cannot evaluate")
    assert _error(shell, d365, "list leadz").startswith("%d365 list: ")


def test_missing_record_is_not_found_naming_table_and_id(shell, d365):
    missing = str(uuid.uuid4())
    text = _error(shell, d365, f"get tasks {missing}")
    assert missing in text and "task" in text and "HTTP 404" in text


def test_debug_adds_the_failed_request_with_token_redacted(shell, d365, magic, sandbox):
    magic.debug = True
    text = _error(shell, d365, 'list leads --filter "statuscode eq"')
    lines = text.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("request: GET ") and "leads" in lines[1]
    assert "Bearer ***" in lines[1]
    assert sandbox.token not in text


def test_short_errors_off_raises_the_typed_error(shell, d365, magic):
    from d365nb.client.errors import BadRequest

    magic.short_errors = False
    with pytest.raises(CellFailed) as failed:
        d365(shell, 'list leads --filter "statuscode eq"')
    assert isinstance(failed.value.error, BadRequest)


def test_update_without_values_or_id_shows_usage(shell, d365):
    text = _error(shell, d365, "update tasks percentcomplete=5")
    assert "which record?" in text and "usage: %d365 update" in text


def test_from_variable_that_does_not_exist(shell, d365):
    text = _error(shell, d365, "create tasks --from nowhere")
    assert "no variable 'nowhere'" in text


def test_where_with_a_bad_value_fails_before_the_preview(shell, d365, capsys):
    text = _error(shell, d365, "update tasks --where \"subject eq 'x'\" prioritycode=Hgh")
    assert "prioritycode" in text and "choice" in text
    assert "would be updated" not in capsys.readouterr().out


def test_expand_keeps_dollar_options_untouched(shell, d365):
    # A task of its own: other tests add tasks regarding nothing to the shared sandbox.
    tag = _tag()
    shell.user_ns["lid"] = d365(shell, f'create leads subject="{tag}" lastname="{tag}"')
    d365(shell, f'create tasks subject="{tag}" regardingobjectid=leads({{lid}})')
    frame = d365(
        shell,
        f'list tasks --filter "subject eq \'{tag}\'" --select subject '
        '--expand "regardingobjectid_lead_task($select=fullname)"',
    )
    # The expanded lead comes back flat (issue 14): one column per selected field.
    assert "regardingobjectid_lead_task.fullname" in frame.columns
    assert frame["regardingobjectid_lead_task.fullname"].tolist() == [tag]


def test_update_cell_body_sets_the_fields(shell, d365, api):
    tag = _tag()
    shell.user_ns["tid"] = d365(shell, f'create tasks subject="{tag}" percentcomplete=1')
    d365(shell, "update tasks {tid}", cell="percentcomplete: 60\nprioritycode: 2\n")
    [task] = _tasks(api, tag)
    assert (task["percentcomplete"], task["prioritycode"]) == (60, 2)


def test_rerunning_connect_reuses_the_open_connection(shell, d365, sandbox, capsys):
    import d365nb
    from d365nb.client.registry import connections

    conn = connections.get("nbtest")
    other = d365nb.connect(sandbox.url, token=sandbox.token, alias="nbrerun")  # now current
    try:
        d365(shell, "connect {_sb_url} --token {_sb_token} --alias nbtest")  # the cell, again
        assert "already connected to" in capsys.readouterr().out
        assert connections.get("nbtest") is conn and connections.current is conn
        assert [alias for alias, _ in connections.items()].count("nbtest2") == 0
    finally:
        connections.remove(other)
        other.close()


def test_connect_refuses_an_alias_open_to_another_target(shell, d365):
    from d365nb.client.registry import connections

    before = [alias for alias, _ in connections.items()]
    text = _error(shell, d365, "connect sandbox --alias nbtest")
    assert "'nbtest' is already open to http://127.0.0.1:" in text
    assert [alias for alias, _ in connections.items()] == before


def test_connect_empty_sandbox(bare_shell, d365):
    from d365nb.client.registry import connections

    d365(bare_shell, "connect sandbox --data empty --alias nbempty")
    conn = connections.get("nbempty")
    try:
        assert len(d365(bare_shell, "list leads --select lastname")) == 0
    finally:
        connections.remove(conn)
        conn.close()
