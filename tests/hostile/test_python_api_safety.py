"""What the Python API promises beyond refusing bad input: ids are normalised everywhere, a
missing cell is an explicit null, the token goes only to the connected organisation, token
caches are private, and a refused connect changes nothing.

Docs: record URLs and ids
https://learn.microsoft.com/power-apps/developer/model-driven-apps/open-forms-views-dialogs-reports-url,
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/retrieve-entity-using-web-api;
paging links https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/page-results
(``@odata.nextLink`` is to be used as returned - here only when it points at the org).
"""

from __future__ import annotations

import json
import os
import stat
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pandas as pd
import pytest

from d365nb.client.api import Dataverse
from d365nb.client.errors import D365Error, ValidationError


@pytest.fixture
def conn(empty_sandbox):
    with Dataverse(empty_sandbox.url, token=empty_sandbox.token) as c:
        yield c


def _count(conn: Dataverse, entity_set: str, flt: str | None = None) -> int:
    return len(conn.list(entity_set, filter=flt, select=None))


# -- ids ------------------------------------------------------------------------------------


def _forms(record_id: str, api: str, entity_set: str, logical: str) -> dict[str, str]:
    upper = record_id.upper()
    return {
        "upper": upper,
        "braces": "{" + upper + "}",
        "encoded_braces": "%7B" + record_id + "%7d",
        "whitespace_newline": f"  {record_id}\n",
        "web_api_url": f"{api}{entity_set}({upper})",
        "app_url": "https://org.crm.dynamics.com/main.aspx?appid=1&pagetype=entityrecord"
        f"&etn={logical}&id=%7b{upper}%7d",
    }


def test_every_id_form_lands_on_the_same_record(conn, empty_sandbox):
    """create(id=...) with any accepted form stores the canonical id; get/update/upsert/delete and
    lookups then address that one record (never a new, unaddressable one)."""
    canonical = str(uuid.uuid4())
    forms = _forms(canonical, empty_sandbox.api, "tasks", "task")
    created = conn.create("tasks", {"subject": "ids"}, id=forms["whitespace_newline"])
    assert created == canonical
    for name, form in forms.items():
        record = conn.get("tasks", form, select="subject")
        assert record["activityid"] == canonical, name
        conn.update("tasks", form, {"subject": f"via {name}"})
        assert conn.upsert("tasks", form, {"description": name}) is False
    assert conn.get("tasks", canonical)["subject"] == "via app_url"
    lead = conn.create("leads", {"lastname": "Id"})
    for name, form in _forms(lead, empty_sandbox.api, "leads", "lead").items():
        conn.update("tasks", canonical, {"regardingobjectid": ("leads", form)})
        assert conn.get("tasks", canonical)["_regardingobjectid_value"] == lead, name
        wrapped = form if "://" in form else f"leads({form.strip()})"  # a pasted link as is
        conn.update("tasks", canonical, {"regardingobjectid": None})
        conn.update("tasks", canonical, {"regardingobjectid": wrapped})
        assert conn.get("tasks", canonical)["_regardingobjectid_value"] == lead, name
    assert _count(conn, "tasks") == 1
    conn.delete("tasks", forms["braces"])
    assert _count(conn, "tasks") == 0


def test_bulk_calls_normalise_ids_and_refuse_the_same_record_twice(conn):
    canonical = str(uuid.uuid4())
    result = conn.create_many("tasks", [{"activityid": "{" + canonical.upper() + "}", "subject": "a"}])
    assert result.ids == [canonical]
    conn.update_many("tasks", [{"activityid": f" {canonical.upper()} ", "subject": "b"}])
    assert conn.get("tasks", canonical)["subject"] == "b"
    with pytest.raises(ValidationError, match="same activityid"):
        conn.delete_many("tasks", [canonical, canonical.upper()])
    assert _count(conn, "tasks") == 1


# -- missing values --------------------------------------------------------------------------


def test_missing_cells_in_a_frame_are_explicit_nulls(conn):
    """A NaN/NA cell clears the column (documented on update_many); a row whose only values are
    NaN is a PATCH of nulls, never an empty PATCH reported as a success."""
    first = conn.create("tasks", {"subject": "s", "description": "d", "percentcomplete": 40})
    second = conn.create("tasks", {"subject": "t", "description": "e", "percentcomplete": 60})
    frame = pd.DataFrame(
        {
            "activityid": [first, second],
            "description": [float("nan"), pd.NA],
            "percentcomplete": [pd.NA, 70],
        }
    ).astype({"percentcomplete": "Int64"})
    before = conn.get("tasks", first)["versionnumber"]
    result = conn.update_many("tasks", frame)
    assert result.ok and result.succeeded == 2
    one, two = conn.get("tasks", first), conn.get("tasks", second)
    assert one["description"] is None and one["percentcomplete"] is None
    assert one["versionnumber"] > before and one["subject"] == "s"
    assert two["description"] is None and two["percentcomplete"] == 70


def test_nan_in_a_single_write_is_refused_not_dropped(conn):
    task = conn.create("tasks", {"subject": "s", "percentcomplete": 40})
    with pytest.raises(ValidationError, match="percentcomplete.*None to clear"):
        conn.update("tasks", task, {"percentcomplete": float("nan")})
    assert conn.get("tasks", task)["percentcomplete"] == 40


