"""Hostile input on the sandbox's HTTP surface: every case is a client mistake, and for each
the sandbox must answer a 4xx with Dataverse's error body (one-line message), write nothing
(row counts and the highest row version of every table unchanged) and echo no token.

Error shape: `{"error":{"code","message"}}`,
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors
(400 for an invalid argument, 413 when the request is too large, 412 for a version mismatch or
duplicate record). Query limits: https://learn.microsoft.com/power-apps/developer/data-platform/
webapi/query/overview (32 KB URLs). Bulk actions and their duplicate rules:
https://learn.microsoft.com/power-apps/developer/data-platform/bulk-operations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from tests.support.sandboxes import api_client

LEAD = "0000aaaa-0000-4000-8000-00000000a001"  # created by the `lead` fixture
ACCOUNT = "0000aaaa-0000-4000-8000-00000000a002"
MISSING = "0000aaaa-0000-4000-8000-00000000dead"
BOGUS_TOKEN = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJob3N0aWxlIn0.c2VjcmV0LXNpZ25hdHVyZQ"
REPRESENT = {"Prefer": "return=representation"}
JSON_BODY = {"Content-Type": "application/json"}


@dataclass
class Case:
    id: str
    method: str
    path: str
    status: int
    body: Any = None  # dict/list -> JSON; bytes/str sent as is
    headers: dict[str, str] = field(default_factory=dict)
    auth: str | None = "good"  # "good", None (no header) or a literal Authorization value


def _lead(**values: Any) -> dict[str, Any]:
    return {"lastname": "Hostile", "subject": "case", **values}


def _task(**values: Any) -> dict[str, Any]:
    return {"subject": "x", **values}


def _bound_to(target: Any) -> dict[str, Any]:
    """A lead whose parent account is set by ``@odata.bind`` to ``target``."""
    return _lead(**{"parentaccountid@odata.bind": target})


def _deep(levels: int) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "leaf"}
    for _ in range(levels):
        body = {"name": "level", "parentaccountid": body}
    return body


def _targets(*items: dict[str, Any], kind: str = "lead") -> dict[str, Any]:
    return {"Targets": [{"@odata.type": f"Microsoft.Dynamics.CRM.{kind}", **t} for t in items]}


def _rmc(query: str) -> str:
    return f"RetrieveMetadataChanges(Query=@q)?@q={query}"


def _condition(operator_and_value: str) -> str:
    """A RetrieveMetadataChanges query with one condition on LogicalName; ``operator_and_value``
    is the rest of the condition's JSON members."""
    return '{"Criteria":{"Conditions":[{"PropertyName":"LogicalName",' + operator_and_value + "}]}}"


def _bulk(action: str, table: str = "leads") -> str:
    return f"{table}/Microsoft.Dynamics.CRM.{action}"


