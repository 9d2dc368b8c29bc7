"""A notebook flow as an Azure Logic Apps (Consumption) workflow definition.

>>> definition = flow.to_logic_app()                 # Dataverse "When a row is added, ..."
>>> template = flow.to_logic_app(arm=True)           # ARM template with the API connection
>>> old = flow.to_logic_app(legacy=True)             # Dynamics 365 polling trigger

Shapes follow what the Logic Apps designer writes (``flows-semantics.md`` §4-§5):

* trigger: the Dataverse connector (``commondataservice``) webhook "When a row is added, modified
  or deleted" (``callbackregistrations``, message 1/3/2 = created/updated/deleted, scope 4 =
  organization, ``filteringattributes`` from ``--columns``, ``filterexpression`` from
  ``--filter``); or, with ``legacy=True``, the ``dynamicscrmonline`` polling trigger
  (``onnewitems`` / ``onupdateditems`` / ``ondeleteditems``, recurrence from ``--every``,
  ``splitOn`` so each record is one run, ``$filter``).
* declarative steps: ``ApiConnection`` actions (create, update, delete, get, list; upsert on
  the Dataverse connector) with dynamic content from the trigger and earlier steps, chained with
  ``runAfter`` and given the step's retry policy;
* Python steps: refused, unless ``placeholders=True`` (``--placeholders``) asks for a
  ``Compose`` placeholder carrying the source and a TODO, named in a warning - it must be
  rewritten before the workflow is deployed.
* the organisation is a workflow parameter (``organization``, or ``dataset`` for the legacy
  connector) that every header / path reads, and an ARM parameter with ``arm=True``; a flow on
  the sandbox (a loopback address no Logic App can reach) needs ``org=``.
* a step's default retry writes no ``retryPolicy``: Logic Apps' own default applies.

A step that cannot be expressed (a notebook variable in a template, an ``--if`` on a declarative
step, ...) makes the export fail with one line naming each such step and why.
"""

from __future__ import annotations

import math
import re
import sys
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict, Unpack
from urllib.parse import urlsplit

from d365nb.flows.definitions import TRIGGER_KINDS
from d365nb.flows.export_arm import CONNECTIONS, wrap_arm
from d365nb.flows.export_conditions import translate
from d365nb.flows.export_expressions import (
    NotExpressible,
    Part,
    as_expression,
    as_value,
    double_encoded,
    escape_text,
    is_literal,
    literal_text,
    parse_template,
    quote,
)
from d365nb.flows.model import FlowError, RetryPolicy, Scope, Step
from d365nb.flows.steps import _typed, parse_declarative

WORKFLOW_SCHEMA = (
    "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/"
    "workflowdefinition.json#"
)
DATAVERSE = "commondataservice"
LEGACY = "dynamicscrmonline"
API_ROOT = "/api/data/v9.1"  # the version the Dataverse connector's own paths use
# Per trigger kind (`d365nb.flows.definitions`): callbackregistration SdkMessage codes, and the
# legacy connector's polling operation (path, swagger id, designer's trigger name).
MESSAGES = {k.name: k.message for k in TRIGGER_KINDS.values()}
SCOPE_ORGANIZATION = 4
LEGACY_OPERATIONS = {k.name: k.legacy for k in TRIGGER_KINDS.values()}
DATAVERSE_TRIGGER = "When_a_row_is_added,_modified_or_deleted"
# The workflow parameters the organisation lives in (one value, read by every action).
ORG_PARAMETER = "organization"
DATASET_PARAMETER = "dataset"
# What the designer's Dataverse actions send: formatted values (labels of choices, lookups'
# names) beside the raw ones, and the full-metadata JSON the connector's outputs are typed from.
ANNOTATIONS = 'odata.include-annotations="*"'
ACCEPT = "application/json;odata.metadata=full"
_LOOPBACK = ("localhost", "127.0.0.1", "::1", "0.0.0.0")
MIN_RETRY_SECONDS = 5  # Consumption refuses retry intervals under PT5S
PLACEHOLDER_NOTE = (
    "TODO d365nb: this step is notebook Python with no Logic Apps equivalent. Replace this "
    "Compose action with one that does the same (e.g. an Azure Function) before deploying."
)
_LOOKUP_VALUE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\((.*)\)\s*$", re.DOTALL)
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
# Which writes make each trigger fire (an upsert may create or update).
_FIRES = {k.name: k.fired_by for k in TRIGGER_KINDS.values()}
_LIST_QUERIES = {"filter": "$filter", "orderby": "$orderby", "top": "$top", "select": "$select"}


