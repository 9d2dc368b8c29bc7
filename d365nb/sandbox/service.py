"""Write semantics of the Dataverse Web API, without HTTP.

`Service` validates a JSON body completely (property names, types, lengths, ranges, option
values, `@odata.bind` targets, required columns, state/status pairs) before anything is written,
then writes through the `Store` inside one transaction: a refused request changes nothing.
Routes (`records`), `$batch` and the bulk actions all write through here. Value checks live in
`values`, navigation properties in `relations`.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from . import alternate_keys, errors
from .relations import Collection, Navigation, collections, navigations
from .schema.model import LOOKUP_TYPES, Column, Table
from .store import Store
from .values import convert, is_guid, parse_etag, payload_error

__all__ = ["Changes", "Collection", "Navigation", "Service", "is_guid", "parse_etag"]

# `/accounts(<guid>)`, `accounts(<guid>)` or an absolute URL ending so.
_BIND_RE = re.compile(r"(?:^|/)([A-Za-z_][A-Za-z0-9_]*)\(([^()]*)\)/?$")


class Changes(NamedTuple):
    """A validated body: storage-form `values`, records bound by lookups (to check exist), and
    (collection, child id) pairs to associate after the write."""

    values: dict[str, Any]
    bound: list[tuple[Table, str]]
    links: list[tuple[Collection, str]]
    # deep insert (create only): related records to create first / children to create after
    deep_single: list[tuple[Column, Table, dict[str, Any]]] = []
    deep_children: list[tuple[Collection, list[dict[str, Any]]]] = []


class _NewRecord(NamedTuple):
    """A create body, validated and filled (`Service._new_record`), not yet written."""

    id: str
    values: dict[str, Any]  # storage form, before the store's defaults and computed columns
    parsed: Changes

    @property
    def related(self) -> bool:
        """Whether writing it also writes or links other records (deep insert, binds)."""
        p = self.parsed
        return bool(p.links or p.deep_single or p.deep_children)


class Service:
    """Create/update/upsert/delete with Dataverse's validation. `user_id` is the caller."""

    def __init__(self, schema: dict[str, Table], store: Store, user_id: str) -> None:
        self.schema = schema
        self.store = store
        self.user_id = user_id
        self.by_set = {t.entity_set: t for t in schema.values()}
        self._navs = {name: navigations(t) for name, t in schema.items()}
        self._collections = {name: collections(schema, t) for name, t in schema.items()}

    # -- resolution ---------------------------------------------------------------------------

    def table_for_set(self, entity_set: str) -> Table:
        """The table behind an entity-set name (case-sensitive, as in Dataverse)."""
        table = self.by_set.get(entity_set)
        if table is None:
            raise errors.ResourceNotFound(entity_set)
        return table

    def navigations(self, table: Table) -> dict[str, Navigation]:
        return self._navs[table.logical_name]

    def collections(self, table: Table) -> dict[str, Collection]:
        return self._collections[table.logical_name]

    @staticmethod
    def parse_key(text: str) -> str:
        """A key from a URL segment (`leads(<guid>)`), normalised to lowercase."""
        key = text.strip()
        if key.startswith("{") and key.endswith("}"):
            key = key[1:-1]
        if not is_guid(key):
            raise errors.QueryError("Bad Request - Error in query syntax.")
        return key.lower()

    def parse_reference(self, value: Any, table: Table, prop: str) -> tuple[Table, str]:
        """`/accounts(<guid>)` (leading slash optional, absolute URLs accepted) -> (table, id)."""
        if not isinstance(value, str):
            raise payload_error(
                table,
                f"Cannot convert the value of '{prop}' to an entity reference: expected "
                "a string like '/accounts(00000000-0000-0000-0000-000000000000)'.",
            )
        path = unquote(urlsplit(value).path if "://" in value else value)
        match = _BIND_RE.search(path)
        if match is None:
            raise errors.BadRequest(
                f"Invalid reference '{value}' for '{prop}': expected '/<entityset>(<id>)'."
            )
        target = self.by_set.get(match.group(1))
        if target is None:
            raise errors.ResourceNotFound(match.group(1))
        if alternate_keys.is_alternate(match.group(2)):  # `/accounts(accountnumber='ABC')`
            found, _ = alternate_keys.find(self.store, target, match.group(2))
            if found is None:
                raise alternate_keys.KeyNotFound(target.logical_name)
            return target, found
        key = match.group(2).strip("{}")
        if not is_guid(key):
            raise payload_error(
                table,
                f"Cannot convert the literal '{match.group(2)}' to the expected type 'Edm.Guid'.",
            )
        return target, key.lower()

    # -- bodies -------------------------------------------------------------------------------

    def changes_from_body(self, table: Table, body: Any, *, creating: bool) -> Changes:
        """Validate a JSON body into storage-form changes, the bound records to check, and the
        children of collection-valued binds (`"Account_Tasks@odata.bind": ["/tasks(<id>)"]`)."""
        if not isinstance(body, dict):
            raise errors.BadRequest(
                "The request body must be a JSON object with the record's properties."
            )
        cols = table.columns
        navs = self._navs[table.logical_name]
        changes: dict[str, Any] = {}
        bound: list[tuple[Table, str]] = []
        links: list[tuple[Collection, str]] = []
        deep_single: list[tuple[Column, Table, dict[str, Any]]] = []
        deep_children: list[tuple[Collection, list[dict[str, Any]]]] = []
        for key, value in body.items():
            if key.endswith("@odata.bind"):
                nav_name = key[: -len("@odata.bind")]
                nav = navs.get(nav_name)
                collection = self._collections[table.logical_name].get(nav_name)
                if nav is None and collection is not None:
                    links.extend(self._collection_binds(table, collection, value))
                    continue
                if nav is None:
                    raise payload_error(
                        table,
                        f"An undeclared property '{nav_name}' which only has property "
                        "annotations in the payload but no property value was found in the "
                        "payload. In OData, only declared navigation properties and declared "
                        "named streams can be represented as properties without values.",
                    )
                col = nav.column
                if value is None:
                    if col.required == "SystemRequired":
                        raise self._required(table, col)
                    changes[col.name] = None
                    changes[f"{col.name}__type"] = None
                    continue
                target, target_id = self.parse_reference(value, table, key)
                if nav.target_for(target.logical_name) is None:
                    allowed = ", ".join(self.schema[r.target].entity_set for r in nav.relationships)
                    raise errors.BadRequest(
                        f"'{nav_name}' cannot refer to {target.entity_set}: it refers to {allowed}."
                    )
                if (
                    not col.valid_for_create
                    and creating
                    or not col.valid_for_update
                    and not creating
                ):
                    raise errors.BadRequest(f"'{col.name}' is read-only and cannot be set.")
                changes[col.name] = target_id
                changes[f"{col.name}__type"] = target.logical_name
                bound.append((target, target_id))
                continue
            if key.startswith("@") or "@" in key:
                continue  # instance annotations (@odata.type, @odata.etag, ...) carry no data
            col = cols.get(key)
            if col is None:
                if table.find(key) is not None:
                    continue  # the read-only `_x_value` of a lookup read back from a GET
                if key in navs and isinstance(value, dict):
                    deep_single.append(self._deep_single(table, navs[key], value, creating))
                    continue
                children = self._collections[table.logical_name].get(key)
                if children is not None and isinstance(value, list):
                    deep_children.append(self._deep_children(table, children, value, creating))
                    continue
                raise errors.InvalidProperty(key, table.logical_name)
            if col.type in LOOKUP_TYPES:
                if isinstance(value, dict) and key in navs:  # deep insert of the related record
                    deep_single.append(self._deep_single(table, navs[key], value, creating))
                    continue
                if value is None:  # `{"parentaccountid": null}` clears the lookup
                    if col.required == "SystemRequired":
                        raise self._required(table, col)
                    changes[col.name] = None
                    changes[f"{col.name}__type"] = None
                    continue
                nav_hint = col.relationships[0].navigation if col.relationships else col.name
                raise errors.BadRequest(
                    f"'{key}' is a lookup: set it with \"{nav_hint}@odata.bind\": "
                    f'"/{self.schema[col.relationships[0].target].entity_set}(<id>)".'
                )
            if col.name == table.primary_id:
                key_value = convert(table, col, value)
                if creating:
                    changes[col.name] = key_value
                continue  # the key of an existing record never changes
            if col.read_only:
                continue  # computed/system columns sent back by a client are ignored
            if value is None and col.required == "SystemRequired":
                raise self._required(table, col)
            changes[col.name] = convert(table, col, value)
        return Changes(changes, bound, links, deep_single, deep_children)

    def _deep_single(
        self, table: Table, nav: Navigation, value: dict[str, Any], creating: bool
    ) -> tuple[Column, Table, dict[str, Any]]:
        """`"primarycontactid": {...}`: the related record to create with the parent."""
        if not creating:
            raise errors.BadRequest(
                f"'{nav.name}' holds a record: related records can be created only together "
                "with a new record (deep insert); bind an existing one with "
                f"'{nav.name}@odata.bind'."
            )
        targets = [self.schema[r.target] for r in nav.relationships]
        target = targets[0]
        if len(targets) > 1:
            odata_type = str(value.get("@odata.type", "")).rsplit(".", 1)[-1]
            match = [t for t in targets if t.logical_name == odata_type]
            if not match:
                names = ", ".join(f"Microsoft.Dynamics.CRM.{t.logical_name}" for t in targets)
                raise errors.BadRequest(
                    f"'{nav.name}' can refer to several tables: add \"@odata.type\" ({names})."
                )
            target = match[0]
        return nav.column, target, value

    def _deep_children(
        self, table: Table, collection: Collection, value: list[Any], creating: bool
    ) -> tuple[Collection, list[dict[str, Any]]]:
        """`"Account_Tasks": [{...}]`: child records to create with the parent."""
        if not creating:
            raise errors.BadRequest(
                f"Related records in '{collection.name}' can be created only together with a "
                f"new record (deep insert); use '{collection.name}@odata.bind' to link records."
            )
        if not all(isinstance(item, dict) for item in value):
            raise payload_error(
                table, f"'{collection.name}' must be an array of records (JSON objects)."
            )
        return collection, value

    def _collection_binds(
        self, table: Table, collection: Collection, value: Any
    ) -> list[tuple[Collection, str]]:
        if not isinstance(value, list):
            raise payload_error(
                table,
                f"'{collection.name}@odata.bind' expects an array of references like "
                f'["/{collection.child.entity_set}(<id>)"].',
            )
        out = []
        for item in value:
            target, child_id = self.parse_reference(item, table, collection.name)
            if target is not collection.child:
                raise errors.BadRequest(
                    f"'{collection.name}' holds {collection.child.entity_set}, not "
                    f"{target.entity_set}."
                )
            out.append((collection, child_id))
        return out

    def _link_children(self, parent_id: str, links: list[tuple[Collection, str]]) -> None:
        """Point each bound child's lookup at the parent (after checking they all exist)."""
        for collection, child_id in links:
            if not self.store.exists(collection.child.logical_name, child_id):
                raise errors.RecordNotFound(collection.child.logical_name, child_id)
        for collection, child_id in links:
            self.associate(collection, parent_id, child_id)

    def associate(self, collection: Collection, parent_id: str, child_id: str) -> None:
        """`POST <parent>/<Collection>/$ref`: the child's lookup now points at the parent."""
        col = collection.column
        changes = {col.name: parent_id, f"{col.name}__type": collection.parent.logical_name}
        if "modifiedby" in collection.child.columns:
            changes["modifiedby"], changes["modifiedby__type"] = self.user_id, "systemuser"
        with self.store.transaction():
            if not self.store.exists(collection.child.logical_name, child_id):
                raise errors.RecordNotFound(collection.child.logical_name, child_id)
            self.store.update(collection.child.logical_name, child_id, changes)

    def replace_parties(self, collection: Collection, parent_id: str, bodies: Any) -> None:
        """`PUT <activity>(<id>)/<activity>_activity_parties` with `{"value": [...]}`: the
        "special scenario that is possible only with activityparty" of
        associate-disassociate-entities-using-web-api. Each body is a new party of the activity;
        like setting the activity's `to`/`cc`/... party lists, it replaces the parties of the
        participation types it names and keeps the others (the sender stays when only recipients
        are sent)."""
        if (
            not isinstance(bodies, list)
            or not bodies
            or not all(isinstance(b, dict) for b in bodies)
        ):
            raise errors.BadRequest(
                f'Send the parties as {{"value": [{{...}}, ...]}} to PUT {collection.name}.'
            )
        col = collection.column
        child = collection.child
        nav = next(
            r.navigation for r in col.relationships if r.target == collection.parent.logical_name
        )
        bind = {f"{nav}@odata.bind": f"/{collection.parent.entity_set}({parent_id})"}
        kinds = {b.get("participationtypemask") for b in bodies}
        with self.store.transaction():
            self.get(collection.parent, parent_id)
            for party_id in self.store.referring_ids(child.logical_name, col.name, parent_id):
                party = self.store.get(child.logical_name, party_id)
                if party is not None and party.get("participationtypemask") in kinds:
                    self.store.delete(child.logical_name, party_id)
            for body in bodies:
                if any(k.startswith(f"{nav}@") or k == nav for k in body):
                    raise errors.BadRequest(
                        f"A party sent to {collection.name} already belongs to this record: "
                        f"leave out '{nav}'."
                    )
                self.create(child, {**body, **bind})

    def disassociate(self, collection: Collection, parent_id: str, child_id: str) -> None:
        """`DELETE <parent>/<Collection>(<child>)/$ref`: clear the child's lookup."""
        col = collection.column
        with self.store.transaction():
            child = self.store.get(collection.child.logical_name, child_id)
            if child is None or child.get(col.name) != parent_id:
                raise errors.RecordNotFound(collection.child.logical_name, child_id)
            changes = {col.name: None, f"{col.name}__type": None}
            if "modifiedby" in collection.child.columns:
                changes["modifiedby"], changes["modifiedby__type"] = self.user_id, "systemuser"
            self.store.update(collection.child.logical_name, child_id, changes)

    @staticmethod
    def _required(table: Table, col: Column) -> errors.DataverseError:
        level = f" ({col.required})" if col.required != "None" else ""
        return errors.RequiredMissing(
            f"A validation error occurred.  The '{col.name}' attribute of the "
            f"'{table.logical_name}' entity is required{level} and must have a value."
        )

    def _check_state(self, table: Table, row: dict[str, Any], changes: dict[str, Any]) -> None:
        """Pair statecode/statuscode the way Dataverse does and refuse impossible pairs."""
        state_col, status_col = table.columns.get("statecode"), table.columns.get("statuscode")
        if state_col is None or status_col is None:
            return
        if "statuscode" in changes and changes["statuscode"] is not None:
            status = next(o for o in status_col.options if o.value == changes["statuscode"])
            if "statecode" not in changes or changes["statecode"] is None:
                changes["statecode"] = status.state
            elif status.state != changes["statecode"]:
                state = next(o for o in state_col.options if o.value == changes["statecode"])
                raise errors.InvalidArgument(
                    f"{changes['statuscode']} is not a valid status code for state code "
                    f"{table.logical_name.capitalize()}State.{state.label.replace(' ', '')} on "
                    f"{table.logical_name} with Id {row.get(table.primary_id)}."
                )
        elif "statecode" in changes and changes["statecode"] is not None:
            state = next(o for o in state_col.options if o.value == changes["statecode"])
            changes["statuscode"] = state.default_status
        elif "statecode" in changes:
            raise self._required(table, state_col)
        elif "statuscode" in changes:
            raise self._required(table, status_col)

    def _check_bound(self, bound: list[tuple[Table, str]]) -> None:
        for target, target_id in bound:
            if not self.store.exists(target.logical_name, target_id):
                raise errors.RecordNotFound(target.logical_name, target_id)

    # -- operations ---------------------------------------------------------------------------

    def create(
        self,
        table: Table,
        body: Any,
        *,
        id: str | None = None,
        detect_duplicates: bool = False,
    ) -> dict[str, Any]:
        """Create a record (client-supplied key honoured); returns the stored row.

        A single create is a CreateMultiple of one body (`_create`): both validate, fill and
        write a record the same way. `id` is the key of an upsert's URL."""
        return self._create(table, [body], key=id, detect_duplicates=detect_duplicates)[0]

    def create_many(
        self, table: Table, bodies: list[Any], *, detect_duplicates: bool = False
    ) -> list[str]:
        """CreateMultiple: create every body, all or nothing; returns the ids in order."""
        pk = table.primary_id
        rows = self._create(table, bodies, detect_duplicates=detect_duplicates)
        return [row[pk] for row in rows]

    def _create(
        self,
        table: Table,
        bodies: list[Any],
        *,
        key: str | None = None,
        detect_duplicates: bool = False,
    ) -> list[dict[str, Any]]:
        """The one create path: the outcome equals creating each body in order inside one
        transaction (the same error for the same first bad body); returns the stored rows.

        Every body is validated and filled first (`_new_record`). Plain bodies are then written
        as a batch: bound records and key clashes checked with one `IN (...)` query per table,
        the rows inserted with one `executemany`. Bodies with related records (deep insert,
        collection binds) or under duplicate detection are written one by one, since each
        write can change what the next one finds."""
        prepared: list[_NewRecord] = []
        failure: Exception | None = None  # the first body that was refused
        for body in bodies:
            try:
                prepared.append(self._new_record(table, body, key))
            except Exception as exc:  # noqa: BLE001 - raised below, after earlier bodies' checks
                failure = exc
                break
        alternate_keys.check_distinct(self.store, table, [r.values for r in prepared])
        one_by_one = detect_duplicates or any(r.related for r in prepared)
        with self.store.transaction():
            if one_by_one:  # the bodies before a refused one are written, then rolled back
                rows = [self._write_one(table, r, detect_duplicates) for r in prepared]
            else:
                self._check_created(table, prepared)
            if failure is not None:
                raise failure
            if not one_by_one:
                rows = self.store.insert_rows(table.logical_name, [r.values for r in prepared])
            return rows

    def _new_record(self, table: Table, body: Any, key: str | None) -> _NewRecord:
        """Validate one body and fill what the server sets on create: the key (the URL's, the
        body's or a new sequential one), the state/status pair, owner, createdby/modifiedby;
        refuse it if a SystemRequired column is still empty once defaults are applied."""
        parsed = self.changes_from_body(table, body, creating=True)
        values = parsed.values
        pk = table.primary_id
        if key is not None:
            if values.get(pk) not in (None, key):
                raise errors.BadRequest(
                    f"The key in the URL ({key}) and '{pk}' in the body ({values[pk]}) differ."
                )
            values[pk] = key
        values[pk] = values.get(pk) or self.store.new_id()
        self._check_state(table, values, values)
        if table.ownership == "UserOwned" and values.get("ownerid") is None:
            values["ownerid"], values["ownerid__type"] = self.user_id, "systemuser"
        if "createdby" in table.columns:
            values["createdby"], values["createdby__type"] = self.user_id, "systemuser"
            values["modifiedby"], values["modifiedby__type"] = self.user_id, "systemuser"
        candidate = dict(values)
        self.store.complete(table, candidate, creating=True)
        # Only SystemRequired is a server rule: Dataverse enforces ApplicationRequired
        # ("Business required") in its forms, and API/import/plug-in writes may leave it empty.
        # A lookup filled by a deep insert gets its value when the related record is created.
        deep_columns = {col.name for col, _, _ in parsed.deep_single}
        for col in self._required_on_create(table):
            if candidate.get(col.name) is None and col.name not in deep_columns:
                raise self._required(table, col)
        alternate_keys.check_unique(self.store, table, candidate, values[pk])
        return _NewRecord(values[pk], values, parsed)

    def _write_one(
        self, table: Table, record: _NewRecord, detect_duplicates: bool
    ) -> dict[str, Any]:
        """Write one prepared record with its related records: the referenced ones first (deep
        insert), then the record, then its children."""
        parsed, values, row_id = record.parsed, record.values, record.id
        with self.store.transaction():
            self._check_bound(parsed.bound)
            if self.store.exists(table.logical_name, row_id):
                raise errors.DuplicateRecord()
            for col, target, nested in parsed.deep_single:
                related = self.create(target, nested)
                values[col.name] = related[target.primary_id]
                values[f"{col.name}__type"] = target.logical_name
            if detect_duplicates:
                candidate = dict(values)
                self.store.complete(table, candidate, creating=True)
                self._check_duplicates(table, candidate, row_id)
            row = self.store.insert(table.logical_name, values)
            self._link_children(row_id, parsed.links)
            for collection, bodies in parsed.deep_children:
                nav = next(
                    r.navigation
                    for r in collection.column.relationships
                    if r.target == table.logical_name
                )
                for child in bodies:
                    bind = {f"{nav}@odata.bind": f"/{table.entity_set}({row_id})"}
                    self.create(collection.child, {**child, **bind})
            return row

    def _required_on_create(self, table: Table) -> list[Column]:
        """The columns `create` refuses to leave empty (SystemRequired, settable on create)."""
        return [
            col
            for col in table.columns.values()
            if col.required == "SystemRequired" and col.valid_for_create and not col.read_only
        ]

    def _check_created(self, table: Table, prepared: list[_NewRecord]) -> None:
        """Bound records exist and keys are new, in the order `_write_one` checks them one by
        one (a bind may name a record created earlier in the same call)."""
        wanted: dict[str, set[str]] = {table.logical_name: {r.id for r in prepared}}
        for record in prepared:
            for target, target_id in record.parsed.bound:
                wanted.setdefault(target.logical_name, set()).add(target_id)
        found = {name: self.store.existing_ids(name, ids) for name, ids in wanted.items()}
        created: set[str] = set()
        for record in prepared:
            for target, target_id in record.parsed.bound:
                if target_id not in found[target.logical_name] and not (
                    target is table and target_id in created
                ):
                    raise errors.RecordNotFound(target.logical_name, target_id)
            if record.id in found[table.logical_name] or record.id in created:
                raise errors.DuplicateRecord()
            created.add(record.id)

    def update(
        self,
        table: Table,
        id: str,
        body: Any,
        *,
        if_match: str | None = None,
        detect_duplicates: bool = False,
    ) -> dict[str, Any]:
        """Update an existing record (404 when missing, 412 on a stale `If-Match`)."""
        changes, bound, links, _, _ = self.changes_from_body(table, body, creating=False)
        with self.store.transaction():
            current = self._existing(table, id, if_match)
            if detect_duplicates:
                self._check_duplicates(table, {**current, **changes}, id)
            row = self._apply_update(table, id, current, changes, bound)
            self._link_children(id, links)
            return row

    def _apply_update(self, table, id, current, changes, bound) -> dict[str, Any]:
        self._check_state(table, current, changes)
        # SystemRequired columns set to null were refused while reading the body; clearing an
        # ApplicationRequired one is allowed, as in Dataverse (see `create`).
        self._check_bound(bound)
        alternate_keys.check_unique(self.store, table, {**current, **changes}, id)
        if "modifiedby" in table.columns:
            changes["modifiedby"], changes["modifiedby__type"] = self.user_id, "systemuser"
        row = self.store.update(table.logical_name, id, changes)
        assert row is not None
        return row

    def upsert(
        self,
        table: Table,
        id: str,
        body: Any,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        detect_duplicates: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """PATCH on a key: update, or create with that key. Returns (row, created).

        `If-Match: *` forbids the create (404 when missing); `If-None-Match: *` forbids the
        update (412 when present); `If-Match: W/"n"` requires that version.
        """
        with self.store.transaction():
            current = self.store.get(table.logical_name, id)
            if if_none_match is not None and if_none_match.strip() == "*" and current is not None:
                raise errors.DuplicateRecord()
            if current is None:
                if if_match is not None:
                    raise errors.RecordNotFound(table.logical_name, id)
                return self.create(table, body, id=id, detect_duplicates=detect_duplicates), True
            changes, bound, links, _, _ = self.changes_from_body(table, body, creating=False)
            self._match(current, if_match)
            if detect_duplicates:
                self._check_duplicates(table, {**current, **changes}, id)
            row = self._apply_update(table, id, current, changes, bound)
            self._link_children(id, links)
            return row, False

    def delete(self, table: Table, id: str, *, if_match: str | None = None) -> None:
        """Delete a record; lookups pointing at it are cleared (Dataverse's "remove link"
        behaviour), so no record is left referring to a record that does not exist."""
        with self.store.transaction():
            self._existing(table, id, if_match)
            for collection in self._collections[table.logical_name].values():
                child, col = collection.child, collection.column
                children = self.store.referring_ids(child.logical_name, col.name, id)
                children = [c for c in children if not (child is table and c == id)]
                if children and col.required == "SystemRequired":
                    # Clearing would leave e.g. leads without an owner, which Dataverse never has.
                    raise errors.InvalidArgument(
                        f"The {table.logical_name} with id {id} cannot be deleted: "
                        f"{len(children)} {child.logical_name} record(s) refer to it through "
                        f"'{col.name}'; point them at another record first."
                    )
                for child_id in children:
                    self.store.update(
                        child.logical_name, child_id, {col.name: None, f"{col.name}__type": None}
                    )
            self.store.delete(table.logical_name, id)

    def get(self, table: Table, id: str) -> dict[str, Any]:
        row = self.store.get(table.logical_name, id)
        if row is None:
            raise errors.RecordNotFound(table.logical_name, id)
        return row

    def set_property(self, table: Table, id: str, prop: str, value: Any) -> dict[str, Any]:
        """`PUT <set>(<id>)/<prop>` with `{"value": ...}`."""
        col = table.columns.get(prop)
        if col is None or col.type in LOOKUP_TYPES:
            raise errors.PropertyNotFound(prop, table.logical_name)
        if col.read_only or col.name == table.primary_id:
            raise errors.BadRequest(f"'{prop}' is read-only and cannot be set.")
        return self.update(table, id, {prop: value})

    def clear_property(self, table: Table, id: str, prop: str) -> dict[str, Any]:
        """`DELETE <set>(<id>)/<prop>`: set the value to null."""
        col = table.columns.get(prop)
        if col is None:
            raise errors.PropertyNotFound(prop, table.logical_name)
        if col.type in LOOKUP_TYPES:
            return self.update(table, id, {prop: None})
        if col.read_only or col.name == table.primary_id:
            raise errors.BadRequest(f"'{prop}' is read-only and cannot be cleared.")
        return self.update(table, id, {prop: None})

    def set_reference(self, table: Table, id: str, nav: str, odata_id: Any) -> dict[str, Any]:
        """`PUT <set>(<id>)/<nav>/$ref` with `{"@odata.id": "<set>(<id>)"}`."""
        if nav not in self._navs[table.logical_name]:
            raise errors.QueryError(
                "Expand with $ref is only supported on lookup type navigation property."
            )
        return self.update(table, id, {f"{nav}@odata.bind": odata_id})

    def delete_reference(self, table: Table, id: str, nav: str) -> dict[str, Any]:
        """`DELETE <set>(<id>)/<nav>/$ref`: clear the lookup."""
        if nav not in self._navs[table.logical_name]:
            raise errors.QueryError(
                f"'{nav}' is not a navigation property of {table.logical_name}."
            )
        return self.update(table, id, {f"{nav}@odata.bind": None})

    # -- helpers ------------------------------------------------------------------------------

    def _check_duplicates(self, table: Table, row: dict[str, Any], id: str) -> None:
        """Apply the table's duplicate detection rules (text compares case-insensitively)."""
        for rule in table.duplicate_rules:
            values = [row.get(c) for c in rule]
            if any(v is None or v == "" for v in values):
                continue
            if self.store.has_match(
                table.logical_name, dict(zip(rule, values, strict=True)), other_than=id
            ):
                raise errors.DuplicateDetected()

    def _existing(self, table: Table, id: str, if_match: str | None) -> dict[str, Any]:
        current = self.store.get(table.logical_name, id)
        if current is None:
            raise errors.RecordNotFound(table.logical_name, id)
        self._match(current, if_match)
        return current

    @staticmethod
    def _match(current: dict[str, Any], if_match: str | None) -> None:
        if if_match is None or if_match.strip() == "*":
            return
        wanted = [parse_etag(v) for v in if_match.split(",")]
        if current.get("versionnumber") not in wanted:
            raise errors.VersionMismatch()