FILTERS = [  # (id, $filter) -> 400
    ("year-0", "createdon gt 0000-01-01T00:00:00Z"),
    ("year-99999", "createdon gt 99999-01-01T00:00:00Z"),
    ("month-13", "createdon gt 2020-13-01T00:00:00Z"),
    ("day-32", "createdon gt 2020-01-32T00:00:00Z"),
    ("feb-30-date", "estimatedclosedate eq 2020-02-30"),
    ("hour-25", "createdon gt 2020-01-01T25:00:00Z"),
    ("month-13-date", "estimatedclosedate eq 2020-13-01"),
    ("underscore-number", "statuscode eq 1_000"),
    ("nan-word", "estimatedvalue gt nan"),
    ("infinity-word", "estimatedvalue gt Infinity"),
    ("overflow-float", "estimatedvalue gt 1e999"),
    ("superscript-digit", "statuscode eq ²"),
    ("unterminated-string", "lastname eq 'O'Bryan'"),
    ("unknown-property", "nosuchcolumn eq 1"),
    ("dangling-and", "statuscode eq 1 and"),
    ("only-operator", "eq"),
    ("bad-operator", "statuscode === 1"),
    ("empty-parens", "()"),
    ("unbalanced-paren", "(statuscode eq 1"),
    (
        "in-huge-int",
        "Microsoft.Dynamics.CRM.In(PropertyName='statuscode',"
        'PropertyValues=["99999999999999999999999"])',
    ),
    ("in-nan", "Microsoft.Dynamics.CRM.In(PropertyName='estimatedvalue',PropertyValues=[\"nan\"])"),
    (
        "in-infinity",
        "Microsoft.Dynamics.CRM.In(PropertyName='estimatedvalue',PropertyValues=[\"Infinity\"])",
    ),
    (
        "in-underscore",
        "Microsoft.Dynamics.CRM.In(PropertyName='numberofemployees',PropertyValues=[\"1_000\"])",
    ),
    (
        "in-superscript",
        "Microsoft.Dynamics.CRM.In(PropertyName='numberofemployees',PropertyValues=[\"²\"])",
    ),
    ("in-not-a-list", "Microsoft.Dynamics.CRM.In(PropertyName='statuscode',PropertyValues=5)"),
    ("in-unknown-column", "Microsoft.Dynamics.CRM.In(PropertyName='nope',PropertyValues=[\"1\"])"),
    (
        "lastxdays-huge",
        "Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',"
        "PropertyValue=99999999999999999)",
    ),
    (
        "lastxdays-superscript",
        "Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue='²')",
    ),
    (
        "lastxdays-text",
        "Microsoft.Dynamics.CRM.LastXDays(PropertyName='createdon',PropertyValue='soon')",
    ),
    (
        "nextxyears-huge",
        "Microsoft.Dynamics.CRM.NextXYears(PropertyName='createdon',PropertyValue=99999)",
    ),
    ("on-year-0", "Microsoft.Dynamics.CRM.On(PropertyName='createdon',PropertyValue='0000-01-01')"),
    (
        "on-month-13",
        "Microsoft.Dynamics.CRM.On(PropertyName='createdon',PropertyValue='2020-13-01')",
    ),
    (
        "between-one-value",
        "Microsoft.Dynamics.CRM.Between(PropertyName='numberofemployees',PropertyValues=[\"5\"])",
    ),
    ("unknown-function", "Microsoft.Dynamics.CRM.Sometime(PropertyName='createdon')"),
    ("contains-number", "contains(lastname, 5)"),
    ("guid-superscript", "leadid eq 00000000-0000-0000-0000-00000000000²"),
    ("too-many-ors", " or ".join(["statuscode eq 1"] * 501)),
    ("deep-not", "not " * 3000 + "statuscode eq 1"),
    ("alias-superscript", "statuscode eq @p&@p=²"),
    ("alias-underscore", "numberofemployees eq @p&@p=1_000"),
]

TOPS = [
    "²",
    "٣",
    "-1",
    "1e3",
    "1.5",
    "99999999999999999999999",
    "",
    " ",
    "abc",
    "0x10",
    "1_000",
    "5.0",
    "nan",
    "Infinity",
]

BAD_ETAGS = [  # (id, If-Match) on a write to an existing lead -> 412
    ("superscript", 'W/"²"'),
    ("huge", 'W/"99999999999999999999999999999"'),
    ("huge-30-digits", 'W/"123456789012345678901234567890"'),
    ("stale", 'W/"1"'),
    ("garbage", "garbage"),
]

# A 4xx answer to a write writes nothing, even when the body was fine: (id, method, path, body),
# sent with Prefer: return=representation -> 400
REPRESENTATIONS = [
    ("post-representation-bad-select", "POST", "leads?$select=nosuchcolumn", _lead()),
    ("post-representation-bad-expand", "POST", "leads?$expand=nosuchnav", _lead()),
    ("post-representation-empty-select", "POST", "leads?$select=", _lead()),
    (
        "post-representation-bad-expand-option",
        "POST",
        "leads?$expand=parentaccountid($select=nosuchcolumn)",
        _lead(),
    ),
    (
        "patch-representation-bad-select",
        "PATCH",
        f"leads({LEAD})?$select=nosuchcolumn",
        {"subject": "changed"},
    ),
    ("upsert-representation-bad-select", "PATCH", f"leads({MISSING})?$select=nosuch", _lead()),
]

