"""Hostile input to the ``%d365`` magics: one line, nothing written, no secret shown.

Each case runs a cell in a real IPython ``InteractiveShell`` with ``%load_ext d365nb``, connected
to the session sandbox over loopback HTTP, and asserts:

(a) the cell fails and what it printed (stdout and stderr together) is exactly one line, naming
    what is wrong;
(b) nothing written: every table's record count and highest ``versionnumber`` (read over the
    Web API, the eight reads in one ``$batch``) are unchanged, and the current connection is
    still the one the notebook chose;
(c) no secret: neither the sandbox's token nor a token typed into the line appears in the
    output, the error, or the kernel's input history.

Why a blank filter must not mean "every row": without ``$filter`` the Web API returns every
row (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/filter-rows);
``--where`` and ``--all`` are this tool's bulk writes, previewed with an exact count.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.support.shells import ipython

TABLES = ("leads", "tasks", "contacts", "accounts")
LITERAL_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJob3N0aWxlLXRlc3QifQ.c2lnbmF0dXJlLXRleHQ"
NEW = "5a7e0c1d-93b2-4c11-8f0e-3d2b9e6f4a10"


# -- helpers (local: each test file stands alone) ----------------------------------------------


def snapshot(api: httpx.Client) -> dict[str, tuple[int, int | None]]:
    """(record count, highest versionnumber) of each table, read over the Web API.

    The reads go in one ``$batch`` (each case snapshots twice: eight round trips each were
    most of this file's run time); every part must answer 200 on its own."""
    reads = []
    for entity_set in TABLES:
        reads += [
            f"{entity_set}/$count",
            f"{entity_set}?$select=versionnumber&$orderby=versionnumber%20desc&$top=1",
        ]
    bodies = _batch_get(api, reads)
    state = {}
    for index, entity_set in enumerate(TABLES):
        count, top = bodies[2 * index], bodies[2 * index + 1]
        rows = json.loads(top)["value"]
        state[entity_set] = (int(count), rows[0]["versionnumber"] if rows else None)
    return state


def _batch_get(api: httpx.Client, urls: list[str]) -> list[str]:
    """The bodies of GETs of ``urls`` (relative to the API root), sent as one ``$batch``."""
    boundary = f"batch_{uuid.uuid4().hex}"
    root = api.base_url.path
    lines = []
    for url in urls:
        lines += [f"--{boundary}", "Content-Type: application/http"]
        lines += ["Content-Transfer-Encoding: binary", "", f"GET {root}{url} HTTP/1.1", "", ""]
    lines += [f"--{boundary}--", ""]
    response = api.post(
        "$batch",
        content="\r\n".join(lines).encode(),
        headers={"Content-Type": f"multipart/mixed; boundary={boundary}"},
    )
    response.raise_for_status()
    answer = response.headers["content-type"].partition("boundary=")[2].strip('"')
    parts = response.text.split(f"--{answer}")[1:-1]
    assert len(parts) == len(urls), response.text
    bodies = []
    for part in parts:
        _, message = part.split("\r\n\r\n", 1)  # past the part's own headers
        head, _, body = message.partition("\r\n\r\n")
        assert head.startswith("HTTP/1.1 200 "), part
        bodies.append(body.strip())
    return bodies


def history_texts(shell: Any) -> list[str]:
    """Every place the kernel keeps the text of past inputs."""
    manager = shell.history_manager
    texts = list(shell.user_ns.get("In", [])) + list(shell.user_ns.get("_ih", []))
    texts += list(manager.input_hist_raw) + list(manager.input_hist_parsed)
    texts += [v for k, v in shell.user_ns.items() if k.startswith("_i") and isinstance(v, str)]
    manager.writeout_cache()
    rows = manager.db.execute(
        "SELECT source, source_raw FROM history WHERE session = ?", (manager.session_number,)
    ).fetchall()
    texts += [text or "" for row in rows for text in row]
    return texts


@dataclass
class Notebook:
    shell: Any
    api: httpx.Client
    token: str
    conn: Any


@pytest.fixture(scope="module")
def notebook(sandbox) -> Iterator[Notebook]:
    from d365nb.client.registry import connections
    from d365nb.client.retry import RetryPolicy
    from d365nb.notebook.extension import _LOADED

    shell = ipython()
    shell.run_line_magic("load_ext", "d365nb")
    before = set(shell.user_ns)
    api = httpx.Client(
        base_url=sandbox.api,
        headers={"Authorization": f"Bearer {sandbox.token}", "Accept": "application/json"},
        timeout=30,
    )

    def first(entity_set: str, key: str) -> str:
        return api.get(entity_set, params={"$select": key, "$top": "1"}).json()["value"][0][key]

    lead, task, contact = (
        first("leads", "leadid"),
        first("tasks", "activityid"),
        first("contacts", "contactid"),
    )
    shell.user_ns.update(
        _h_url=sandbox.url,
        _h_token=sandbox.token,
        lead=lead,
        task=task,
        contact=contact,
        blank="   ",
        empty="",
        nan=float("nan"),
        inf=float("inf"),
        nat=pd.NaT,
        huge=10**30,
        d={"a": 1},
        lst=[1],
        by=b"x",
        st={"a"},
        longtext="x" * 201,
        none_var=None,
        bad_id="zz",
        contact_link=f"{sandbox.api}contacts({contact})",
        app_contact_link="https://org.crm.dynamics.com/main.aspx?pagetype=entityrecord"
        f"&etn=contact&id={contact}",
        dup_tasks=pd.DataFrame({"activityid": [NEW, NEW.upper()], "subject": ["a", "b"]}),
        bad_ids=pd.DataFrame({"leadid": ["zz"], "subject": ["a"]}),
        nothing_left=pd.DataFrame(
            {"subject": [float("nan")]}, index=pd.Index([lead], name="leadid")
        ),
        notadf=5,
        wrong_token="wrong-token-0123456789abcdef",
        token_with_newline="abc\ndef",
        n5=5,
        tok_fn_bad=lambda: "bad token with spaces",
    )
    result = shell.run_cell("%d365 connect {_h_url} --token {_h_token} --alias hostile")
    assert result.error_in_exec is None, result.error_in_exec
    conn = connections.get("hostile")
    # Later connects retry an unreachable host 3 times as always, but without waiting ~1.5 s
    # between tries (the waits are RetryPolicy's own tests; here they were only idle time).
    _LOADED[id(shell)].connect_options = {"retry": RetryPolicy(interval=0.01)}
    try:
        yield Notebook(shell, api, sandbox.token, conn)
    finally:
        connections.remove(conn)
        conn.close()
        api.close()
        shell.run_line_magic("unload_ext", "d365nb")
        for name in set(shell.user_ns) - before:
            shell.user_ns.pop(name, None)


@dataclass
class Case:
    name: str
    source: str  # the cell
    needle: str  # what the one line must name
    secrets: tuple[str, ...] = field(default_factory=tuple)  # typed literally: scrubbed too


CASES: list[Case] = []


def case(name: str, source: str, needle: str, *secrets: str) -> None:
    CASES.append(Case(name, source, needle, secrets))


# -- bulk writes never widen ------------------------------------------------------------------

for _verb, _tail in (("update", " description=X --yes"), ("delete", " --yes")):
    for _name, _where in (
        ("space", '" "'),
        ("spaces", '"   "'),
        ("empty", '""'),
        ("tab", "$'\t'"),
    ):
        if _name == "tab":
            continue  # shlex has no $'..' quoting; a literal tab is covered by blank_var below
        case(f"{_verb}-where-{_name}", f"%d365 {_verb} leads --where {_where}{_tail}", "blank")
    # (id, the table and which of its records, what the one line names). A quoted blank literal
    # is not a condition: the service says so (0x...).
    for _name, _target, _needle in (
        ("where-blank-variable-text", 'leads --where "{blank}"', "0x"),
        ("where-matches-every-lead", 'leads --where "statecode ge 0"', "needs --all"),
        ("where-matches-every-task", 'tasks --where "activityid ne null"', "needs --all"),
        ("where-tautology", 'contacts --where "statecode eq 0 or statecode ne 0"', "needs --all"),
        ("where-and-all", 'leads --all --where "statecode eq 0"', "not both"),
        ("id-and-all", "leads {lead} --all", "not both"),
        ("id-and-where", 'leads {lead} --where "statecode eq 0"', "not both"),
        ("no-record-named", "leads", "which record"),
        ("where-unclosed-brace", 'leads --where "subject eq {x"', "unclosed"),
        ("where-undefined-name", 'leads --where "subject eq {nope_xyz}"', "nope_xyz"),
        ("where-nan-literal", 'leads --where "numberofemployees eq {nan}"', "nan"),
        ("where-broken-quote", "leads --where \"subject eq 'O'Bryan'\"", "position"),
        ("where-unknown-column", 'leads --where "subjet eq 1"', "subjet"),
    ):
        case(f"{_verb}-{_name}", f"%d365 {_verb} {_target}{_tail}", _needle)
case("update-all-with-nothing-to-write", "%d365 update leads --all --yes", "nothing to update")
case("update-from-and-all", "%d365 update leads --from dup_tasks --all --yes", "--all")
case("update-from-and-where", '%d365 update leads --from dup_tasks --where "x"', "--where")


# -- strict ids -------------------------------------------------------------------------------

for _name, _word in (
    ("word", "not-a-guid"),
    ("digits", "12345"),
    ("variable-garbage", "{bad_id}"),
    ("variable-none", "{none_var}"),
    ("variable-blank", "{blank}"),
    ("one-char-too-many", NEW + "0"),
    ("double-braces", "{{{{" + NEW + "}}}}"),
    ("contact-web-api-link", "{contact_link}"),
    ("contact-app-link", "{app_contact_link}"),
):
    _needle = "contact" if "link" in _name else "id"
    case(f"get-id-{_name}", f"%d365 get leads {_word}", _needle)
    case(f"update-id-{_name}", f"%d365 update leads {_word} description=x", _needle)
    case(f"delete-id-{_name}", f"%d365 delete leads {_word}", _needle)
case("create-id-garbage", "%d365 create tasks subject=x activityid=garbage", "activityid")
case("create-id-blank-variable", "%d365 create tasks subject=x activityid={blank}", "activityid")
case(
    "lookup-id-garbage",
    "%d365 create tasks subject=x regardingobjectid=leads(zz)",
    "regardingobjectid",
)
case("lookup-wrong-table", "%d365 create tasks subject=x regardingobjectid=systemusers({lead})",
     "regardingobjectid")  # fmt: skip
case("lookup-ambiguous-bare-id", "%d365 create tasks subject=x regardingobjectid={lead}",
     "say which")  # fmt: skip
case("lookup-contact-link-for-account-column",
     "%d365 update leads {lead} parentaccountid={contact_link}", "parentaccountid")  # fmt: skip
case("owner-to-a-lead", "%d365 create tasks subject=x ownerid=leads({lead})", "ownerid")


# -- bad values, through create / update by id / update --where -------------------------------

BAD_WORDS: list[tuple[str, str, str]] = [
    ("huge-int", "percentcomplete={huge}", "percentcomplete"),
    ("nan", "percentcomplete={nan}", "percentcomplete"),
    ("inf", "percentcomplete={inf}", "percentcomplete"),
    ("word-for-int", "percentcomplete=half", "percentcomplete"),
    ("underscore-digits", "percentcomplete=1_0", "percentcomplete"),
    ("superscript-digit", "percentcomplete=²", "percentcomplete"),
    ("below-min", "percentcomplete=-1", "percentcomplete"),
    ("fraction-for-int", "percentcomplete=2.5", "percentcomplete"),
    ("above-int32", "actualdurationminutes=99999999999", "actualdurationminutes"),
    ("dict-for-text", "subject={d}", "subject"),
    ("list-for-text", "subject={lst}", "subject"),
    ("bytes-for-text", "subject={by}", "subject"),
    ("set-for-text", "subject={st}", "subject"),
    ("too-long-text", "subject={longtext}", "subject"),
    ("unknown-choice", "prioritycode=Urgent", "prioritycode"),
    ("huge-choice", "prioritycode={huge}", "prioritycode"),
    ("impossible-date", "scheduledend=31/31/2026", "scheduledend"),
    ("date-before-1753", "scheduledend=1700-01-01", "scheduledend"),
    ("date-past-9999-in-utc", "scheduledend=9999-12-31T23:00:00-05:00", "scheduledend"),
    ("nat", "scheduledend={nat}", "scheduledend"),
    ("unknown-column", "subjet=x", "subjet"),
    ("read-only-column", "createdon=2020-01-01", "createdon"),
    ("not-a-column-name", "1abc=x", "1abc"),
    ("unclosed-brace", "subject={oops", "unclosed"),
    ("undefined-name", "subject={nope_xyz}", "nope_xyz"),
]
for _name, _word, _needle in BAD_WORDS:
    case(f"create-{_name}", f"%d365 create tasks subject=ok {_word}", _needle)
    case(f"update-{_name}", f"%d365 update tasks {{task}} {_word}", _needle)
    case(f"update-where-value-{_name}",
         f'%d365 update tasks --where "activityid eq {{task}}" {_word} --yes', _needle)  # fmt: skip


# -- tables, outputs, bulk sources, cell bodies -----------------------------------------------

case("create-unknown-table", "%d365 create taks subject=x", "taks")
case("create-table-from-number", "%d365 create {n5} subject=x", "5")
case("create-nothing", "%d365 create tasks", "nothing to create")
case("create-bad-output-name", "%d365 create tasks subject=x -o 1bad", "-o")
case("create-keyword-output-name", "%d365 create tasks subject=x -o class", "-o")
case("update-bad-output-name", "%d365 update tasks {task} subject=x -o a-b", "-o")
case("create-from-missing-variable", "%d365 create tasks --from nosuch_frame", "nosuch_frame")
case("create-from-not-a-frame", "%d365 create tasks --from notadf", "DataFrame")
case("create-from-duplicate-ids", "%d365 create tasks --from dup_tasks", "same activityid")
case("update-from-garbage-ids", "%d365 update leads --from bad_ids", "leadid")
case("create-from-with-values", "%d365 create tasks --from dup_tasks subject=x", "--from")
case("cell-not-json", "%%d365 create tasks\n{not json", "JSON")
case("cell-array-of-numbers", "%%d365 create tasks\n[1, 2]", "object")
case("cell-bad-line", "%%d365 create tasks\nthis is not a field line", "field: value")
case("cell-bad-value", "%%d365 create tasks\nsubject: x\npercentcomplete: lots", "percentcomplete")
case("cell-unknown-column", "%%d365 create tasks\nsubjet: x", "subjet")
case("cell-duplicate-ids",
     f'%%d365 create tasks\n[{{"activityid": "{NEW}", "subject": "a"}}, '
     f'{{"activityid": "{{{NEW.upper()}}}", "subject": "b"}}]', "same activityid")  # fmt: skip
case("cell-array-for-update", '%%d365 update tasks {task}\n[{"subject": "a"}]', "--from")
case("update-nothing", "%d365 update tasks {task}", "nothing to update")


# -- secrets and connections ------------------------------------------------------------------

# (id, what follows the URL, the secret typed there): a token typed into the line is refused
TYPED_TOKENS: list[tuple[str, str, str]] = [
    ("literal-jwt", f"--token {LITERAL_JWT}", LITERAL_JWT),
    ("literal-jwt-equals", f"--token={LITERAL_JWT} --alias x2", LITERAL_JWT),
    ("braced-string-literal", f'--token {{"{LITERAL_JWT}"}}', LITERAL_JWT),
    ("braced-single-quoted", f"--token \"{{'{LITERAL_JWT}'}}\"", LITERAL_JWT),
    ("quoted-literal", "--token 'abc-literal-secret'", "abc-literal-secret"),
    ("short-quoted-literal", "--token 'abc'", "abc"),
    ("concatenated-literal", "--token \"{'sec' + 'ret-part'}\"", "ret-part"),
    ("unknown-name-in-braces", "--token {eyJnotavariable123}", "eyJnotavariable123"),
]
for _name, _tail, _secret in TYPED_TOKENS:
    case(f"connect-{_name}", f"%d365 connect {{_h_url}} {_tail}", "pass it as a variable", _secret)
case("connect-text-around-variable", "%d365 connect {_h_url} --token Bearer{_h_token}",
     "pass it as a variable")  # fmt: skip
case("connect-wrong-token", "%d365 connect {_h_url} --token {wrong_token} --alias hbad",
     "401", "wrong-token-0123456789abcdef")  # fmt: skip
# (id, the notebook variable given as --token, alias): a token that cannot be one is named
BAD_TOKEN_VARIABLES: list[tuple[str, str, str]] = [
    ("token-with-newline", "token_with_newline", "hnl"),
    ("token-not-text", "n5", "hn5"),
    ("blank-token", "blank", "hblank"),
    ("token-function-bad", "tok_fn_bad", "hfn"),
]
for _name, _variable, _alias in BAD_TOKEN_VARIABLES:
    case(
        f"connect-{_name}",
        f"%d365 connect {{_h_url}} --token {{{_variable}}} --alias {_alias}",
        "token",
    )
case("connect-unreachable", "%d365 connect http://127.0.0.1:9 --token {_h_token} --alias hdown",
     "could not connect")  # fmt: skip
case("connect-ftp-url", "%d365 connect ftp://example.com --token {_h_token}", "ftp")
case("connect-bad-port", "%d365 connect https://example.com:abc --token {_h_token}", "port")
case("connect-missing-ca", "%d365 connect {_h_url} --token {_h_token} --verify /no/such.pem",
     "verify")  # fmt: skip
case("connect-sandbox-with-token", "%d365 connect sandbox --token {_h_token}", "--token")
case("connect-alias-taken", "%d365 connect https://example.com --token {_h_token} --alias hostile",
     "already open")  # fmt: skip
case("use-unknown-alias", "%d365 use nosuch_alias", "nosuch_alias")


@pytest.mark.parametrize("bad", CASES, ids=lambda c: c.name)
def test_bad_magic_line_costs_one_line_and_writes_nothing(bad: Case, notebook: Notebook, capsys):
    from d365nb.client.registry import connections

    shell = notebook.shell
    before = snapshot(notebook.api)
    capsys.readouterr()
    result = shell.run_cell(bad.source, store_history=True)
    out = capsys.readouterr()
    error = result.error_before_exec or result.error_in_exec
    assert error is not None, f"accepted: {out.out}"
    shown = [line for line in (out.out + out.err).splitlines() if line.strip()]
    assert len(shown) == 1, shown  # (a) one line ...
    assert "\n" not in str(error).strip()
    assert bad.needle.lower() in shown[0].lower(), shown[0]  # ... naming what is wrong
    assert "Traceback" not in out.out + out.err
    # (b) nothing written, and the notebook still talks to the connection it chose
    assert snapshot(notebook.api) == before
    assert connections.current is notebook.conn
    assert {alias for alias, _ in connections.items()} >= {"hostile"}
    # (c) no secret in the output, the error or the kernel's memory of the input
    for secret in (notebook.token, *bad.secrets):
        assert secret not in out.out + out.err
        assert secret not in str(error) and secret not in repr(error)
    if bad.secrets:  # reading the history flushes it to SQLite: only when there is one to find
        typed = [text for text in history_texts(shell) if "--token" in text]
        for secret in bad.secrets:
            assert not any(secret in text for text in typed), secret


def test_the_suite_holds_enough_cases():
    assert len(CASES) >= 120, len(CASES)
    assert len({c.name for c in CASES}) == len(CASES)


# -- what --where / --all do when the user means it ---------------------------------------------


def _run(shell: Any, source: str) -> Any:
    result = shell.run_cell(source, store_history=True)
    error = result.error_before_exec or result.error_in_exec
    assert error is None, error
    return result.result


@contextmanager
def _another_connection(shell: Any, alias: str, url: str, token: str) -> Iterator[None]:
    """Connect the notebook to ``url`` as ``alias`` (``url`` and ``token`` are ``{variables}``);
    afterwards forget it and make ``hostile`` current again, as the other cases expect."""
    from d365nb.client.registry import connections

    _run(shell, f"%d365 connect {url} --token {token} --alias {alias}")
    try:
        yield
    finally:
        conn = connections.get(alias)
        connections.remove(conn)
        conn.close()
        connections.use("hostile")


@pytest.mark.slow
def test_all_previews_the_exact_count_then_writes_every_row(notebook, empty_sandbox, capsys):
    """An empty sandbox: 5,003 contacts, more than one page and more than ``$count``'s 5,000."""
    from d365nb.client.api import Dataverse

    with Dataverse(empty_sandbox.url, token=empty_sandbox.token) as seed:
        seed.create_many("contacts", [{"lastname": f"c{i}"} for i in range(5003)])
    shell = notebook.shell
    shell.user_ns.update(_e_url=empty_sandbox.url, _e_token=empty_sandbox.token)
    with _another_connection(shell, "hostile-all", "{_e_url}", "{_e_token}"):
        capsys.readouterr()
        _run(shell, "%d365 update contacts --all description=bulk")
        assert "5,003 contact records would be updated; nothing changed" in capsys.readouterr().out
        shown = shell.run_cell(
            '%d365 update contacts --where "contactid ne null" description=x --yes'
        )
        assert "needs --all" in str(shown.error_in_exec) and "5,003" in str(shown.error_in_exec)
        _run(shell, "%d365 update contacts --where \"lastname eq 'c7'\" description=one --yes")
        _run(shell, "%d365 update contacts --all description=bulk --yes")
        with Dataverse(empty_sandbox.url, token=empty_sandbox.token) as check:
            frame = check.list("contacts", select="description")
        assert len(frame) == 5003 and (frame["description"] == "bulk").all()
        _run(shell, "%d365 delete contacts --all")
        assert "5,003 contact records would be deleted" in capsys.readouterr().out
        _run(shell, "%d365 delete contacts --all --yes")
        with Dataverse(empty_sandbox.url, token=empty_sandbox.token) as check:
            assert len(check.list("contacts", select="lastname")) == 0


def test_pasted_ids_are_normalised_in_magics(notebook: Notebook, capsys):
    shell = notebook.shell
    record = str(uuid.uuid4())
    shell.user_ns["pasted_new"] = f" {{{record.upper()}}}\n"
    _run(shell, "%d365 create tasks subject=pasted activityid={pasted_new}")
    shell.user_ns["pasted_link"] = f"{notebook.conn.api_url}tasks({record.upper()})"
    _run(shell, "%d365 update tasks {pasted_link} subject=edited")
    assert f"updated task {record}" in capsys.readouterr().out
    frame = _run(shell, "%d365 get tasks {pasted_new}")
    assert frame.loc["subject", "value"] == "edited"
    _run(shell, "%d365 delete tasks {pasted_link}")
    assert notebook.api.get(f"tasks({record})").status_code == 404


def test_a_refused_connect_never_switches_to_another_open_org(notebook: Notebook, sandbox):
    """Two orgs open, the older one current: a failed connect must not make the other current
    (the next write would land there)."""
    from d365nb.client.registry import connections

    shell = notebook.shell
    with _another_connection(shell, "hostile-b", "{_h_url}", "{_h_token}"):
        _run(shell, "%d365 use hostile")
        for line in (
            "%d365 connect {_h_url} --token {wrong_token} --alias hostile-c",
            "%d365 connect http://127.0.0.1:9 --token {_h_token} --alias hostile-d",
            f"%d365 connect {{_h_url}} --token {LITERAL_JWT} --alias hostile-e",
        ):
            failed = shell.run_cell(line, store_history=True)
            assert failed.error_in_exec is not None
            assert connections.current is notebook.conn
            assert shell.user_ns["d365"] is notebook.conn
        assert {a for a, _ in connections.items()} & {
            "hostile-c",
            "hostile-d",
            "hostile-e",
        } == set()


def test_ordinary_fields_stay_readable_in_error_lines(notebook: Notebook, capsys):
    """The redactor masks secrets only: ``prioritycode=0`` in the example is not a secret."""
    failed = notebook.shell.run_cell("%d365 update tasks {task} prioritycode=7", store_history=True)
    assert failed.error_in_exec is not None
    text = capsys.readouterr().err
    assert "e.g. prioritycode=0 or 'Low'" in text, text
    from d365nb.notebook.error_lines import redact

    assert (
        redact("statuscode=1&prioritycode=2 $skiptoken=3")
        == "statuscode=1&prioritycode=2 $skiptoken=3"
    )
    assert (
        redact("GET /token?code=abc&client_secret=s3cr3t")
        == "GET /token?code=***&client_secret=***"
    )
    assert redact(f"echoed {LITERAL_JWT} back") == "echoed *** back"