class ExportWarning(UserWarning):
    """Something the export could not carry over as is (placeholders, clamped retries, ...)."""


@dataclass
class Export:
    """The exported document (definition or ARM template) and what the user must know."""

    document: dict[str, Any]
    definition: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)


class ExportOptions(TypedDict, total=False):
    """The keyword options of `export` / `to_logic_app` / ``Flow.to_logic_app``."""

    legacy: bool
    arm: bool
    org: str | None
    placeholders: bool
    connection: str


def to_logic_app(flow: Any, **options: Unpack[ExportOptions]) -> dict[str, Any]:
    """The workflow definition of ``flow`` (an ARM template with ``arm=True``); the options
    are `export`'s. Placeholders and anything else lost on the way are reported as an
    `ExportWarning`."""
    result = export(flow, **options)
    if result.warnings:
        # Point at the user's line, past `Flow.to_logic_app` when that was the way in.
        via_flow = sys._getframe(1).f_code.co_name == "to_logic_app"
        warnings.warn(ExportWarning("; ".join(result.warnings)), stacklevel=3 if via_flow else 2)
    return result.document


def export(
    flow: Any,
    *,
    legacy: bool = False,
    arm: bool = False,
    org: str | None = None,
    placeholders: bool = False,
    connection: str = "oauth",
) -> Export:
    """The export of ``flow`` and its warnings (`to_logic_app` emits them instead).

    ``legacy``: the Dynamics 365 polling trigger instead of Dataverse's webhook. ``arm``: an ARM
    template around the definition. ``org``: the organisation URL the workflow talks to
    (default: the flow's connection, refused when that is a sandbox). ``placeholders``: export
    Python steps as ``Compose`` placeholders instead of refusing them. ``connection``:
    ``oauth`` (sign in once in the portal) or ``service-principal`` (client id / secret /
    tenant as ARM parameters), with ``arm=True``.
    """
    if connection not in CONNECTIONS:
        raise FlowError(f"unknown connection {connection!r}: use one of {', '.join(CONNECTIONS)}")
    if connection != "oauth" and not arm:
        raise FlowError(f"--connection {connection} is part of the ARM template: add --arm")
    if connection == "service-principal" and legacy:
        raise FlowError(
            "the legacy Dynamics 365 connector has no service-principal connection "
            "(export without --legacy)"
        )
    builder = _Builder(flow, legacy=legacy, org=org, placeholders=placeholders)
    definition = builder.definition()
    document = (
        wrap_arm(
            definition,
            name=flow.name,
            connector=builder.connector,
            display_name=f"{'Dynamics 365' if legacy else 'Dataverse'} ({builder.org})",
            connection=connection,
        )
        if arm
        else definition
    )
    # Never hand out what Logic Apps would refuse: the schema ships with the package.
    from d365nb.flows.wdl_schema import check

    check(document)
    check_nested(definition)
    notes = list(builder.notes)
    if builder.placeholders:
        names = ", ".join(builder.placeholders)
        notes.insert(
            0,
            f"{len(builder.placeholders)} step(s) exported as placeholders to rewrite before "
            f"deploying: {names}",
        )
    return Export(document, definition, notes, list(builder.placeholders))


def check_nested(definition: dict[str, Any], where: str = "") -> None:
    """The schema checks top-level actions only: check each Foreach / Scope body and each
    branch of an If as a definition of its own (raises `FlowError` naming the path)."""
    from d365nb.flows.wdl_schema import problems

    for name, action in definition.get("actions", {}).items():
        bodies = [("", action.get("actions")), ("else/", (action.get("else") or {}).get("actions"))]
        for branch, inner in bodies:
            if not isinstance(inner, dict):
                continue
            path = f"{where}{name}/{branch}"  # "actions/" comes from the path inside the body
            found = problems({**definition, "actions": inner})
            if found:
                raise FlowError(
                    f"the exported workflow definition is not valid Logic Apps: {path}{found[0]}"
                )
            check_nested({**definition, "actions": inner}, path)


# Logic Apps' "Nesting depth for actions" limit
# (learn.microsoft.com/azure/logic-apps/logic-apps-limits-and-config#workflow-definition-limits).
MAX_NESTING = 8