MULTIPART = {"Content-Type": "multipart/mixed; boundary=b"}
BATCHES = [  # (id, body) of a multipart/mixed $batch with boundary b -> 400
    (
        "batch-lf-only",
        b"--b\nContent-Type: application/http\n\nGET /api/data/v9.2/leads HTTP/1.1\n\n--b--\n",
    ),
    (
        "batch-no-close",
        b"--b\r\nContent-Type: application/http\r\n\r\nGET /api/data/v9.2/leads HTTP/1.1\r\n\r\n",
    ),
    (
        "batch-get-in-changeset",
        b"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n"
        b"Content-Type: application/http\r\n\r\nGET /api/data/v9.2/leads HTTP/1.1\r\n\r\n"
        b"--c--\r\n--b--\r\n",
    ),
    (
        "batch-too-many-parts",
        b"".join(
            b"--b\r\nContent-Type: application/http\r\n\r\nGET /api/data/v9.2/WhoAmI HTTP/1.1"
            b"\r\n\r\n"
            for _ in range(1001)
        )
        + b"--b--\r\n",
    ),
]

METADATA_QUERIES = [  # (id, RetrieveMetadataChanges Query JSON) -> 400
    ("invalid-json", "{"),
    ("array", "[]"),
    ("criteria-number", '{"Criteria":5}'),
    ("conditions-number", '{"Criteria":{"Conditions":5}}'),
    ("condition-number", '{"Criteria":{"Conditions":[5]}}'),
    ("property-name-number", '{"Criteria":{"Conditions":[{"PropertyName":5}]}}'),
    ("operator-unknown", _condition('"ConditionOperator":"Like"')),
    ("in-not-list", _condition('"ConditionOperator":"In","Value":{"Value":5}')),
    ("greater-than-mixed", _condition('"ConditionOperator":"GreaterThan","Value":{"Value":5}')),
    ("properties-number", '{"Properties":5}'),
    ("property-names-number", '{"Properties":{"PropertyNames":5}}'),
    ("attribute-query-number", '{"AttributeQuery":5}'),
    (
        "attribute-criteria-bad",
        '{"AttributeQuery":{"Criteria":{"Conditions":[{"PropertyName":[1]}]}}}',
    ),
    ("filters-too-deep", '{"Criteria":' + '{"Filters":[' * 40 + "{}" + "]}" * 40 + "}"),
    ("filter-operator-bad", '{"Criteria":{"FilterOperator":"Xor"}}'),
]

QUERY_OPTIONS = [  # (id, query string) -> 400
    ("select-unknown", "$select=nosuchcolumn"),
    ("select-empty-item", "$select=,"),
    ("orderby-unknown", "$orderby=nosuchcolumn"),
    ("orderby-double-direction", "$orderby=createdon desc desc"),
    ("expand-unknown", "$expand=nosuchnav"),
    (
        "expand-too-deep",
        "$expand=" + "parentaccountid($expand=" * 20 + "parentaccountid" + ")" * 20,
    ),
    ("count-maybe", "$count=maybe"),
    ("skiptoken-garbage", "$skiptoken=garbage"),
    ("skiptoken-superscript", "$skiptoken=%3Ccookie%20pagenumber=%22²%22%20/%3E"),
    ("skip-unsupported", "$skip=10"),
    ("search-unsupported", "$search=x"),
    ("top-twice", "$top=1&$top=2"),
    ("deltatoken-superscript", "$deltatoken=²!01/01/2020 00:00:00"),
    ("deltatoken-huge", "$deltatoken=999999999999999999999999!01/01/2020 00:00:00"),
    ("deltatoken-month-13", "$deltatoken=1!13/45/2020 00:00:00"),
    ("deltatoken-year-0", "$deltatoken=1!01/01/0000 00:00:00"),
]

