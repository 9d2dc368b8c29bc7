"""$batch: multipart framing (parsing and rendering), then batches over real HTTP."""

from __future__ import annotations

import orjson
import pytest

from d365nb.sandbox.batch import (
    BatchError,
    ChangeSet,
    PartResponse,
    parse_batch,
    render_batch,
)

CT = 'multipart/mixed; boundary="batch_AAA"'


def frame(*parts: str, boundary: str = "batch_AAA") -> bytes:
    text = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts) + f"--{boundary}--\r\n"
    return text.encode()


def http_part(request_line: str, body: str = "", content_id: str | None = None) -> str:
    head = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if content_id:
        head += f"Content-ID: {content_id}\r\n"
    inner = f"{request_line}\r\nContent-Type: application/json; type=entry\r\n\r\n{body}"
    return head + "\r\n" + inner


def test_parse_plain_requests_and_a_change_set():
    changeset = (
        "--changeset_BBB\r\n"
        + http_part("POST /api/data/v9.2/tasks HTTP/1.1", '{"subject":"a"}', "1")
        + "\r\n--changeset_BBB\r\n"
        + http_part("PATCH $1 HTTP/1.1", '{"subject":"b"}', "2")
        + "\r\n--changeset_BBB--"
    )
    body = frame(
        http_part("GET /api/data/v9.2/tasks?$top=1 HTTP/1.1"),
        'Content-Type: multipart/mixed; boundary="changeset_BBB"\r\n\r\n' + changeset,
    )
    items = parse_batch(body, CT)
    assert items[0].method == "GET" and items[0].url == "/api/data/v9.2/tasks?$top=1"
    assert isinstance(items[1], ChangeSet)
    first, second = items[1].requests
    assert (first.method, first.content_id, first.body) == ("POST", "1", b'{"subject":"a"}')
    assert (second.url, second.content_id) == ("$1", "2")


def test_lf_only_framing_is_not_readable():
    body = frame(http_part("GET /api/data/v9.2/tasks HTTP/1.1")).replace(b"\r\n", b"\n")
    with pytest.raises(BatchError, match="Stream was not readable") as info:
        parse_batch(body, CT)
    assert info.value.code == "0x80048d19"


def test_get_inside_a_change_set_is_refused():
    changeset = "--cs\r\n" + http_part("GET /api/data/v9.2/tasks HTTP/1.1") + "\r\n--cs--"
    body = frame("Content-Type: multipart/mixed; boundary=cs\r\n\r\n" + changeset)
    with pytest.raises(BatchError, match="change set cannot contain a GET"):
        parse_batch(body, CT)


def test_more_than_1000_requests_are_refused():
    body = frame(*[http_part("GET /api/data/v9.2/tasks HTTP/1.1")] * 1001)
    with pytest.raises(BatchError, match="maximum number of .1000. query operations"):
        parse_batch(body, CT)
    assert (
        len(parse_batch(frame(*[http_part("GET /api/data/v9.2/tasks HTTP/1.1")] * 1000), CT))
        == 1000
    )


def test_missing_boundary_is_refused():
    with pytest.raises(BatchError, match="boundary"):
        parse_batch(b"", "multipart/mixed")
    with pytest.raises(BatchError, match="multipart/mixed"):
        parse_batch(b"{}", "application/json")


def test_render_nests_change_sets_and_keeps_crlf():
    ok = PartResponse(204, [("OData-EntityId", "http://x/api/data/v9.2/tasks(1)")], b"", "1")
    got = PartResponse(200, [("Content-Type", "application/json")], b'{"a":1}')
    text = render_batch([got, [ok]], "batchresponse_Z").decode()
    assert text.startswith("--batchresponse_Z\r\nContent-Type: application/http\r\n")
    assert 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"a":1}\r\n' in text
    assert "Content-Type: multipart/mixed; boundary=changesetresponse_" in text
    assert "Content-ID: 1\r\n\r\nHTTP/1.1 204 No Content\r\n" in text
    assert text.endswith("--batchresponse_Z--\r\n")
    assert "\n" not in text.replace("\r\n", "")


# -- over HTTP -------------------------------------------------------------------------------