# -- the token goes to the connected organisation only ----------------------------------------


class _Collector(BaseHTTPRequestHandler):
    """Another host (port): records every request that reaches it."""

    seen: list[dict] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).seen.append(dict(self.headers))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"value": []}')

    def log_message(self, *args) -> None:
        pass


def _proxy_handler(upstream: str, rewrite_to: str):
    """A tampering hop in front of the real sandbox: pages answer with a nextLink to elsewhere."""

    class Proxy(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
            }
            answer = httpx.request(
                self.command, upstream + self.path, headers=headers, content=body, timeout=30
            )
            content = answer.content
            if answer.headers.get("content-type", "").startswith("application/json"):
                data = answer.json()
                if isinstance(data, dict) and "@odata.nextLink" in data:
                    link = httpx.URL(data["@odata.nextLink"])
                    data["@odata.nextLink"] = rewrite_to + link.raw_path.decode()
                    content = json.dumps(data).encode()
            self.send_response(answer.status_code)
            for key in ("content-type", "odata-version"):
                if key in answer.headers:
                    self.send_header(key, answer.headers[key])
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PATCH = do_DELETE = _forward  # noqa: N815

        def log_message(self, *args) -> None:
            pass

    return Proxy


def _serve(handler) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize(
    "elsewhere",
    ["http://127.0.0.1:{collector}", "http://localhost:{collector}", "https://127.0.0.1:{port}",
     "http://user@127.0.0.1:{port}"],  # fmt: skip
)
def test_a_next_link_to_another_host_is_refused_and_gets_no_token(sandbox, elsewhere):
    collector = _serve(_Collector)
    _Collector.seen = []
    upstream = sandbox.url
    proxy = None
    try:
        port_holder = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        port = port_holder.server_address[1]
        port_holder.server_close()
        target = elsewhere.format(collector=collector.server_address[1], port=port)
        proxy = ThreadingHTTPServer(("127.0.0.1", port), _proxy_handler(upstream, target))
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        with Dataverse(f"http://127.0.0.1:{port}", token=sandbox.token) as conn:
            with pytest.raises(D365Error) as info:
                conn.list("leads", select="subject", page_size=5)
            text = str(info.value)
            assert "\n" not in text and "refused to follow a link" in text
            assert sandbox.token not in text and sandbox.token not in repr(info.value)
        assert _Collector.seen == []  # nothing, let alone the token, reached the other host
    finally:
        collector.shutdown()
        if proxy is not None:
            proxy.shutdown()


@pytest.mark.filterwarnings("ignore::UserWarning")  # the page limit is the point here
def test_the_same_org_next_link_is_followed(sandbox):
    with Dataverse(sandbox.url, token=sandbox.token) as conn:
        frame = conn.list("leads", select="subject", page_size=7, max_pages=3)
    assert len(frame) == 21 and frame.attrs["pages"] == 3


# -- token caches are private ----------------------------------------------------------------


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _auth(cache_path=None):
    from d365nb.client.auth import ClientSecretAuth

    return ClientSecretAuth(
        "https://org.crm.dynamics.com", "tenant", "client", "secret", cache_path=cache_path
    )


def test_token_cache_file_is_0600_and_its_directory_0700(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    auth = _auth()
    auth.cache.has_state_changed = True
    auth._save()
    assert _mode(auth.cache_path) == 0o600
    assert _mode(auth.cache_path.parent) == 0o700


def test_loose_cache_and_directory_are_narrowed(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    from d365nb.client.auth import default_cache_path

    path = default_cache_path()
    path.parent.mkdir(parents=True)
    os.chmod(path.parent, 0o755)
    path.write_text("{}")
    os.chmod(path, 0o644)
    auth = _auth()  # reading narrows the file at once
    assert _mode(path) == 0o600
    auth.cache.has_state_changed = True
    auth._save()
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700


def test_a_symlink_at_the_cache_path_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text("untouched")
    link = tmp_path / "cache" / "msal.json"
    link.parent.mkdir()
    link.symlink_to(target)
    auth = _auth(cache_path=link)
    auth.cache.has_state_changed = True
    with pytest.warns(UserWarning, match="token cache not saved"):
        auth._save()
    assert target.read_text() == "untouched"


def test_a_user_chosen_existing_folder_keeps_its_mode(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    auth = _auth(cache_path=shared / "cache.json")
    auth.cache.has_state_changed = True
    auth._save()
    assert _mode(shared) == 0o755 and _mode(shared / "cache.json") == 0o600


# -- a refused connect changes nothing ---------------------------------------------------------


def test_refused_connect_keeps_the_current_connection(sandbox):
    import d365nb
    from d365nb.client.registry import connections

    first = d365nb.connect(sandbox.url, token=sandbox.token, alias="hostile-first")
    try:
        for bad in ({"url": "ftp://x"}, {"timeout": -1}, {"verify": "/no/such.pem"}):
            kwargs = {"url": sandbox.url, "token": sandbox.token, **bad}
            with pytest.raises(ValidationError):
                d365nb.connect(kwargs.pop("url"), alias="hostile-second", **kwargs)
            assert connections.current is first
            assert connections.get("hostile-second") is None
    finally:
        first.close()