CASES: list[Case] = []
CASES += [Case(f"filter-{i}", "GET", f"leads?$filter={f}", 400) for i, f in FILTERS]
CASES += [Case(f"top-{i}-{t!r}", "GET", f"leads?$top={t}", 400) for i, t in enumerate(TOPS)]
CASES += [Case(f"query-{i}", "GET", f"leads?{q}", 400) for i, q in QUERY_OPTIONS]
CASES += [
    # -- addressing -----------------------------------------------------------------------
    Case("key-not-guid", "GET", "leads(not-a-guid)", 400),
    Case("key-superscript", "GET", "leads(²)", 400),
    Case("unknown-set", "GET", "nosuchthings", 404),
    Case("unknown-set-post", "POST", "nosuchthings", 404, body={"a": 1}),
    Case("unknown-property-segment", "GET", f"leads({LEAD})/nosuchcolumn", 404),
    Case("missing-record", "GET", f"leads({MISSING})", 404),
    Case("ref-on-plain-column", "GET", f"leads({LEAD})/lastname/$ref", 400),
    Case("whoami-post", "POST", "WhoAmI", 404, body={}),
    Case("patch-collection", "PATCH", "leads", 405, body=_lead()),
    Case("delete-collection", "DELETE", "leads", 405),
    # -- creating ---------------------------------------------------------------------------
    Case("post-invalid-json", "POST", "leads", 400, body=b'{"lastname": '),
    Case("post-empty-body", "POST", "leads", 400, body=b""),
    Case("post-blank-body", "POST", "leads", 400, body=b"   "),
    Case("post-array", "POST", "leads", 400, body=[_lead()]),
    Case("post-string", "POST", "leads", 400, body="a lead"),
    Case("post-number", "POST", "leads", 400, body=5),
    Case("post-null", "POST", "leads", 400, body=b"null"),
    Case("post-not-utf8", "POST", "leads", 400, body=b"\xff\xfe{}"),
    Case("post-nan-literal", "POST", "leads", 400, body=b'{"lastname":"x","estimatedvalue":NaN}'),
    Case(
        "post-infinity-literal",
        "POST",
        "leads",
        400,
        body=b'{"lastname":"x","estimatedvalue":Infinity}',
    ),
    Case("post-huge-float", "POST", "leads", 400, body=b'{"lastname":"x","estimatedvalue":1e999}'),
    Case("post-unknown-property", "POST", "leads", 400, body=_lead(nosuchcolumn=1)),
    Case("post-money-nan-text", "POST", "leads", 400, body=_lead(estimatedvalue="nan")),
    Case("post-money-infinity-text", "POST", "leads", 400, body=_lead(estimatedvalue="Infinity")),
    Case("post-money-underscore", "POST", "leads", 400, body=_lead(estimatedvalue="1_000")),
    Case("post-money-superscript", "POST", "leads", 400, body=_lead(estimatedvalue="²")),
    Case("post-money-words", "POST", "leads", 400, body=_lead(estimatedvalue="lots")),
    Case("post-money-too-big", "POST", "leads", 400, body=_lead(estimatedvalue=1e300)),
    Case("post-money-bool", "POST", "leads", 400, body=_lead(estimatedvalue=True)),
    Case("post-money-object", "POST", "leads", 400, body=_lead(estimatedvalue={"v": 1})),
    Case(
        "post-int-huge",
        "POST",
        "leads",
        400,
        body=b'{"lastname":"x","numberofemployees":1000000000000000000000000000000}',
    ),
    Case(
        "post-int-huge-negative",
        "POST",
        "tasks",
        400,
        body=b'{"subject":"x","actualdurationminutes":-99999999999999999999}',
    ),
    Case("post-int-negative", "POST", "leads", 400, body=_lead(numberofemployees=-1)),
    Case("post-int-text", "POST", "leads", 400, body=_lead(numberofemployees="12")),
    Case("post-int-fraction", "POST", "leads", 400, body=_lead(numberofemployees=1.5)),
    Case("post-int-bool", "POST", "leads", 400, body=_lead(numberofemployees=True)),
    Case("post-choice-unknown", "POST", "leads", 400, body=_lead(leadsourcecode=424242)),
    Case("post-choice-text", "POST", "leads", 400, body=_lead(leadsourcecode="Web")),
    Case("post-bool-text", "POST", "leads", 400, body=_lead(donotemail="yes")),
    Case("post-bool-number", "POST", "leads", 400, body=_lead(donotemail=1)),
    Case("post-string-number", "POST", "leads", 400, body=_lead(firstname=5)),
    Case("post-string-too-long", "POST", "leads", 400, body=_lead(firstname="x" * 51)),
    Case("post-memo-too-long", "POST", "leads", 400, body=_lead(description="x" * 2001)),
    Case("post-date-year-0", "POST", "leads", 400, body=_lead(estimatedclosedate="0000-01-01")),
    Case(
        "post-date-year-99999", "POST", "leads", 400, body=_lead(estimatedclosedate="99999-01-01")
    ),
    Case("post-date-month-13", "POST", "leads", 400, body=_lead(estimatedclosedate="2020-13-01")),
    Case("post-date-feb-30", "POST", "leads", 400, body=_lead(estimatedclosedate="2020-02-30")),
    Case(
        "post-date-before-1753", "POST", "leads", 400, body=_lead(estimatedclosedate="1600-01-01")
    ),
    Case("post-date-number", "POST", "leads", 400, body=_lead(estimatedclosedate=20200101)),
    Case(
        "post-datetime-hour-25",
        "POST",
        "tasks",
        400,
        body=_task(scheduledend="2020-01-01T25:00:00Z"),
    ),
    Case("post-datetime-garbage", "POST", "tasks", 400, body=_task(scheduledend="next tuesday")),
    Case("post-percent-out-of-range", "POST", "tasks", 400, body=_task(percentcomplete=101)),
    Case("post-bind-missing-record", "POST", "leads", 404, body=_bound_to(f"/accounts({MISSING})")),
    Case("post-bind-not-guid", "POST", "leads", 400, body=_bound_to("/accounts(xyz)")),
    Case("post-bind-wrong-table", "POST", "leads", 400, body=_bound_to(f"/leads({LEAD})")),
    Case("post-bind-number", "POST", "leads", 400, body=_bound_to(5)),
    Case(
        "post-bind-undeclared",
        "POST",
        "leads",
        400,
        body=_lead(**{"nosuchnav@odata.bind": f"/accounts({ACCOUNT})"}),
    ),
    Case("post-lookup-as-value", "POST", "leads", 400, body=_lead(parentaccountid=ACCOUNT)),
    Case("post-existing-key", "POST", "leads", 412, body=_lead(leadid=LEAD)),
    Case("post-key-not-guid", "POST", "leads", 400, body=_lead(leadid="42")),
    Case("post-deep-insert-too-deep", "POST", "accounts", 400, body=_deep(40)),
    Case(
        "post-deep-insert-bad-leaf",
        "POST",
        "accounts",
        400,
        body={"name": "a", "parentaccountid": {"name": "b", "numberofemployees": "many"}},
    ),
    Case(
        "post-deep-children-not-objects",
        "POST",
        "accounts",
        400,
        body={"name": "a", "Account_Tasks": [1, 2]},
    ),
    Case(
        "post-deep-child-bad",
        "POST",
        "accounts",
        400,
        body={"name": "a", "Account_Tasks": [{"subject": "ok"}, {"percentcomplete": 999}]},
    ),
    Case("post-json-too-deep", "POST", "leads", 400, body=b'{"a":' * 600 + b"1" + b"}" * 600),
    *(Case(i, m, path, 400, body=b, headers=REPRESENT) for i, m, path, b in REPRESENTATIONS),
    # -- updating ----------------------------------------------------------------------------
    Case("patch-invalid-json", "PATCH", f"leads({LEAD})", 400, body=b"{"),
    Case("patch-bad-value", "PATCH", f"leads({LEAD})", 400, body={"numberofemployees": "x"}),
    *(
        Case(
            f"patch-if-match-{i}",
            "PATCH",
            f"leads({LEAD})",
            412,
            body={"subject": "changed"},
            headers={"If-Match": etag},
        )
        for i, etag in BAD_ETAGS
    ),
    Case(
        "patch-if-match-star-missing",
        "PATCH",
        f"leads({MISSING})",
        404,
        body=_lead(),
        headers={"If-Match": "*"},
    ),
    Case(
        "patch-if-none-match-star-existing",
        "PATCH",
        f"leads({LEAD})",
        412,
        body={"subject": "changed"},
        headers={"If-None-Match": "*"},
    ),
    Case(
        "patch-deep-insert",
        "PATCH",
        f"leads({LEAD})",
        400,
        body={"parentaccountid": {"name": "new"}},
    ),
    Case(
        "patch-required-to-null", "PATCH", f"leads({LEAD})", 400, body={"ownerid@odata.bind": None}
    ),
    Case("put-property-no-value", "PUT", f"leads({LEAD})/subject", 400, body={"v": "x"}),
    Case(
        "put-property-bad-value",
        "PUT",
        f"leads({LEAD})/numberofemployees",
        400,
        body={"value": "many"},
    ),
    Case("put-property-unknown", "PUT", f"leads({LEAD})/nosuchcolumn", 404, body={"value": 1}),
    Case(
        "put-property-missing-record", "PUT", f"leads({MISSING})/subject", 404, body={"value": "x"}
    ),
    Case("put-ref-bad-body", "PUT", f"leads({LEAD})/parentaccountid/$ref", 400, body={"x": 1}),
    Case(
        "put-ref-missing-target",
        "PUT",
        f"leads({LEAD})/parentaccountid/$ref",
        404,
        body={"@odata.id": f"accounts({MISSING})"},
    ),
    # -- deleting ----------------------------------------------------------------------------
    Case("delete-missing", "DELETE", f"leads({MISSING})", 404),
    *(
        Case(f"delete-if-match-{i}", "DELETE", f"leads({LEAD})", 412, headers={"If-Match": etag})
        for i, etag in BAD_ETAGS
    ),
    # -- bulk actions -------------------------------------------------------------------------
    Case(
        "create-multiple-duplicate-ids",
        "POST",
        _bulk("CreateMultiple"),
        412,
        body=_targets(_lead(leadid=MISSING), _lead(leadid=MISSING)),
    ),
    Case(
        "create-multiple-existing-id",
        "POST",
        _bulk("CreateMultiple"),
        412,
        body=_targets(_lead(), _lead(leadid=LEAD)),
    ),
    Case(
        "create-multiple-second-bad",
        "POST",
        _bulk("CreateMultiple"),
        400,
        body=_targets(_lead(), _lead(numberofemployees="many")),
    ),
    Case(
        "create-multiple-no-type",
        "POST",
        _bulk("CreateMultiple"),
        400,
        body={"Targets": [_lead()]},
    ),
    Case(
        "create-multiple-wrong-type",
        "POST",
        _bulk("CreateMultiple"),
        400,
        body=_targets(_lead(), kind="account"),
    ),
    Case(
        "create-multiple-empty",
        "POST",
        _bulk("CreateMultiple"),
        400,
        body={"Targets": []},
    ),
    Case(
        "create-multiple-not-list",
        "POST",
        _bulk("CreateMultiple"),
        400,
        body={"Targets": {"a": 1}},
    ),
    Case(
        "create-multiple-not-object",
        "POST",
        _bulk("CreateMultiple"),
        400,
        body={"Targets": [1]},
    ),
    Case(
        "create-multiple-invalid-json",
        "POST",
        _bulk("CreateMultiple"),
        400,
        body=b"{",
    ),
    Case(
        "create-multiple-too-deep",
        "POST",
        _bulk("CreateMultiple", "accounts"),
        400,
        body=_targets(_deep(40), kind="account"),
    ),
    Case(
        "update-multiple-no-key",
        "POST",
        _bulk("UpdateMultiple"),
        400,
        body=_targets({"subject": "x"}),
    ),
    Case(
        "update-multiple-key-number",
        "POST",
        _bulk("UpdateMultiple"),
        400,
        body=_targets({"leadid": 5, "subject": "x"}),
    ),
    Case(
        "update-multiple-missing-record",
        "POST",
        _bulk("UpdateMultiple"),
        404,
        body=_targets({"leadid": LEAD, "subject": "x"}, {"leadid": MISSING}),
    ),
    Case(
        "upsert-multiple-duplicate-ids",
        "POST",
        _bulk("UpsertMultiple"),
        400,
        body=_targets({"leadid": LEAD, "subject": "a"}, {"leadid": LEAD, "subject": "b"}),
    ),
    Case(
        "upsert-multiple-duplicate-odata-id",
        "POST",
        _bulk("UpsertMultiple"),
        400,
        body=_targets(
            {"@odata.id": f"leads({MISSING})", **_lead()}, {"leadid": MISSING, **_lead()}
        ),
    ),
    Case(
        "upsert-multiple-bad-odata-id",
        "POST",
        _bulk("UpsertMultiple"),
        400,
        body=_targets({"@odata.id": "accounts(x)", "subject": "a"}),
    ),
    # -- $batch framing ----------------------------------------------------------------------
    Case("batch-not-multipart", "POST", "$batch", 400, body={"requests": []}),
    Case(
        "batch-no-boundary",
        "POST",
        "$batch",
        400,
        body=b"--x\r\n--x--\r\n",
        headers={"Content-Type": "multipart/mixed"},
    ),
    *(Case(i, "POST", "$batch", 400, body=body, headers=MULTIPART) for i, body in BATCHES),
    # -- authentication ---------------------------------------------------------------------
    Case("auth-missing", "GET", "leads", 401, auth=None),
    Case("auth-bogus-token", "GET", "leads", 401, auth=f"Bearer {BOGUS_TOKEN}"),
    Case("auth-basic", "GET", "leads", 401, auth="Basic dXNlcjpwYXNz"),
    Case("auth-scheme-only", "GET", "leads", 401, auth="Bearer"),
    Case("auth-bogus-write", "POST", "leads", 401, body=_lead(), auth=f"Bearer {BOGUS_TOKEN}"),
    Case(
        "auth-bogus-batch",
        "POST",
        "$batch",
        401,
        body=b"--b--\r\n",
        headers=MULTIPART,
        auth=f"bearer {BOGUS_TOKEN}",
    ),
    # -- metadata function and queries ---------------------------------------------------------
    *(Case(f"rmc-{i}", "GET", _rmc(query), 400) for i, query in METADATA_QUERIES),
    Case("rmc-no-parentheses", "GET", "RetrieveMetadataChanges", 400),
    Case("entitydefinitions-top-superscript", "GET", "EntityDefinitions?$top=²", 400),
    Case("entitydefinitions-top-huge", "GET", "EntityDefinitions?$top=1" + "0" * 40, 400),
    Case("entitydefinitions-filter-bad", "GET", "EntityDefinitions?$filter=LogicalName eq", 400),
    Case("entitydefinitions-unknown-key", "GET", "EntityDefinitions(LogicalName='nope')", 404),
    # -- sizes ------------------------------------------------------------------------------------
    Case("url-too-long", "GET", "leads?$filter=" + "a" * 40_000, 414),
    Case("header-too-large", "GET", "leads", 431, headers={"X-Padding": "p" * 20_000}),
]

