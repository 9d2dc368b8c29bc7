"""$batch request bodies and response parsing (the wire format of dataverse-wire.md §10)."""

from d365nb.client.batch import BatchPart, build_batch, parse_batch


def test_batch_body_uses_crlf_and_one_part_per_request():
    body, content_type = build_batch(
        [BatchPart("POST", "tasks", {"subject": "x"}), BatchPart("DELETE", "tasks(1)")],
        "/api/data/v9.2/",
    )
    text = body.decode()
    boundary = content_type.split('boundary="')[1].rstrip('"')
    assert content_type.startswith("multipart/mixed")
    assert text.count(f"--{boundary}\r\n") == 2 and text.endswith(f"--{boundary}--\r\n")
    assert "POST /api/data/v9.2/tasks HTTP/1.1\r\n" in text
    assert "Content-Type: application/json; type=entry\r\n" in text
    assert "\n" not in text.replace("\r\n", "")


def test_batch_response_parts_are_parsed_in_order_including_changesets():
    response = (
        "--batchresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "HTTP/1.1 204 No Content\r\nOData-EntityId: https://x/api/data/v9.2/tasks(1)\r\n\r\n\r\n"
        "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"
        "--changesetresponse_2\r\nContent-Type: application/http\r\nContent-ID: 1\r\n\r\n"
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n"
        '{"error":{"code":"0x0","message":"bad"}}\r\n'
        "--changesetresponse_2--\r\n"
        "--batchresponse_1--\r\n"
    )
    parts = parse_batch(response.encode(), "multipart/mixed; boundary=batchresponse_1")
    assert [p.status for p in parts] == [204, 400]
    assert parts[0].headers["odata-entityid"].endswith("tasks(1)")
    assert parts[1].body == {"error": {"code": "0x0", "message": "bad"}}