def nesting_depth(actions: dict[str, Any]) -> int:
    """How deep control actions nest: 0 for plain actions, 1 for an If / Foreach / Scope of
    plain actions, and so on (an If's ``else`` branch counts as its own body)."""
    deepest = 0
    for action in actions.values():
        bodies = [action.get("actions"), (action.get("else") or {}).get("actions")]
        for body in bodies:
            if isinstance(body, dict):
                deepest = max(deepest, 1 + nesting_depth(body))
    return deepest


def iso_duration(seconds: float) -> str:
    """ISO 8601 duration, whole seconds rounded up (``90`` -> ``PT90S``, ``3600`` -> ``PT1H``)."""
    whole = max(1, math.ceil(seconds))
    if whole % 86400 == 0:
        return f"P{whole // 86400}D"
    if whole % 3600 == 0:
        return f"PT{whole // 3600}H"
    if whole % 60 == 0:
        return f"PT{whole // 60}M"
    return f"PT{whole}S"


def recurrence(seconds: float) -> dict[str, Any]:
    """``--every`` as a Logic Apps recurrence: the largest unit that divides it evenly."""
    whole = max(1, math.ceil(seconds))
    for unit, size in (("Day", 86400), ("Hour", 3600), ("Minute", 60)):
        if whole % size == 0:
            return {"frequency": unit, "interval": whole // size}
    return {"frequency": "Second", "interval": whole}


@dataclass
class _Done:
    """What an earlier action returns, so `{steps[name]}` can be spelled as an expression."""

    verb: str  # create | update | upsert | delete | get | list | python
    primary_id: str = ""
    id_expression: str = ""


class _Builder:
    def __init__(self, flow: Any, *, legacy: bool, org: str | None, placeholders: bool) -> None:
        self.flow = flow
        self.legacy = legacy
        self.allow_placeholders = placeholders
        self.connector = LEGACY if legacy else DATAVERSE
        self.metadata = getattr(getattr(flow, "conn", None), "metadata", None)
        self.org = self._org(org, getattr(getattr(flow, "conn", None), "url", None))
        self.notes: list[str] = []
        self.placeholders: list[str] = []
        self.problems: list[str] = []
        self.done: dict[str, _Done] = {}
        self.loop: str | None = None  # the Foreach being built: {item[...]} is its item
        # Filled by `definition`: the flow's steps and scopes, and which --if step's If holds
        # each step exported inside one (runAfter cannot name them from outside).
        self.by_name: dict[str, Step] = {}
        self.scopes: dict[str, Scope] = {}
        self.member_of: dict[str, str] = {}
        self.else_of: dict[str, str] = {}
        self.inside: dict[str, str] = {}

    # -- organisation ---------------------------------------------------------------------
    def _org(self, given: str | None, connected: str | None) -> str:
        url = given or connected
        if not url:
            raise FlowError(
                "export needs the organisation URL: pass org='https://<org>.crm.dynamics.com'"
            )
        parts = urlsplit(str(url).strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FlowError(
                f"bad organisation URL {url!r}: use one like https://contoso.crm.dynamics.com"
            )
        if parts.hostname.lower() in _LOOPBACK:
            # A Logic App runs in Azure: a loopback address there is never the notebook's org.
            whose = (
                "the organisation given" if given else f"flow {self.flow.name!r} runs on a sandbox:"
            )
            raise FlowError(
                f"{whose} {parts.scheme}://{parts.netloc} is a loopback address no Logic App "
                "can reach; name the organisation to deploy to with --org "
                "https://<org>.crm.dynamics.com (--target on the command line)"
            )
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def org_parameter(self) -> tuple[str, str]:
        """The workflow parameter holding the organisation, and its value."""
        if self.legacy:
            return DATASET_PARAMETER, self.dataset
        return ORG_PARAMETER, self.org

    @property
    def org_expression(self) -> str:
        return f"@parameters('{self.org_parameter[0]}')"

    @property
    def dataset_segment(self) -> str:
        """The legacy connector's dataset path segment, read from the workflow parameter."""
        return double_encoded(f"parameters('{DATASET_PARAMETER}')")

    @property
    def dataset(self) -> str:
        """The legacy connector's dataset: the org host minus ``.dynamics.com``."""
        host = urlsplit(self.org).hostname or ""
        return host[: -len(".dynamics.com")] if host.endswith(".dynamics.com") else host

    @property
    def host(self) -> dict[str, Any]:
        return {
            "connection": {
                "name": f"@parameters('$connections')['{self.connector}']['connectionId']"
            }
        }

    # -- the document ---------------------------------------------------------------------
    def definition(self) -> dict[str, Any]:
        flow = self.flow
        if flow.trigger is None:
            raise FlowError(f"flow {flow.name!r} has no trigger; add one before exporting it")
        if not flow.steps:
            raise FlowError(f"flow {flow.name!r} has no steps; add an action before exporting it")
        host = urlsplit(self.org).hostname or ""
        if not host.endswith(".dynamics.com"):
            self.notes.append(
                f"the organisation is {self.org}, not a Dynamics 365 org; name the one to "
                "deploy to (org='https://<org>.crm.dynamics.com', --org in the notebook, "
                "--target on the command line)"
            )
        trigger_name, trigger = self._trigger()
        self.by_name = {s.name: s for s in flow.steps}
        self.scopes = {sc.name: sc for sc in getattr(flow, "scopes", [])}
        self.member_of = {m: sc.name for sc in self.scopes.values() for m in sc.members}
        self.else_of = {s.otherwise: s.name for s in flow.steps if s.otherwise in self.by_name}
        actions = self._sequence(self._units(flow.steps))
        depth = nesting_depth(actions)
        if depth > MAX_NESTING:  # each --if step with steps chained after it nests one deeper
            self.problems.append(
                f"its actions nest {depth} deep (If / Foreach / Scope inside each other) and "
                f"Logic Apps allows {MAX_NESTING}: chain fewer steps after an --if, or give them "
                "--after"
            )
        if self.problems:
            raise FlowError(
                f"cannot export flow {flow.name!r} to Logic Apps: " + "; ".join(self.problems)
            )
        org_name, org_value = self.org_parameter
        org_help = (
            "Organisation (environment) URL of the Dataverse connector's calls."
            if not self.legacy
            else "Dynamics 365 organisation as the legacy connector names it (host minus .dynamics.com)."
        )
        return {
            "$schema": WORKFLOW_SCHEMA,
            "contentVersion": "1.0.0.0",
            "description": f"Exported by d365nb from the notebook flow {flow.name!r}.",
            "parameters": {
                "$connections": {"defaultValue": {}, "type": "Object"},
                org_name: {
                    "defaultValue": org_value,
                    "type": "String",
                    "metadata": {"description": org_help},
                },
            },
            "triggers": {trigger_name: trigger},
            "actions": actions,
            "outputs": {},
        }

    # -- trigger --------------------------------------------------------------------------
    def _trigger(self) -> tuple[str, dict[str, Any]]:
        t = self.flow.trigger
        meta = self._table(t.table, "the trigger")
        if t.since not in (None, "now"):
            self.notes.append(
                f"--since {t.since} is not exported: a Logic App sees changes from when it is enabled"
            )
        if t.select:
            self.notes.append(
                "--select is not exported: the connector's trigger returns every column"
            )
        if not self.legacy and (t.orderby or t.top):
            self.notes.append(
                "--orderby/--top are not exported: the Dataverse trigger runs once per event "
                "(the legacy polling trigger takes them: --legacy)"
            )
        runtime = {"concurrency": {"runs": int(getattr(self.flow, "concurrency", 1) or 1)}}
        if self.legacy:
            return self._legacy_trigger(t, meta, runtime)
        body: dict[str, Any] = {
            "entityname": meta.logical_name if meta else t.table,
            "message": MESSAGES[t.kind],
            "scope": SCOPE_ORGANIZATION,
            "version": 1,
            "url": "@listCallbackUrl()",
        }
        if t.columns:
            body["filteringattributes"] = ",".join(t.columns)
        if t.filter:
            body["filterexpression"] = escape_text(t.filter)
        trigger = {
            "type": "ApiConnectionWebhook",
            "inputs": {
                "host": self.host,
                "path": f"{API_ROOT}/callbackregistrations",
                "headers": {
                    "organization": self.org_expression,
                    "Consistency": "Strong",
                    "catalog": "all",
                    "category": "all",
                },
                "body": body,
            },
            "runtimeConfiguration": runtime,
        }
        return DATAVERSE_TRIGGER, trigger

    def _legacy_trigger(
        self, t: Any, meta: Any, runtime: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        # No runtimeConfiguration: a concurrency limit turns splitOn off above 100 items.
        del runtime
        operation, swagger_id, name = LEGACY_OPERATIONS[t.kind]
        if t.every != math.ceil(t.every):
            self.notes.append(f"--every {t.every:g}s rounded up to whole seconds")
        if t.columns:
            self.problems.append(
                "the trigger's --columns: the legacy Dynamics 365 trigger cannot watch columns "
                "(export without --legacy)"
            )
        table = meta.entity_set if meta else t.table
        inputs: dict[str, Any] = {
            "host": self.host,
            "method": "get",
            "path": f"/datasets/{self.dataset_segment}/tables/"
            f"{double_encoded(quote(table))}/{operation}",
        }
        queries: dict[str, Any] = {}
        if t.filter:
            queries["$filter"] = escape_text(t.filter)
        if t.orderby:
            queries["$orderby"] = ",".join(t.orderby)
        if t.top:
            queries["$top"] = t.top
        if queries:
            inputs["queries"] = queries
        trigger = {
            "type": "ApiConnection",
            "inputs": inputs,
            "recurrence": recurrence(t.every),
            "splitOn": "@triggerBody()?['value']",
            "metadata": {"flowSystemMetadata": {"swaggerOperationId": swagger_id}},
        }
        return name, trigger

    # -- actions --------------------------------------------------------------------------
    def _units(self, steps: list[Step], inside: str | None = None) -> list[Step | Scope]:
        """``steps`` at one level, in run order (as the runner plans them): a scope where its
        first step stands (top level only), an --else step left to its --if step's ``If``."""
        units: list[Step | Scope] = []
        for step in steps:
            scope = self.member_of.get(step.name)
            if scope != inside:
                if inside is None and self.scopes[scope] not in units:  # type: ignore[index]
                    units.append(self.scopes[scope])  # type: ignore[index]
            elif step.name not in self.else_of:
                units.append(step)
        return units

    def _sequence(
        self, units: list[Step | Scope], *, branch: bool = False, bare: str | None = None
    ) -> dict[str, Any]:
        """The actions of ``units``, each after the one before it or per its --after. A step
        with --if becomes an ``If`` (`_if`). ``branch``: the body of an If branch, whose first
        action runs after nothing; ``bare``: the --if step that branch holds, built as a plain
        action (its condition is the If's)."""
        actions: dict[str, Any] = {}
        previous: str | None = None
        i = 0
        while i < len(units):
            unit, taken = units[i], 1
            if isinstance(unit, Scope):
                name = unit.name
                members = [s for s in self.flow.steps if self.member_of.get(s.name) == name]
                action = {"type": "Scope", "actions": self._sequence(self._units(members, name))}
            elif unit.name != bare and self._conditional(unit):
                name, action, taken = self._if(units, i)
            else:
                name, action = unit.name, self._action(unit)
            i += taken
            if action is None:
                continue
            if unit.after is not None and not (branch and previous is None):
                action["runAfter"] = self._run_after(unit)  # --after: statuses as written
            else:
                action["runAfter"] = {previous: ["Succeeded"]} if previous else {}
            actions[name] = action
            previous = name
        return actions

    def _run_after(self, unit: Step | Scope) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, statuses in (unit.after or {}).items():
            owner = self.inside.get(name)
            if owner is not None:
                kind = "scope" if isinstance(unit, Scope) else "step"
                self.problems.append(
                    f"{kind} {unit.name}: --after {name}: in the Logic App {name} runs inside "
                    f"the If of {owner}'s --if, where runAfter cannot reach"
                )
            out[name] = list(statuses)
        return out

    def _conditional(self, unit: Step | Scope) -> bool:
        """A step the export wraps in an ``If``: a declarative step's --if (a Python
        placeholder keeps its condition as text), and any --if/--else pair; a for-each checks
        its --if per item, inside the loop (`_foreach`)."""
        if not isinstance(unit, Step) or not unit.when or unit.foreach:
            return False
        return unit.kind == "declarative" or unit.otherwise is not None

    def _if(self, units: list[Step | Scope], i: int) -> tuple[str, dict[str, Any] | None, int]:
        """Step ``units[i]`` and its --if as an ``If`` action named ``<step>_if``: the step in
        ``actions``, its --else step in ``else``. Without --else, the steps chained after it
        (no --after) join it in ``actions``: the notebook skips them when the condition is
        false, as a Logic App skips a branch not taken. Returns (name, action, units used)."""
        step = units[i]
        assert isinstance(step, Step)
        name = f"{step.name}_if"
        if name in self.by_name or name in self.scopes:
            self.problems.append(
                f"step {step.name}: its --if exports as an If action named {name}, which is "
                "already a step or scope of this flow: rename one of them"
            )
            return name, None, 1
        other = None
        if step.otherwise is not None:
            other = self.by_name.get(step.otherwise)
            if other is None:
                self.problems.append(
                    f"step {step.name}: --else {step.otherwise} is not a step of flow "
                    f"{self.flow.name!r}"
                )
                return name, None, 1
            branch: list[Step | Scope] = [step]
        else:
            end = i + 1
            while end < len(units) and units[end].after is None:
                end += 1
            branch = units[i:end]
        for unit in [*branch, *([other] if other else [])]:
            self.inside[unit.name] = step.name
        expression = self._condition(step)
        then = self._sequence(branch, branch=True, bare=step.name)
        action: dict[str, Any] = {"type": "If", "expression": expression, "actions": then}
        if other is not None:
            action["else"] = {"actions": self._sequence([other], branch=True)}
        return name, (action if expression is not None else None), len(branch)

    def _condition(self, step: Step, loop: str | None = None) -> dict[str, Any] | None:
        """The If expression of ``step``'s --if (None, the reason noted, when it cannot be)."""
        try:
            return translate(step.when or "", self._step_output, loop)
        except NotExpressible as err:
            self.problems.append(f"step {step.name}: its --if cannot be exported: {err}")
            return None

    def _action(self, step: Step) -> dict[str, Any] | None:
        if step.foreach:
            return self._foreach(step)
        return self._single(step)

    def _foreach(self, step: Step) -> dict[str, Any] | None:
        """``--foreach "{steps[find]}"``: a ``Foreach`` over the list step's ``value``, the body
        inside it, ``--concurrency`` as its repetitions."""
        match = re.fullmatch(r"\{steps\[([A-Za-z_][A-Za-z0-9_]*)\]\}", step.foreach or "")
        source = self.done.get(match.group(1)) if match else None
        if source is None or source.verb != "list":
            self.problems.append(
                f"step {step.name}: --foreach {step.foreach}: only the records of an earlier "
                'list step export (--foreach "{steps[find]}")'
            )
            return None
        self.loop = step.name
        try:
            inner = self._single(step)
        finally:
            self.loop = None
        if inner is None:
            return None
        inner["runAfter"] = {}
        body = {f"{step.name}_item": inner}
        if step.when and step.kind == "declarative":  # --if: checked for each item
            expression = self._condition(step, loop=step.name)
            if expression is None:
                return None
            body = {
                f"{step.name}_if": {
                    "type": "If",
                    "expression": expression,
                    "actions": body,
                    "runAfter": {},
                }
            }
        self.done[step.name] = _Done("foreach")
        return {
            "type": "Foreach",
            "foreach": f"@body({quote(match.group(1))})?['value']",  # type: ignore[union-attr]
            "actions": body,
            "runtimeConfiguration": {"concurrency": {"repetitions": step.concurrency}},
        }

    def _single(self, step: Step) -> dict[str, Any] | None:
        if step.kind != "declarative":
            return self._placeholder(step)
        problems_before = len(self.problems)
        try:
            command = parse_declarative(step.name, step.source)
        except FlowError as err:
            self.problems.append(str(err))
            return None
        meta = self._table(command.table, f"step {step.name}")
        if meta is None:
            return None
        action = self._connector_action(step, command, meta)
        if action is None or len(self.problems) > problems_before:
            return None
        retry = self._retry(step.name, step.retry)
        if retry is not None:
            action["inputs"]["retryPolicy"] = retry
        if step.timeout:
            action["limit"] = {"timeout": iso_duration(step.timeout)}
        return action

    def _connector_action(self, step: Step, command: Any, meta: Any) -> dict[str, Any] | None:
        verb = command.verb
        if verb == "upsert" and self.legacy:
            self.problems.append(
                f"step {step.name}: the legacy Dynamics 365 connector has no upsert "
                "(export without --legacy, or use update)"
            )
            return None
        id_expr = None
        if command.record_id is not None:
            id_expr = self._expression(step.name, command.record_id)
            if id_expr is None:
                return None
        queries = self._queries(step, command, verb)
        body = self._body(step.name, meta, command.values) if command.values else None
        if queries is None or (command.values and body is None):
            return None
        method = {"create": "post", "update": "patch", "upsert": "patch", "delete": "delete"}.get(
            verb, "get"
        )
        inputs: dict[str, Any] = {"host": self.host, "method": method}
        if self.legacy:
            path = (
                f"/datasets/{self.dataset_segment}/tables/"
                f"{double_encoded(quote(meta.entity_set))}/items"
            )
            if id_expr is not None:
                path += "/" + double_encoded(id_expr)
            inputs["path"] = path
        else:
            path = f"{API_ROOT}/{double_encoded(quote(meta.entity_set))}"
            if id_expr is not None:
                path += f"({double_encoded(id_expr)})"
            inputs["path"] = path
            headers = {"organization": self.org_expression}
            if verb in ("create", "update", "upsert"):
                headers["prefer"] = f"return=representation,{ANNOTATIONS}"
            elif verb in ("get", "list"):
                headers["prefer"] = ANNOTATIONS
            headers["accept"] = ACCEPT
            if verb == "update":
                headers["If-Match"] = "*"  # update, never create: as the client's update
            inputs["headers"] = headers
        if body is not None:
            inputs["body"] = body
        if queries:
            inputs["queries"] = queries
        self.done[step.name] = _Done(verb, meta.primary_id, id_expr or "")
        watched = self.flow.trigger.table
        if verb in _FIRES[self.flow.trigger.kind] and watched == meta.entity_set:
            # The notebook engine ignores a flow's own writes; a Logic App has no such guard.
            self.notes.append(
                f"step {step.name} writes to {watched}, the table the trigger watches, and a "
                "Logic App does not skip its own writes: narrow the trigger (--filter, "
                "--columns) so they cannot fire it again"
            )
        return {"type": "ApiConnection", "inputs": inputs}

    def _queries(self, step: Step, command: Any, verb: str) -> dict[str, Any] | None:
        queries: dict[str, Any] = {}
        for option, value in command.options.items():
            name = _LIST_QUERIES.get(option)
            if name is None or (verb != "list" and option != "select"):
                self.problems.append(
                    f"step {step.name}: option --{option} has no Logic Apps equivalent for {verb}"
                )
                return None
            if option == "top":
                try:
                    queries[name] = int(value)
                except ValueError:
                    self.problems.append(f"step {step.name}: --top {value!r} is not a number")
                    return None
                continue
            parts = self._parts(step.name, value)
            if parts is None:
                return None
            queries[name] = as_value(parts)
        return queries

    def _placeholder(self, step: Step) -> dict[str, Any] | None:
        kind = "Python function" if step.kind == "callable" else "Python"
        if not self.allow_placeholders:
            self.problems.append(
                f"step {step.name} is {kind} with no Logic Apps equivalent: write it as a "
                "declarative step, or export with --placeholders (placeholders=True) to get a "
                "Compose action to rewrite before deploying"
            )
            return None
        self.placeholders.append(f"{step.name} ({kind})")
        inputs: dict[str, Any] = {"TODO": PLACEHOLDER_NOTE, "python": escape_text(step.source)}
        if step.when:
            inputs["if"] = escape_text(step.when)
        self.done[step.name] = _Done("python")
        return {
            "type": "Compose",
            "inputs": inputs,
            "metadata": {"d365nb": {"placeholder": True, "kind": step.kind}},
        }

    # -- values ---------------------------------------------------------------------------
    def _table(self, name: str, where: str) -> Any:
        if self.metadata is None:
            self.problems.append(f"{where}: no connection metadata to resolve table {name!r}")
            return None
        try:
            return self.metadata.table(name)
        except Exception as err:  # UnknownTable and friends: one line each
            self.problems.append(f"{where}: {' '.join(str(err).split())}")
            return None

    def _parts(self, step: str, template: str) -> list[Part] | None:
        try:
            return parse_template(template, self._step_output, self.loop)
        except NotExpressible as err:
            self.problems.append(f"step {step}: {err}")
            return None

    def _expression(self, step: str, template: str) -> str | None:
        parts = self._parts(step, template)
        return None if parts is None else as_expression(parts)

    def _step_output(self, name: str, keys: list[str]) -> str:
        done = self.done.get(name)
        if done is None:
            raise NotExpressible(f"{{steps[{name}]}} is not an earlier step of this flow")
        suffix = "".join(f"?[{quote(k)}]" for k in keys)
        ref = quote(name)
        if done.verb == "python":
            return f"outputs({ref})" + suffix
        if done.verb in ("create", "update", "upsert"):
            return f"body({ref})" + (suffix or f"?[{quote(done.primary_id)}]")
        if done.verb == "get":
            return f"body({ref})" + suffix
        if done.verb == "list":
            return f"body({ref})?['value']" + suffix
        if done.verb == "foreach":
            raise NotExpressible(f"{{steps[{name}]}} is a for-each: its results do not export")
        if keys:
            raise NotExpressible(f"{{steps[{name}]}} (a delete) returns only the record id")
        return done.id_expression

    def _body(self, step: str, meta: Any, values: dict[str, str]) -> dict[str, Any] | None:
        body: dict[str, Any] = {}
        ok = True
        for key, template in values.items():
            entries = self._field(step, meta, key, template)
            if entries is None:
                ok = False
                continue
            body.update(entries)
        return body if ok else None

    def _field(self, step: str, meta: Any, key: str, template: str) -> dict[str, Any] | None:
        if "@" in key:  # col@odata.bind written by hand: Web API JSON, Dataverse connector only
            if self.legacy:
                self.problems.append(
                    f"step {step}: {key} is Web API syntax; write the lookup as "
                    "column=table(id) for the legacy connector"
                )
                return None
            parts = self._parts(step, template)
            return None if parts is None else {key: as_value(parts)}
        column = meta.columns.get(key)
        if column is None:
            self.problems.append(f"step {step}: table {meta.entity_set} has no column {key!r}")
            return None
        if column.is_lookup:
            return self._lookup(step, meta, column, template)
        parts = self._parts(step, template)
        if parts is None:
            return None
        if not is_literal(parts):
            return {key: as_value(parts)}
        return {key: self._literal(step, column, literal_text(parts))}

    def _literal(self, step: str, column: Any, text: str) -> Any:
        if column.is_choice and column.options and not re.fullmatch(r"-?\d+", text):
            for value, label in column.options.items():
                if label.lower() == text.lower():
                    return value
            labels = ", ".join(column.options.values())
            self.problems.append(
                f"step {step}: {text!r} is not a choice of {column.name} ({labels})"
            )
            return None
        match = _US_DATE.match(text)
        if column.type == "DateTime" and match:  # the seed's mm/dd/yyyy, as ISO for the API
            month, day, year = (int(g) for g in match.groups())
            try:
                return datetime(year, month, day).strftime("%Y-%m-%d")
            except ValueError:
                self.problems.append(f"step {step}: {text!r} is not a date")
                return None
        value = _typed(text)
        return escape_text(value) if isinstance(value, str) else value

    def _lookup(self, step: str, meta: Any, column: Any, template: str) -> dict[str, Any] | None:
        match = _LOOKUP_VALUE.match(template)
        if match:
            target_name, id_template = match.group(1), match.group(2)
        elif len(column.targets) == 1:
            target_name, id_template = column.targets[0], template
        else:
            self.problems.append(
                f"step {step}: lookup {column.name} needs a table and an id, e.g. "
                f"{column.name}=leads({{trigger[leadid]}})"
            )
            return None
        target = self._table(target_name, f"step {step}")
        if target is None:
            return None
        if column.targets and target.logical_name not in column.targets:
            self.problems.append(
                f"step {step}: {column.name} cannot point at {target.entity_set} "
                f"(it takes {', '.join(column.targets)})"
            )
            return None
        id_parts = self._parts(step, id_template.strip())
        if id_parts is None:
            return None
        if self.legacy:  # the old connector's "Regarding" + "Regarding Type" pair
            return {
                f"_{column.name}_value": as_value(id_parts),
                f"_{column.name}_type": target.entity_set,
            }
        nav = meta.navigation(column.name, target.logical_name)
        bound = [Part(text=f"/{target.entity_set}("), *id_parts, Part(text=")")]
        return {f"{nav}@odata.bind": as_value(bound)}

    def _retry(self, step: str, policy: RetryPolicy) -> dict[str, Any] | None:
        if policy == RetryPolicy():
            return None  # no retryPolicy: Logic Apps' own default (exponential x4)
        if policy.retries == 0:
            return {"type": "none"}
        count = min(max(policy.count, 1), 90)
        interval = max(policy.interval, MIN_RETRY_SECONDS)
        if interval != policy.interval or count != policy.count:
            self.notes.append(
                f"step {step}: retry adjusted to Logic Apps' bounds (interval >= 5s, 1-90 retries)"
            )
        out: dict[str, Any] = {
            "type": policy.type,
            "count": count,
            "interval": iso_duration(interval),
        }
        if policy.type == "exponential":
            out["minimumInterval"] = iso_duration(max(policy.minimum, MIN_RETRY_SECONDS))
            out["maximumInterval"] = iso_duration(max(policy.maximum, interval))
        return out