IDS = [c.id for c in CASES]
assert len(IDS) == len(set(IDS)), "case ids must be unique"


def test_the_table_has_enough_cases() -> None:
    assert len(CASES) >= 120


def _snapshot(org) -> dict[str, tuple[int, int | None]]:
    """Row count and highest row version of every table, plus the tombstones."""
    out = {}
    with org.store.lock:
        conn = org.store.conn
        for name, table in org.schema.items():
            if "versionnumber" in table.columns:
                row = conn.execute(f'SELECT COUNT(*), MAX(versionnumber) FROM "{name}"').fetchone()
            else:
                row = (conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0], None)
            out[name] = tuple(row)
        out["_tombstones"] = (conn.execute("SELECT COUNT(*) FROM _tombstones").fetchone()[0], None)
    return out


@pytest.fixture(scope="module")
def hostile(sandbox):
    """The session sandbox with the records the cases address."""
    with api_client(sandbox) as client:
        for path, body in (
            (f"accounts({ACCOUNT})", {"name": "Hostile Inc"}),
            (f"leads({LEAD})", _lead()),
        ):
            response = client.patch(path, json=body)
            assert response.status_code in (201, 204), response.text
        yield sandbox, client


def _send(client, case: Case):
    if case.body is None:
        content = None
    elif isinstance(case.body, bytes):
        content = case.body
    elif isinstance(case.body, str):
        content = json.dumps(case.body).encode()
    else:
        content = orjson.dumps(case.body)
    extra = dict(case.headers)
    if content is not None and not any(k.lower() == "content-type" for k in extra):
        extra["Content-Type"] = "application/json"
    request = client.build_request(case.method, case.path, content=content)
    if case.auth is None:
        del request.headers["authorization"]
    elif case.auth != "good":
        request.headers["authorization"] = case.auth
    request.headers.encoding = "utf-8"  # non-ASCII values go out as UTF-8 bytes
    for name, value in extra.items():
        request.headers[name] = value
    return client.send(request)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_client_mistake_gets_a_4xx_and_writes_nothing(hostile, case: Case) -> None:
    sandbox, client = hostile
    before = _snapshot(sandbox.org)
    response = _send(client, case)
    after = _snapshot(sandbox.org)

    assert response.status_code == case.status, response.text[:500]
    error = response.json()["error"]
    assert isinstance(error["code"], str)
    assert isinstance(error["message"], str) and error["message"].strip()
    assert "\n" not in error["message"] and "\r" not in error["message"]
    assert len(error["message"]) <= 2000
    assert after == before, f"{case.id} wrote something"
    for secret in (sandbox.token, BOGUS_TOKEN):
        assert secret not in response.text
        assert all(secret not in v for v in response.headers.values())


