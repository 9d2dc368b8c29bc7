"""Property-based hostile input for the sandbox's HTTP surface (hypothesis).

Generated query strings ($filter with odd literals and query functions, $select, $orderby,
$top, $expand, $skiptoken, aliases), headers (Prefer, If-Match, If-None-Match, Authorization
variants, MSCRM.*), JSON bodies (POST, PATCH, PUT, CreateMultiple, UpdateMultiple,
UpsertMultiple, $batch with and without change sets) and change-tracking cursors must
never get a 5xx: a client mistake is a 4xx with Dataverse's error body
`{"error":{"code","message"}}` and a one-line message
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors).

The number of requests a run sent is printed in the terminal summary ("hostile sandbox
requests tried: N"); `--hypothesis-show-statistics` gives hypothesis's own counts;
`HOSTILE_EXAMPLES=2000` searches deeper than the default 150 examples per property.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from d365nb import sandbox as sandbox_module
from tests.support.sandboxes import api_client

# Per property; HOSTILE_EXAMPLES=2000 for a deeper search than the suite's default.
EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "150"))
LEAD = "0000bbbb-0000-4000-8000-00000000b001"
ACCOUNT = "0000bbbb-0000-4000-8000-00000000b002"
TRIED: Counter[str] = Counter()

PROFILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=False,
)


class _Summary:
    """Reports how many generated requests the run sent (registered once, below)."""

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if TRIED:
            parts = ", ".join(f"{k} {v}" for k, v in sorted(TRIED.items()))
            terminalreporter.write_line(
                f"hostile sandbox requests tried: {sum(TRIED.values())} ({parts})"
            )


@pytest.fixture(scope="module")
def target(request):
    """A sandbox of its own (the generated writes stay out of the session sandbox), with the
    records the generated requests address."""
    manager = request.config.pluginmanager
    if not manager.has_plugin("hostile-sandbox-summary"):
        manager.register(_Summary(), "hostile-sandbox-summary")
    with sandbox_module.start(data="empty") as handle, api_client(handle) as client:
        assert client.patch(f"accounts({ACCOUNT})", json={"name": "Target"}).status_code == 204
        lead = {"lastname": "Target", "parentaccountid@odata.bind": f"/accounts({ACCOUNT})"}
        assert client.patch(f"leads({LEAD})", json=lead).status_code == 204
        yield handle, client


def _check(response: httpx.Response, kind: str, token: str) -> None:
    TRIED[kind] += 1
    assert response.status_code < 500, response.text[:400]
    if 400 <= response.status_code < 500:
        error = response.json()["error"]
        assert isinstance(error["code"], str)
        assert isinstance(error["message"], str)
        assert "\n" not in error["message"]
    assert token not in response.text


# -- literals and filters ------------------------------------------------------------------

WEIRD_NUMBERS = st.sampled_from(
    [
        "²",
        "٣",
        "1_000",
        "nan",
        "NaN",
        "Infinity",
        "-Infinity",
        "inf",
        "1e999",
        "-1e999",
        "99999999999999999999999",
        "-99999999999999999999",
        "0x10",
        "1.",
        ".5",
        "1e",
        "+1",
        "--1",
        "9223372036854775808",
        "-9223372036854775809",
        "0",
        "-0",
        "1.5e-400",
        "１２",
    ]
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    WEIRD_NUMBERS,
)


def _date_text(year: int, month: int, day: int, hour: int, with_time: bool) -> str:
    text = f"{year:04d}-{month:02d}-{day:02d}"
    return text + f"T{hour:02d}:00:00Z" if with_time else text


DATES = st.builds(
    _date_text,
    st.integers(0, 100_000),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.booleans(),
)
SAFE_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)
STRINGS = SAFE_TEXT.map(lambda t: "'" + t.replace("'", "''") + "'")
GUIDS = st.one_of(
    st.uuids().map(str), st.just(LEAD), st.just("00000000-0000-0000-0000-00000000000²")
)
LITERALS = st.one_of(
    NUMBERS, DATES, STRINGS, GUIDS, st.sampled_from(["null", "true", "false", "@p", "@q"])
)
PROPERTIES = st.sampled_from(
    [
        "statuscode",
        "lastname",
        "createdon",
        "estimatedvalue",
        "numberofemployees",
        "leadid",
        "estimatedclosedate",
        "parentaccountid/name",
        "_parentaccountid_value",
        "subject",
        "donotemail",
        "nosuchcolumn",
        "fullname",
        "versionnumber",
    ]
)
OPERATORS = st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le", "has", "in", "=="])
FUNCTION_NAMES = st.sampled_from(
    [
        "In",
        "NotIn",
        "Between",
        "NotBetween",
        "LastXDays",
        "NextXYears",
        "OlderThanXMonths",
        "On",
        "OnOrAfter",
        "OnOrBefore",
        "Today",
        "EqualUserId",
        "LastXHours",
        "Under",
        "Nope",
    ]
)


def _values(items: list[str]) -> str:
    return "[" + ",".join(json.dumps(i) for i in items) + "]"


QUERY_FUNCTIONS = st.builds(
    lambda name, prop, value, many: (
        f"Microsoft.Dynamics.CRM.{name}(PropertyName='{prop}',"
        + (f"PropertyValues={_values(many)})" if many is not None else f"PropertyValue={value})")
    ),
    FUNCTION_NAMES,
    PROPERTIES,
    LITERALS,
    st.one_of(st.none(), st.lists(st.one_of(NUMBERS, DATES, SAFE_TEXT), max_size=4)),
)
CONDITIONS = st.one_of(
    st.builds(lambda p, o, v: f"{p} {o} {v}", PROPERTIES, OPERATORS, LITERALS),
    st.builds(
        lambda f, p, v: f"{f}({p},{v})",
        st.sampled_from(["contains", "startswith", "endswith", "substringof", "tolower"]),
        PROPERTIES,
        LITERALS,
    ),
    QUERY_FUNCTIONS,
    st.builds(
        lambda nav, p, v: f"{nav}/any(t:t/{p} eq {v})",
        st.sampled_from(["Account_Tasks", "lead_Tasks", "nosuch"]),
        PROPERTIES,
        LITERALS,
    ),
)
FILTERS = st.recursive(
    CONDITIONS,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a} and {b}", inner, inner),
        st.builds(lambda a, b: f"{a} or {b}", inner, inner),
        inner.map(lambda a: f"not {a}"),
        inner.map(lambda a: f"({a})"),
    ),
    max_leaves=6,
)
NAMES = st.lists(PROPERTIES.map(lambda p: p.split("/")[0]), max_size=4).map(",".join)
OPTION_VALUES = {
    "$filter": st.one_of(FILTERS, SAFE_TEXT),
    "$select": st.one_of(NAMES, SAFE_TEXT),
    "$orderby": st.one_of(
        st.builds(lambda n, d: f"{n} {d}", PROPERTIES, st.sampled_from(["asc", "desc", "up", ""])),
        SAFE_TEXT,
    ),
    "$top": st.one_of(NUMBERS, SAFE_TEXT),
    "$expand": st.one_of(
        st.builds(
            lambda nav, sel: f"{nav}($select={sel})",
            st.sampled_from(["parentaccountid", "Account_Tasks", "ownerid", "nosuch"]),
            NAMES,
        ),
        SAFE_TEXT,
    ),
    "$skiptoken": st.one_of(SAFE_TEXT, NUMBERS.map(lambda n: f'<cookie pagenumber="{n}" />')),
    "$count": st.sampled_from(["true", "false", "maybe", "1", ""]),
    "$deltatoken": st.one_of(st.builds(lambda v, d: f"{v}!{d}", NUMBERS, SAFE_TEXT), SAFE_TEXT),
    "@p": LITERALS,
    "@q": st.one_of(LITERALS, st.lists(NUMBERS, max_size=3).map(_values)),
    "$apply": SAFE_TEXT,
    "$skip": NUMBERS,
}
QUERIES = st.dictionaries(
    st.sampled_from(sorted(OPTION_VALUES)), st.just(None), max_size=5
).flatmap(lambda keys: st.fixed_dictionaries({k: OPTION_VALUES[k] for k in keys}))
COLLECTIONS = st.sampled_from(
    [
        "leads",
        "accounts",
        "tasks",
        f"leads({LEAD})",
        "leads/$count",
        f"accounts({ACCOUNT})/Account_Tasks",
        f"accounts({ACCOUNT})/Account_Tasks/$count",
        "EntityDefinitions",
        "EntityDefinitions(LogicalName='lead')/Attributes",
    ]
)


def _query_string(options: dict[str, str]) -> str:
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in options.items())


@PROFILE
@given(path=COLLECTIONS, options=QUERIES)
def test_generated_queries_never_get_a_5xx(target, path, options) -> None:
    handle, client = target
    query = _query_string(options)
    response = client.get(f"{path}?{query}" if query else path)
    _check(response, "queries", handle.token)


# -- headers ---------------------------------------------------------------------------------

HEADER_TEXT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=30
).map(str.strip)
ETAGS = st.one_of(
    NUMBERS.map(lambda n: f'W/"{n}"'), HEADER_TEXT, st.sampled_from(["*", "null", 'W/""', "W/"])
)
PREFERS = st.lists(
    st.one_of(
        NUMBERS.map(lambda n: f"odata.maxpagesize={n}"),
        st.sampled_from(
            [
                'odata.include-annotations="*"',
                "return=representation",
                "odata.track-changes",
                "odata.continue-on-error",
                'odata.include-annotations="OData.*',
                "return=minimal",
                "odata.maxpagesize",
                "odata.maxpagesize=",
                "=",
                ",,;",
            ]
        ),
        HEADER_TEXT,
    ),
    max_size=3,
).map(",".join)


def _authorization(token: str) -> st.SearchStrategy[str | None]:
    return st.one_of(
        st.sampled_from(
            [
                f"Bearer {token}",
                f"bearer {token}",
                f"BEARER  {token}",
                f"Bearer\t{token}",
                "Bearer",
                "Basic dXNlcjpwYXNz",
                f"Bearer {token}x",
                f"Bearer {token[:-1]}",
            ]
        ),
        HEADER_TEXT.map(lambda t: f"Bearer {t}".strip()),
        st.none(),
    )


HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "Prefer": PREFERS,
        "If-Match": ETAGS,
        "If-None-Match": ETAGS,
        "MSCRM.SuppressDuplicateDetection": st.one_of(HEADER_TEXT, st.sampled_from(["false"])),
        "MSCRM.BypassCustomPluginExecution": HEADER_TEXT,
        "Consistency": HEADER_TEXT,
        "CallerObjectId": st.one_of(HEADER_TEXT, st.uuids().map(str)),
        "OData-MaxVersion": HEADER_TEXT,
        "Accept": HEADER_TEXT,
    },
)
REQUESTS = st.sampled_from(
    [
        ("GET", "leads", None),
        ("GET", f"leads({LEAD})", None),
        ("PATCH", f"leads({LEAD})", {"subject": "header probe"}),
        ("PATCH", f"leads({uuid.UUID(int=7)})", {"lastname": "upserted"}),
        ("DELETE", f"leads({uuid.UUID(int=8)})", None),
        ("POST", "leads", {"lastname": "posted"}),
        ("GET", "WhoAmI", None),
        ("GET", f"accounts({ACCOUNT})/Account_Tasks", None),
    ]
)


@PROFILE
@given(request_=REQUESTS, headers=HEADERS, data=st.data())
def test_generated_headers_never_get_a_5xx(target, request_, headers, data) -> None:
    handle, client = target
    method, path, body = request_
    authorization = data.draw(_authorization(handle.token))
    request = client.build_request(
        method, path, content=orjson.dumps(body) if body is not None else None
    )
    if body is not None:
        request.headers["Content-Type"] = "application/json"
    if authorization is None:
        del request.headers["authorization"]
    else:
        request.headers["authorization"] = authorization
    request.headers.encoding = "utf-8"  # non-ASCII values go out as UTF-8 bytes
    for name, value in headers.items():
        request.headers[name] = value
    _check(client.send(request), "headers", handle.token)


# -- bodies ----------------------------------------------------------------------------------

COLUMNS = st.sampled_from(
    [
        "lastname",
        "subject",
        "firstname",
        "estimatedvalue",
        "revenue",
        "numberofemployees",
        "estimatedclosedate",
        "leadsourcecode",
        "donotemail",
        "description",
        "statuscode",
        "statecode",
        "leadid",
        "ownerid",
        "parentaccountid",
        "parentaccountid@odata.bind",
        "ownerid@odata.bind",
        "nosuchcolumn",
        "@odata.type",
        "_parentaccountid_value",
        "createdon",
        "versionnumber",
        "Account_Tasks",
    ]
)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    SAFE_TEXT,
    NUMBERS,
    DATES,
    GUIDS,
    st.sampled_from([f"/accounts({ACCOUNT})", f"/leads({LEAD})", "/accounts(x)", "accounts()"]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(COLUMNS, SAFE_TEXT), inner, max_size=3),
    ),
    max_leaves=8,
)
RECORDS = st.dictionaries(st.one_of(COLUMNS, SAFE_TEXT), JSON_VALUES, max_size=6)


def _raw_number_bodies() -> st.SearchStrategy[bytes]:
    """JSON text with numbers JSON encoders would never write (NaN, 1e999, 1_000, huge ints)."""
    return st.builds(
        lambda column, number: f'{{"lastname":"x","{column}":{number}}}'.encode(),
        COLUMNS,
        NUMBERS,
    )


@PROFILE
@given(
    method_path=st.sampled_from(
        [
            ("POST", "leads"),
            ("POST", "accounts"),
            ("POST", "tasks"),
            ("PATCH", f"leads({LEAD})"),
            ("PATCH", f"accounts({ACCOUNT})"),
            ("PUT", f"leads({LEAD})/subject"),
            ("PUT", f"leads({LEAD})/numberofemployees"),
            ("POST", f"accounts({ACCOUNT})/Account_Tasks/$ref"),
            ("PUT", f"leads({LEAD})/parentaccountid/$ref"),
        ]
    ),
    body=st.one_of(
        RECORDS.map(orjson.dumps),
        JSON_VALUES.map(orjson.dumps),
        _raw_number_bodies(),
        st.binary(max_size=40),
    ),
    representation=st.booleans(),
    select=st.one_of(st.none(), NAMES),
)
def test_generated_bodies_never_get_a_5xx(target, method_path, body, representation, select):
    handle, client = target
    method, path = method_path
    headers = {"Content-Type": "application/json"}
    if representation:
        headers["Prefer"] = "return=representation"
    if select is not None:
        path += f"?$select={quote(select, safe=',')}"
    response = client.request(method, path, content=body, headers=headers)
    _check(response, "bodies", handle.token)


@PROFILE
@given(
    action=st.sampled_from(["CreateMultiple", "UpdateMultiple", "UpsertMultiple"]),
    targets=st.lists(RECORDS, max_size=4),
    typed=st.booleans(),
    key=st.one_of(st.none(), GUIDS, NUMBERS),
)
def test_generated_bulk_bodies_never_get_a_5xx(target, action, targets, typed, key):
    handle, client = target
    items = []
    for record in targets:
        item = dict(record)
        if typed:
            item["@odata.type"] = "Microsoft.Dynamics.CRM.lead"
        if key is not None:
            item["leadid"] = key
        items.append(item)
    response = client.post(
        f"leads/Microsoft.Dynamics.CRM.{action}",
        content=orjson.dumps({"Targets": items}),
        headers={"Content-Type": "application/json"},
    )
    _check(response, "bulk", handle.token)


PART_LINES = st.one_of(
    st.builds(
        lambda method, path, query: f"{method} {path}{query} HTTP/1.1",
        st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT", "BREW"]),
        st.sampled_from(
            [
                "/api/data/v9.2/leads",
                f"/api/data/v9.2/leads({LEAD})",
                "leads",
                "$1",
                "/api/data/v9.2/$batch",
                "http://elsewhere/api/data/v9.2/leads",
                "",
            ]
        ),
        st.one_of(st.just(""), FILTERS.map(lambda f: "?$filter=" + f)),
    ),
    HEADER_TEXT,
)


def _batch(parts: list[tuple[str, bytes, bool]], changeset: bool) -> bytes:
    chunks = []
    for index, (line, body, json_type) in enumerate(parts, start=1):
        head = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        if changeset:
            head += f"Content-ID: {index}\r\n"
        inner = f"{line}\r\n" + ("Content-Type: application/json\r\n" if json_type else "")
        chunks.append(f"--{'c' if changeset else 'b'}\r\n{head}\r\n{inner}\r\n".encode() + body)
    if changeset:
        inner_body = b"\r\n".join(chunks) + b"\r\n--c--\r\n"
        return (
            b"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n" + inner_body + b"--b--\r\n"
        )
    return b"\r\n".join(chunks) + b"\r\n--b--\r\n"


@PROFILE
@given(
    parts=st.lists(
        st.tuples(
            PART_LINES, st.one_of(RECORDS.map(orjson.dumps), st.binary(max_size=20)), st.booleans()
        ),
        min_size=1,
        max_size=4,
    ),
    changeset=st.booleans(),
    continue_on_error=st.booleans(),
)
def test_generated_batches_never_get_a_5xx(target, parts, changeset, continue_on_error):
    handle, client = target
    headers = {"Content-Type": "multipart/mixed; boundary=b"}
    if continue_on_error:
        headers["Prefer"] = "odata.continue-on-error"
    response = client.post("$batch", content=_batch(parts, changeset), headers=headers)
    TRIED["batches"] += 1
    assert response.status_code < 500, response.text[:400]
    if response.headers.get("content-type", "").startswith("multipart/mixed"):
        # every part answered for itself: none of them a 5xx
        assert "HTTP/1.1 5" not in response.text, response.text[:1000]
    elif response.status_code >= 400:
        assert isinstance(response.json()["error"]["message"], str)


COOKIE_ATTRS = st.dictionaries(
    st.sampled_from(["pagenumber", "phase", "last", "upto", "initial", "istracking", "x"]),
    st.one_of(NUMBERS, st.sampled_from(["u", "d", "True", ""]), SAFE_TEXT.map(lambda t: t[:5])),
    max_size=6,
)


@PROFILE
@given(attrs=COOKIE_ATTRS, count=st.booleans())
def test_generated_change_tracking_cursors_never_get_a_5xx(target, attrs, count) -> None:
    handle, client = target
    first = client.get("leads?$select=lastname", headers={"Prefer": "odata.track-changes"})
    token = first.json()["@odata.deltaLink"].split("$deltatoken=")[1]
    cookie = " ".join(f'{k}="{v.replace(chr(34), "")}"' for k, v in attrs.items())
    skiptoken = quote(f"<cookie {cookie} />", safe="")
    path = "leads/$count" if count else "leads"
    response = client.get(f"{path}?$select=lastname&$deltatoken={token}&$skiptoken={skiptoken}")
    _check(response, "change cursors", handle.token)


# FetchXML (https://learn.microsoft.com/power-apps/developer/data-platform/fetchxml/overview):
# odd numbers in top/count/page/aggregatelimit, condition values and operators, paging cookies.
FETCH_OPERATORS = st.sampled_from(
    ["eq", "ne", "gt", "le", "like", "in", "null", "not-null", "between", "last-x-days",
     "next-x-days", "on-or-after", "eq-userid", "nosuch", ""]
)
FETCH_ATTRIBUTES = st.sampled_from(
    ["lastname", "statuscode", "createdon", "revenue", "leadid", "parentaccountid", "nosuch"]
)


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


FETCH_NUMBER = st.one_of(WEIRD_NUMBERS, NUMBERS, st.sampled_from(["", "0", "5", "50001"]))
FETCH_VALUES = st.one_of(NUMBERS, DATES, SAFE_TEXT, GUIDS)


@st.composite
def fetch_xml(draw) -> str:
    fetch_attrs = draw(
        st.dictionaries(
            st.sampled_from(["top", "count", "page", "aggregatelimit", "aggregate", "distinct"]),
            st.one_of(FETCH_NUMBER, st.sampled_from(["true", "false"])),
            max_size=3,
        )
    )
    conditions = draw(
        st.lists(
            st.tuples(FETCH_ATTRIBUTES, FETCH_OPERATORS, st.lists(FETCH_VALUES, max_size=3)),
            max_size=3,
        )
    )
    head = " ".join(f'{k}="{_xml_text(v)}"' for k, v in fetch_attrs.items())
    body = "".join(
        f'<condition attribute="{a}" operator="{o}"'
        + (
            f' value="{_xml_text(vals[0])}"/>'
            if len(vals) == 1
            else ">" + "".join(f"<value>{_xml_text(v)}</value>" for v in vals) + "</condition>"
        )
        for a, o, vals in conditions
    )
    aggregate = fetch_attrs.get("aggregate") == "true"
    attribute = (
        '<attribute name="leadid" alias="n" aggregate="count"/>'
        '<attribute name="statuscode" alias="s" groupby="true"/>'
        if aggregate
        else '<attribute name="lastname"/>'
    )
    return (
        f'<fetch {head}><entity name="lead">{attribute}'
        f'<filter type="{draw(st.sampled_from(["and", "or", "xor"]))}">{body}</filter>'
        "</entity></fetch>"
    )


@PROFILE
@given(xml=fetch_xml())
def test_generated_fetchxml_never_gets_a_5xx(target, xml) -> None:
    handle, client = target
    response = client.get(f"leads?fetchXml={quote(xml, safe='')}")
    _check(response, "fetchxml", handle.token)