def parse_response(r) -> list:
    """The parts of a $batch response: dicts with status/headers/json/content_id; a change set
    is a list of those."""
    boundary = r.headers["content-type"].split("boundary=")[1]
    return _parse_parts(r.content, boundary)


def _parse_parts(body: bytes, boundary: str) -> list:
    out = []
    for chunk in body.split(f"--{boundary}".encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, rest = chunk.strip(b"\r\n").partition(b"\r\n\r\n")
        if b"multipart/mixed" in head:
            inner = head.decode().split("boundary=")[1].strip()
            out.append(_parse_parts(rest, inner))
            continue
        content_id = None
        for line in head.decode().split("\r\n"):
            if line.lower().startswith("content-id:"):
                content_id = line.split(":", 1)[1].strip()
        status_head, _, payload = rest.partition(b"\r\n\r\n")
        lines = status_head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        payload = payload.strip(b"\r\n")
        out.append(
            {
                "status": int(lines[0].split()[1]),
                "headers": headers,
                "json": orjson.loads(payload) if payload else None,
                "content_id": content_id,
            }
        )
    return out


def post_batch(client, *parts: str, prefer: str | None = None, crlf: bool = True):
    body = frame(*parts)
    if not crlf:
        body = body.replace(b"\r\n", b"\n")
    headers = {"Content-Type": CT}
    if prefer:
        headers["Prefer"] = prefer
    return client.post("$batch", content=body, headers=headers)


def changeset(*parts: str, boundary: str = "changeset_CCC") -> str:
    inner = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts) + f"--{boundary}--"
    return f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n{inner}'


def lead(subject: str, lastname: str = "Doe") -> str:
    return orjson.dumps({"subject": subject, "lastname": lastname}).decode()