@pytest.mark.parametrize(
    "cookie",
    [
        'phase="u" last="99999999999999999999999" upto="5" initial="1"',
        'phase="u" last="1" upto="99999999999999999999999" initial="0"',
        'phase="d" last="-1" upto="5" initial="0"',
        'pagenumber="²" phase="u" last="1" upto="5" initial="0"',
        'phase="u" last="٣" upto="5" initial="0"',
        'phase="x" last="1" upto="5" initial="0"',
        'phase="u" upto="5" initial="0"',
    ],
)
def test_a_forged_change_tracking_cursor_gets_a_400(hostile, cookie: str) -> None:
    """A `$skiptoken` on a delta link is the sandbox's own cookie; a forged one is a 400
    (https://learn.microsoft.com/power-apps/developer/data-platform/use-change-tracking-synchronize-data-external-systems)."""
    sandbox, client = hostile
    first = client.get("leads?$select=lastname", headers={"Prefer": "odata.track-changes"})
    token = first.json()["@odata.deltaLink"].split("$deltatoken=")[1]
    before = _snapshot(sandbox.org)
    skiptoken = quote(f'<cookie pagenumber="2" {cookie} istracking="True" />', safe="")
    response = client.get(f"leads?$select=lastname&$deltatoken={token}&$skiptoken={skiptoken}")
    assert response.status_code == 400, response.text[:300]
    assert "\n" not in response.json()["error"]["message"]
    assert _snapshot(sandbox.org) == before
