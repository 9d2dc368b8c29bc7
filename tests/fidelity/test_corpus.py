"""The fidelity corpus: request/response pairs from Microsoft's Dataverse Web API documentation,
replayed against a fresh sandbox.

Each file in `cases/` holds the examples of one or more Learn pages; every case cites its page
(`source`). A case creates the records its example needs (`setup`), sends the documented request
and compares what matters in the documented response - status, key headers, and the JSON shape:
which keys are present and absent (annotations included), the exact `@odata.context`, the form of
links and etags, value types - but not ids, dates or other values that differ per org, unless
the case names them in `values`.

Case format (JSON; a file may hold a `setup` shared by its cases)::

    {"id": "...", "source": "https://learn.microsoft.com/...",
     "setup": [{"as": "acct", "method": "POST", "url": "accounts", "body": {...}},
               {"capture": {"etag": "value/0/@odata.etag"}, "method": "GET", "url": "accounts({acct})"}],
     "request": {"method": "GET", "url": "[Organization URI]/api/data/v9.0/accounts({acct})",
                 "headers": {...}, "body": {...} | "text"},
     "response": {"status": 200, "headers": {...}, "absent_headers": [...],
                  "body": {...documented JSON...} | null, "text": "...", "contains": [...]},
     "compare": {"values": ["error.code"], "partial": ["value.0"], "length": false},
     "xfail": "reason (only while the sandbox lacks what the example needs)"}

`{name}` in URLs, headers and bodies is replaced by what setup captured (`as` = the created
record's id from `OData-EntityId`). A relative URL is relative to `/api/data/v9.2/`.

The sandbox runs in-process (httpx's ASGI transport into the full app, middlewares included; a
fresh empty organisation per case), at `https://contoso.crm.dynamics.com`, standing in for
`[Organization URI]`.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from d365nb.sandbox.app import build_app
from d365nb.sandbox.server import build_org

ORG = "https://contoso.crm.dynamics.com"
CASES = Path(__file__).parent / "cases"
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
ETAG = re.compile(r'^W/"\d+"$')
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Properties whose values are URLs: compared by form (version, path with ids, query names).
URL_KEYS = ("@odata.nextLink", "@odata.id", "@odata.deltaLink", "@odata.editLink")
URL_HEADERS = ("odata-entityid", "location")


def _load() -> list[Any]:
    params = []
    for path in sorted(CASES.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for case in data["cases"]:
            case.setdefault("source", data.get("source"))
            # a file's `setup` runs before each of its cases' own
            case["setup"] = data.get("setup", []) + case.get("setup", [])
            marks = (
                [pytest.mark.xfail(reason=case["xfail"], strict=False)] if "xfail" in case else []
            )
            params.append(pytest.param(case, id=f"{path.stem}:{case['id']}", marks=marks))
    return params


ALL = _load()


def test_corpus_size_and_sources() -> None:
    """The corpus holds at least 150 documented pairs, each citing its Learn page."""
    ids = [p.id for p in ALL]
    assert len(ids) >= 150, len(ids)
    assert len(set(ids)) == len(ids), "duplicate case ids"
    for param in ALL:
        source = param.values[0]["source"]
        assert source.startswith("https://learn.microsoft.com/power-apps/developer/"), param.id


@pytest.mark.parametrize("case", ALL)
def test_documented_pair(case: dict) -> None:
    """Replay one documented request; the answer has the documented shape (see module doc)."""
    org = build_org(data="empty")
    try:
        problems = asyncio.run(_replay(case, org))
    finally:
        org.store.close()
    assert not problems, f"{case['source']}\n" + "\n".join(problems)


async def _replay(case: dict, org: Any) -> list[str]:
    transport = httpx.ASGITransport(app=build_app(org))
    headers = {
        "Authorization": f"Bearer {org.token}",
        "Accept": "application/json",
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
    }
    async with httpx.AsyncClient(transport=transport, base_url=ORG, headers=headers) as client:
        return await _exchange(case, client)


async def _exchange(case: dict, client: httpx.AsyncClient) -> list[str]:
    found: dict[str, str] = {"org": ORG, **await _caller(client)}
    for step in case.get("setup", []):
        response = await _send(client, step, found)
        assert response.status_code < 300, (
            f"setup {step['method']} {step['url']}: {response.status_code} {response.text}"
        )
        if "as" in step:
            entity = response.headers.get("OData-EntityId") or ""
            ids = GUID.findall(entity) or GUID.findall(response.text)
            found[step["as"]] = ids[-1] if entity else ids[0]
        for name, key in step.get("capture", {}).items():
            found[name] = str(_at(response.json(), key))
    request = case["request"]
    response = await _send(client, request, found)
    expected = case["response"]
    compare = case.get("compare", {})
    problems: list[str] = []
    if response.status_code != expected["status"]:
        problems.append(f"status {response.status_code} != {expected['status']}: {response.text}")
    _check_headers(expected, response, problems)
    if "body" in expected:
        if expected["body"] is None:
            if response.content:
                problems.append(f"expected no body, got {response.text[:200]}")
        else:
            try:
                actual = response.json()
            except ValueError:
                actual = {"<not JSON>": response.text[:200]}
            _shape(expected["body"], actual, "", compare, problems)
    if "text" in expected and response.content.decode("utf-8") != expected["text"]:
        problems.append(f"text {response.content!r} != {expected['text']!r}")
    for fragment in expected.get("contains", []):
        if _fill(fragment, found) not in response.text:
            problems.append(f"body lacks {fragment!r}")
    return problems


# -- requests ----------------------------------------------------------------------------------


async def _caller(client: httpx.AsyncClient) -> dict[str, str]:
    """`{user}` (the caller's systemuserid) and `{username}` (its full name)."""
    user = (await client.get("/api/data/v9.2/WhoAmI")).json()["UserId"]
    me = await client.get(f"/api/data/v9.2/systemusers({user})?$select=fullname")
    return {"user": user, "username": me.json().get("fullname") or ""}


def _fill(value: Any, found: dict[str, str]) -> Any:
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: found.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [_fill(v, found) for v in value]
    if isinstance(value, dict):
        return {_fill(k, found): _fill(v, found) for k, v in value.items()}
    return value


async def _send(client: httpx.AsyncClient, step: dict, found: dict[str, str]) -> httpx.Response:
    url = _fill(step["url"], found).replace("[Organization URI]", ORG)
    url = re.sub(r"\s*\n\s*", "", url)  # the docs wrap long URLs over several lines
    if not url.startswith(("http", "/")):
        url = "/api/data/v9.2/" + url
    given = step.get("headers", {})
    # a list of [name, value] pairs sends a header twice (`Prefer` on two lines)
    pairs = given if isinstance(given, list) else list(given.items())
    headers = httpx.Headers([(k, _fill(v, found)) for k, v in pairs])
    body = step.get("body")
    if "generate" in step:  # {"count": n, "template": {...}}: n bodies for a bulk action
        template = json.dumps(step["generate"]["template"])
        body = {
            "Targets": [
                json.loads(template.replace("{i}", str(i)))
                for i in range(step["generate"]["count"])
            ]
        }
    kwargs: dict[str, Any] = {"headers": headers}
    if isinstance(body, str):
        kwargs["content"] = _fill(body, found).replace("[Organization URI]", ORG).encode()
    elif body is not None:
        kwargs["content"] = json.dumps(_fill(body, found)).encode()
        headers.setdefault("Content-Type", "application/json")
    return await client.request(step["method"], url, **kwargs)


# -- comparison --------------------------------------------------------------------------------


def _split_header(value: str) -> list[str]:
    """Comma-separated header items, commas inside quotes kept."""
    return [p.strip() for p in re.findall(r'(?:[^,"]|"[^"]*")+', value) if p.strip()]


def _check_headers(expected: dict, response, problems: list[str]) -> None:
    for name, value in expected.get("headers", {}).items():
        lower = name.lower()
        actual = response.headers.get(lower)
        if actual is None:
            problems.append(f"header {name} missing")
        elif lower in URL_HEADERS:
            if _url_form(value) != _url_form(actual):
                problems.append(f"header {name}: {actual} is not like {value}")
        elif lower == "etag":
            if not ETAG.match(actual):
                problems.append(f"header ETag {actual!r} is not a weak etag")
        elif lower == "preference-applied":
            if sorted(_split_header(actual)) != sorted(_split_header(value)):
                problems.append(f"header {name}: {actual!r} != {value!r}")
        elif lower == "content-type":
            if actual.split(";")[0].strip() != value.split(";")[0].strip():
                problems.append(f"header {name}: {actual!r} != {value!r}")
        elif lower in ("odata-version", "retry-after") and actual.strip() != value.strip():
            problems.append(f"header {name}: {actual!r} != {value!r}")
    for name in expected.get("absent_headers", []):
        if name.lower() in response.headers:
            problems.append(f"header {name} should be absent, is {response.headers[name]!r}")


def _url_form(url: str) -> tuple:
    """A URL without what differs per org and per run: ids, skiptoken and deltatoken values."""
    url = re.sub(r"\s+", "", url.replace("[Organization URI]", ORG))
    parts = urlsplit(url)
    path = GUID.sub("<id>", parts.path)
    names = tuple(k for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    return (parts.netloc or "", path, names)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _at(data: Any, path: str) -> Any:
    """`value/0/@odata.etag`: a value inside a JSON answer (`/`-separated; names hold dots)."""
    for part in path.split("/"):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def _shape(doc: Any, actual: Any, path: str, compare: dict, problems: list[str]) -> None:
    """Compare `actual` with the documented value `doc` (see the module docstring)."""
    where = path or "<body>"
    if path in compare.get("values", []):
        if doc != actual:
            problems.append(f"{where}: {actual!r} != documented {doc!r}")
        return
    if doc is None:
        return  # null in the example: the key's presence is what is documented
    if _kind(doc) != _kind(actual):
        problems.append(f"{where}: {_kind(actual)} {actual!r:.80} where the docs show {_kind(doc)}")
        return
    key = path.rsplit(".", 1)[-1]
    if isinstance(doc, dict):
        for name, value in doc.items():
            if name not in actual:
                problems.append(f"{where}: missing {name!r}")
            else:
                _shape(value, actual[name], f"{path}.{name}" if path else name, compare, problems)
        if path not in compare.get("partial", []):
            extra = [k for k in actual if k not in doc]
            if extra:
                problems.append(f"{where}: not in the documented answer: {extra}")
    elif isinstance(doc, list):
        if compare.get("length", True) and len(doc) != len(actual):
            problems.append(f"{where}: {len(actual)} items, the docs show {len(doc)}")
        for i, item in enumerate(actual):
            if doc:
                sample = doc[i] if i < len(doc) else doc[-1]
                _shape(sample, item, f"{path}.{i}", compare, problems)
    elif isinstance(doc, str):
        if key == "@odata.context":
            if doc.replace("[Organization URI]", ORG) != actual:
                problems.append(f"{where}: {actual!r} != {doc!r}")
        elif key.endswith(URL_KEYS):
            if _url_form(doc) != _url_form(actual):
                problems.append(f"{where}: {actual!r} is not like {doc!r}")
        elif key == "@odata.etag" and not ETAG.match(actual):
            problems.append(f"{where}: {actual!r} is not a weak etag")
