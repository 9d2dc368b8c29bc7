"""$batch: multipart framing (parsing and rendering), then batches over real HTTP."""

from __future__ import annotations

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
    with pytest.raises(BatchError, match="more than 1000"):
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
