"""The Confluent Schema Registry REST routes and their semantics, independent of HTTP plumbing.

The HTTP(S) server around them is `kappa.registry.server`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from kappa.registry import compat, errors
from kappa.registry.errors import RegistryError
from kappa.registry.store import Store, VersionRow

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
MAX_VERSION = 2**31 - 1
Query = dict[str, str]
Result = tuple[int, Any]


def _flag(query: Query, name: str) -> bool:
    return query.get(name, "false").lower() == "true"


def _int(query: Query, name: str, default: int) -> int:
    try:
        return int(query.get(name, default))
    except ValueError:
        return default


def _page(items: list[Any], query: Query) -> list[Any]:
    offset, limit = _int(query, "offset", 0), _int(query, "limit", -1)
    items = items[max(offset, 0) :]
    return items if limit < 0 else items[:limit]


def _version(raw: str) -> int | None:
    """A version path segment: None for latest, else 1..2^31-1 (42202 otherwise)."""
    if raw in ("latest", "-1"):
        return None
    if re.fullmatch(r"\d{1,10}", raw) and 1 <= int(raw) <= MAX_VERSION:
        return int(raw)
    raise errors.invalid_version(raw)


def _schema_id(raw: str) -> int:
    if re.fullmatch(r"\d{1,10}", raw):
        return int(raw)
    raise errors.schema_not_found(f"Schema {raw} not found")


def _version_body(row: VersionRow) -> dict[str, Any]:
    body: dict[str, Any] = {"subject": row.subject, "version": row.version, "id": row.schema_id}
    if row.schema_type != "AVRO":
        body["schemaType"] = row.schema_type
    body["schema"] = row.schema
    return body


class Registry:
    """The REST semantics, independent of HTTP plumbing (easy to call in tests)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        s, any_ = r"(?P<subject>[^/]+)", r"(?P<{}>[^/]+)"
        v, i = any_.format("version"), any_.format("id")
        table: list[tuple[str, str, Callable[..., Result]]] = [
            ("GET", "", self.root),
            ("GET", "/subjects", self.list_subjects),
            ("POST", f"/subjects/{s}", self.lookup),
            ("DELETE", f"/subjects/{s}", self.delete_subject),
            ("GET", f"/subjects/{s}/versions", self.list_versions),
            ("POST", f"/subjects/{s}/versions", self.register),
            ("GET", f"/subjects/{s}/versions/{v}", self.get_version),
            ("DELETE", f"/subjects/{s}/versions/{v}", self.delete_version),
            ("GET", f"/subjects/{s}/versions/{v}/schema", self.get_version_schema),
            ("GET", f"/subjects/{s}/versions/{v}/referencedby", self.referenced_by),
            ("GET", "/schemas", self.list_schemas),
            ("GET", "/schemas/types", self.schema_types),
            ("GET", f"/schemas/ids/{i}", self.get_schema),
            ("GET", f"/schemas/ids/{i}/schema", self.get_raw_schema),
            ("GET", f"/schemas/ids/{i}/versions", self.schema_versions),
            ("GET", f"/schemas/ids/{i}/subjects", self.schema_subjects),
            ("POST", f"/compatibility/subjects/{s}/versions/{v}", self.test_compat),
            ("POST", f"/compatibility/subjects/{s}/versions", self.test_compat),
            ("GET", "/config", self.get_config),
            ("PUT", "/config", self.put_config),
            ("DELETE", "/config", self.delete_config),
            ("GET", f"/config/{s}", self.get_config),
            ("PUT", f"/config/{s}", self.put_config),
            ("DELETE", f"/config/{s}", self.delete_config),
            ("GET", "/mode", self.mode),
            ("PUT", "/mode", self.mode),
            ("GET", f"/mode/{s}", self.mode),
            ("PUT", f"/mode/{s}", self.mode),
            ("DELETE", f"/mode/{s}", self.mode),
        ]
        self.routes = [(m, re.compile(f"^{p}$"), h) for m, p, h in table]

    def handle(self, method: str, path: str, query: Query, body: Any) -> Result:
        path = path.rstrip("/")
        for route_method, pattern, handler in self.routes:
            match = pattern.match(path)
            if match and route_method == method:
                params = {k: unquote(val) for k, val in match.groupdict().items()}
                return handler(query, body, **params)
        raise RegistryError(errors.NOT_FOUND, "HTTP 404 Not Found")

    # ---- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _schema_from(body: Any) -> str:
        """Validate a schema request body and return the canonical schema text."""
        if not isinstance(body, dict) or not isinstance(body.get("schema"), str) or not body["schema"]:
            raise errors.invalid_schema("request body must be a JSON object with a non-empty 'schema' string")
        schema_type = body.get("schemaType") or "AVRO"
        if str(schema_type).upper() != "AVRO":
            raise errors.invalid_schema(f"schemaType {schema_type!r} is not supported (AVRO only)")
        if body.get("references"):
            raise errors.invalid_schema("schema references are not supported by this registry")
        return compat.canonical(body["schema"])

    def _live_or_all(self, subject: str, query: Query) -> list[VersionRow]:
        """Versions visible to a read (soft-deleted ones with ?deleted=true); 40401 if none."""
        rows = self.store.versions(subject, include_deleted=_flag(query, "deleted"))
        if not rows:
            raise errors.subject_not_found(subject)
        return rows

    def _pick(self, subject: str, raw_version: str, query: Query) -> VersionRow:
        version = _version(raw_version)
        rows = self._live_or_all(subject, query)
        if version is None:
            live = [r for r in rows if not r.deleted] or rows
            return live[-1]
        for row in rows:
            if row.version == version:
                return row
        raise errors.version_not_found(version)

    def _level(self, subject: str) -> str:
        return self.store.get_config(subject) or self.store.get_config(None) or compat.DEFAULT_LEVEL

    def root(self, query: Query, body: Any) -> Result:
        return 200, {}

    def schema_types(self, query: Query, body: Any) -> Result:
        return 200, ["AVRO"]

    # ---- subjects ------------------------------------------------------------------------------
    def list_subjects(self, query: Query, body: Any) -> Result:
        subjects = self.store.subjects(
            deleted=_flag(query, "deleted"),
            deleted_only=_flag(query, "deleted_only"),
            prefix=query.get("subjectPrefix", ""),
        )
        return 200, _page(subjects, query)

    def list_versions(self, query: Query, body: Any, subject: str) -> Result:
        return 200, _page([r.version for r in self._live_or_all(subject, query)], query)

    def get_version(self, query: Query, body: Any, subject: str, version: str) -> Result:
        return 200, _version_body(self._pick(subject, version, query))

    def get_version_schema(self, query: Query, body: Any, subject: str, version: str) -> Result:
        return 200, json.loads(self._pick(subject, version, query).schema)

    def referenced_by(self, query: Query, body: Any, subject: str, version: str) -> Result:
        self._pick(subject, version, query)
        return 200, []

    def register(self, query: Query, body: Any, subject: str) -> Result:
        schema = self._schema_from(body)
        row = self.store.register(
            subject, schema, compat.fingerprint(schema), lambda level, prev: compat.check(level, schema, prev)
        )
        return 200, {"id": row.schema_id}

    def lookup(self, query: Query, body: Any, subject: str) -> Result:
        schema = self._schema_from(body)
        deleted = _flag(query, "deleted")
        row = self.store.find(subject, compat.fingerprint(schema), include_deleted=deleted)
        if row is None:
            if not self.store.versions(subject, include_deleted=deleted):
                raise errors.subject_not_found(subject)
            raise errors.schema_not_found()
        return 200, _version_body(row)

    def delete_subject(self, query: Query, body: Any, subject: str) -> Result:
        return 200, self.store.delete_subject(subject, permanent=_flag(query, "permanent"))

    def delete_version(self, query: Query, body: Any, subject: str, version: str) -> Result:
        return 200, self.store.delete_version(subject, _version(version), permanent=_flag(query, "permanent"))

    # ---- schemas -------------------------------------------------------------------------------
    def list_schemas(self, query: Query, body: Any) -> Result:
        return 200, _page([_version_body(r) for r in self.store.all_latest()], query)

    def _schema(self, raw_id: str) -> tuple[str, str]:
        found = self.store.schema_by_id(_schema_id(raw_id))
        if found is None:
            raise errors.schema_not_found(f"Schema {raw_id} not found")
        return found

    def get_schema(self, query: Query, body: Any, id: str) -> Result:
        schema, schema_type = self._schema(id)
        result: dict[str, Any] = {"schema": schema}
        if schema_type != "AVRO":
            result["schemaType"] = schema_type
        return 200, result

    def get_raw_schema(self, query: Query, body: Any, id: str) -> Result:
        return 200, json.loads(self._schema(id)[0])

    def schema_versions(self, query: Query, body: Any, id: str) -> Result:
        self._schema(id)
        rows = self.store.usages(int(id), include_deleted=_flag(query, "deleted"))
        if "subject" in query:
            rows = [r for r in rows if r.subject == query["subject"]]
        return 200, _page([{"subject": r.subject, "version": r.version} for r in rows], query)

    def schema_subjects(self, query: Query, body: Any, id: str) -> Result:
        self._schema(id)
        rows = self.store.usages(int(id), include_deleted=_flag(query, "deleted"))
        subjects = sorted({r.subject for r in rows if query.get("subject", r.subject) == r.subject})
        return 200, _page(subjects, query)

    # ---- compatibility -------------------------------------------------------------------------
    def test_compat(self, query: Query, body: Any, subject: str, version: str | None = None) -> Result:
        """`/versions/{v}`: against that one version; `/versions`: against history as the level says."""
        schema = self._schema_from(body)
        live = self.store.versions(subject)
        if version is None:
            previous = live
        else:
            wanted = _version(version)
            if wanted is None:
                previous = live[-1:]
            else:
                previous = [r for r in live if r.version == wanted]
                if not previous:
                    raise errors.subject_not_found(subject) if not live else errors.version_not_found(wanted)
        messages = compat.check(self._level(subject), schema, [(r.version, r.schema) for r in previous])
        result: dict[str, Any] = {"is_compatible": not messages}
        if _flag(query, "verbose"):
            result["messages"] = messages
        return 200, result

    # ---- config and mode -----------------------------------------------------------------------
    def get_config(self, query: Query, body: Any, subject: str | None = None) -> Result:
        level = self.store.get_config(subject)
        if level is None and _flag(query, "defaultToGlobal"):
            level = self.store.get_config(None)
        if level is None:
            raise RegistryError(
                errors.SUBJECT_LEVEL_CONFIG_NOT_FOUND,
                f"Subject '{subject}' does not have subject-level compatibility configured",
            )
        return 200, {"compatibilityLevel": level}

    def put_config(self, query: Query, body: Any, subject: str | None = None) -> Result:
        if not isinstance(body, dict):
            raise errors.invalid_level(body)
        level = compat.normalize_level(body.get("compatibility", body.get("compatibilityLevel")))
        self.store.set_config(subject, level)
        return 200, {"compatibility": level}

    def delete_config(self, query: Query, body: Any, subject: str | None = None) -> Result:
        old = self.store.delete_config(subject)
        if old is None:
            if subject is not None and not self.store.versions(subject, include_deleted=True):
                raise errors.subject_not_found(subject)
            raise RegistryError(
                errors.SUBJECT_LEVEL_CONFIG_NOT_FOUND,
                f"Subject '{subject}' does not have subject-level compatibility configured",
            )
        return 200, {"compatibilityLevel": old}

    def mode(self, query: Query, body: Any, subject: str | None = None) -> Result:
        """Only READWRITE exists here; setting it is accepted, anything else is 42204."""
        if isinstance(body, dict) and str(body.get("mode", "READWRITE")).upper() != "READWRITE":
            raise RegistryError(errors.INVALID_MODE, "Invalid mode: only READWRITE is supported")
        return 200, {"mode": "READWRITE"}