def test_batch_runs_reads_and_writes_in_order(empty_sandbox, empty_api):
    r = post_batch(
        empty_api,
        http_part("POST /api/data/v9.2/leads HTTP/1.1", lead("first")),
        http_part("POST leads HTTP/1.1", lead("second")),  # relative to the API root
        http_part(f"GET {empty_sandbox.api}leads?$select=subject&$orderby=subject HTTP/1.1"),
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("multipart/mixed; boundary=batchresponse_")
    first, second, read = parse_response(r)
    assert first["status"] == second["status"] == 204
    assert first["headers"]["OData-EntityId"].startswith(empty_sandbox.api + "leads(")
    assert first["headers"]["Location"] == first["headers"]["OData-EntityId"]
    assert read["status"] == 200
    assert [v["subject"] for v in read["json"]["value"]] == ["first", "second"]


def test_change_set_references_earlier_parts_by_content_id(empty_sandbox, empty_api):
    contact = orjson.dumps({"lastname": "Ref", "firstname": "Ada"}).decode()
    account = orjson.dumps({"name": "Refco", "primarycontactid@odata.bind": "$1"}).decode()
    r = post_batch(
        empty_api,
        changeset(
            http_part("POST /api/data/v9.2/contacts HTTP/1.1", contact, "1"),
            http_part("POST /api/data/v9.2/accounts HTTP/1.1", account, "2"),
            http_part("PATCH $1 HTTP/1.1", '{"jobtitle":"Engineer"}', "3"),
        ),
    )
    assert r.status_code == 200, r.text
    (parts,) = parse_response(r)
    assert [p["content_id"] for p in parts] == ["1", "2", "3"]
    assert [p["status"] for p in parts] == [204, 204, 204]
    contact_url = parts[0]["headers"]["OData-EntityId"]
    contact_id = contact_url.rsplit("(", 1)[1].rstrip(")")
    account_url = parts[1]["headers"]["OData-EntityId"]
    got = empty_api.get(
        account_url.replace(empty_sandbox.api, "") + "?$select=name,_primarycontactid_value"
    )
    assert got.json()["_primarycontactid_value"] == contact_id
    assert (
        empty_api.get(f"contacts({contact_id})?$select=jobtitle").json()["jobtitle"] == "Engineer"
    )


def test_a_failing_change_set_writes_nothing(empty_sandbox, empty_api):
    r = post_batch(
        empty_api,
        changeset(
            http_part("POST /api/data/v9.2/leads HTTP/1.1", lead("ok"), "1"),
            http_part("POST /api/data/v9.2/leads HTTP/1.1", lead("x" * 301), "2"),
        ),
    )
    assert r.status_code == 400
    (failed,) = parse_response(r)
    assert failed["status"] == 400
    assert "exceeded the maximum allowed length" in failed["json"]["error"]["message"]
    assert empty_sandbox.org.store.count("lead") == 0


def test_first_failure_stops_the_batch_without_continue_on_error(empty_sandbox, empty_api):
    r = post_batch(
        empty_api,
        http_part("POST /api/data/v9.2/leads HTTP/1.1", lead("before")),
        http_part("POST /api/data/v9.2/leads HTTP/1.1", lead("x" * 301)),  # too long
        http_part("POST /api/data/v9.2/leads HTTP/1.1", lead("after")),
    )
    assert r.status_code == 400
    parts = parse_response(r)
    assert [p["status"] for p in parts] == [204, 400]
    assert empty_sandbox.org.store.count("lead") == 1


def test_continue_on_error_runs_every_part(empty_sandbox, empty_api):
    r = post_batch(
        empty_api,
        http_part("POST /api/data/v9.2/leads HTTP/1.1", lead("before")),
        http_part("GET /api/data/v9.2/leads(00000000-0000-0000-0000-000000000001) HTTP/1.1"),
        http_part("POST /api/data/v9.2/leads HTTP/1.1", lead("after")),
        prefer="odata.continue-on-error",
    )
    assert r.status_code == 200
    assert "odata.continue-on-error" in r.headers["Preference-Applied"]
    assert [p["status"] for p in parse_response(r)] == [204, 404, 204]
    assert empty_sandbox.org.store.count("lead") == 2


def test_lf_line_endings_are_refused_over_http(empty_sandbox, empty_api):
    r = post_batch(empty_api, http_part("POST leads HTTP/1.1", lead("x")), crlf=False)
    assert r.status_code == 400
    assert r.json()["error"] == {"code": "0x80048d19", "message": "Stream was not readable."}
    assert empty_sandbox.org.store.count("lead") == 0


def test_undeclared_reference_is_refused(empty_sandbox, empty_api):
    r = post_batch(
        empty_api,
        changeset(
            http_part("POST /api/data/v9.2/leads HTTP/1.1", lead("a"), "1"),
            http_part("PATCH $7 HTTP/1.1", '{"subject":"b"}', "2"),
        ),
    )
    assert r.status_code == 400
    (failed,) = parse_response(r)
    assert failed["json"]["error"]["message"] == (
        "Content-ID Reference: '$7' does not exist in the batch context."
    )
    assert empty_sandbox.org.store.count("lead") == 0


def test_too_many_parts_are_refused_over_http(empty_sandbox, empty_api):
    parts = [http_part("POST leads HTTP/1.1", lead("x"))] * 1001
    r = post_batch(empty_api, *parts)
    assert r.status_code == 400 and "1000" in r.json()["error"]["message"]
    assert empty_sandbox.org.store.count("lead") == 0


def test_batch_needs_the_bearer_token(empty_sandbox):
    import httpx

    r = httpx.post(
        empty_sandbox.api + "$batch",
        content=frame(http_part("GET leads HTTP/1.1")),
        headers={"Content-Type": CT},
    )
    assert r.status_code == 401


def test_request_line_with_raw_spaces_in_the_query_is_read():
    # Microsoft's Python SDK writes $filter text unencoded into the request line.
    body = frame(
        http_part("GET /api/data/v9.2/EntityDefinitions?$filter=LogicalName eq 'lead' HTTP/1.1")
    )
    (request,) = parse_batch(body, CT)
    assert request.url == "/api/data/v9.2/EntityDefinitions?$filter=LogicalName eq 'lead'"


def test_raw_spaces_and_non_ascii_in_part_urls_reach_the_route(empty_sandbox, empty_api):
    assert (
        empty_api.post("leads", json={"subject": "s", "lastname": "Zoë O'Neil"}).status_code == 204
    )
    r = post_batch(
        empty_api,
        http_part("GET leads?$select=lastname&$filter=lastname eq 'Zoë O''Neil' HTTP/1.1"),
    )
    assert r.status_code == 200
    (read,) = parse_response(r)
    assert [v["lastname"] for v in read["json"]["value"]] == ["Zoë O'Neil"]
