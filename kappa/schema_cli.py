"""`kappa schema list | show | register | check | diff`: the repository's Avro subjects vs the registry.

`schemas/avro/subjects.toml` is the source of truth (see `kappa.schemas`); the registry is what
producers and consumers actually use. These commands keep the two in step and catch incompatible
schema changes before a producer meets the 409 at run time.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import urllib.parse
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx
import requests

from kappa.config import Config
from kappa.errors import KappaError
from kappa.registry import client_conf, compat, credentials
from kappa.schemas import SubjectSpec, default_root, load_subjects, read_schema

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

Command = Callable[[argparse.Namespace, Config], int]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    schema = subparsers.add_parser("schema", help="Avro schemas: schemas/avro/ vs the schema registry")
    schema.add_argument("--root", type=Path, help="schema folder (default: <project>/schemas/avro)")
    actions = schema.add_subparsers(dest="action", metavar="ACTION", required=True)

    actions.add_parser("list", help="registered subjects, their versions and level").set_defaults(func=_list)

    show = actions.add_parser("show", help="print one registered schema version")
    show.add_argument("subject")
    show.add_argument("--version", default="latest", help="version number or 'latest' (default)")
    show.set_defaults(func=_show)

    register = actions.add_parser(
        "register", help="set each declared level, then register the declared versions in order"
    )
    register.set_defaults(func=_register)

    check = actions.add_parser("check", help="would the registry accept each local schema? (exit 1 if not)")
    check.add_argument(
        "--offline", action="store_true", help="only check the local version history against itself"
    )
    check.set_defaults(func=_check)

    diff = actions.add_parser(
        "diff", help="declared vs registered versions (exit 1 when a declared subject differs)"
    )
    diff.set_defaults(func=_diff)


# ---- plumbing -----------------------------------------------------------------------------------
def _friendly(func: Command) -> Command:
    """Turn unreachable-registry and unexpected registry errors into one readable KappaError."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace, config: Config) -> int:
        try:
            return func(args, config)
        except (requests.ConnectionError, httpx.ConnectError) as exc:
            raise KappaError(
                f"schema registry at {config.registry.url} is not reachable ({exc}); "
                "start it with `kappa stack up` or point registry.host/port at one"
            ) from exc
        except ValueError as exc:
            raise KappaError(str(exc)) from exc
        except Exception as exc:
            if _is_registry_error(exc):
                message = getattr(exc, "error_message", exc)
                raise KappaError(
                    f"schema registry: {message} (error {getattr(exc, 'error_code', '?')})"
                ) from exc
            raise

    return wrapper


def _specs(args: argparse.Namespace, config: Config) -> list[SubjectSpec]:
    return load_subjects(_root(args, config))


def _root(args: argparse.Namespace, config: Config) -> Path:
    return Path(args.root) if args.root else default_root(config.root)


def _rel(path: Path, args: argparse.Namespace, config: Config) -> str:
    root = _root(args, config).resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


class _Http:
    """Plain REST calls for what SchemaRegistryClient does not expose (verbose checks, defaults)."""

    def __init__(self, config: Config) -> None:
        self.url = config.registry.url
        self.session = requests.Session()
        self.session.auth = credentials(config)
        self.session.headers["Content-Type"] = "application/vnd.schemaregistry.v1+json"

    def call(self, method: str, path: str, body: Any = None, **params: str) -> tuple[int, Any]:
        response = self.session.request(method, self.url + path, json=body, params=params, timeout=10)
        if response.status_code == 401:
            raise KappaError(f"schema registry at {self.url} refused the credentials (HTTP 401)")
        return response.status_code, response.json()

    def level(self, subject: str) -> str:
        _, body = self.call("GET", f"/config/{_quote(subject)}", defaultToGlobal="true")
        return str(body.get("compatibilityLevel", "?"))

    def live_versions(self, subject: str) -> list[tuple[int, int, str]]:
        """(version, id, canonical schema) of the subject's live versions; [] for an unknown subject."""
        status, versions = self.call("GET", f"/subjects/{_quote(subject)}/versions")
        if status == 404:
            return []
        rows = []
        for version in versions:
            _, body = self.call("GET", f"/subjects/{_quote(subject)}/versions/{version}")
            rows.append((int(body["version"]), int(body["id"]), compat.canonical(body["schema"])))
        return rows


def _quote(subject: str) -> str:
    return urllib.parse.quote(subject, safe="")


def _sr() -> ModuleType:
    """confluent_kafka.schema_registry, imported on first use: authlib (which it imports) prints a
    deprecation warning on import, and every `kappa` command would show it otherwise."""
    with warnings.catch_warnings(record=True):
        import confluent_kafka.schema_registry as sr
    return sr


def _is_registry_error(exc: Exception) -> bool:
    module = sys.modules.get("confluent_kafka.schema_registry.error")
    return module is not None and isinstance(exc, module.SchemaRegistryError)


def _client(config: Config) -> SchemaRegistryClient:
    client: SchemaRegistryClient = _sr().SchemaRegistryClient(client_conf(config))
    return client


def _avro(text: str) -> Any:
    return _sr().Schema(text, "AVRO")


# ---- commands -----------------------------------------------------------------------------------
@_friendly
def _list(args: argparse.Namespace, config: Config) -> int:
    client, http = _client(config), _Http(config)
    subjects = client.get_subjects()
    if not subjects:
        print(f"no subjects registered at {config.registry.url}")
    for subject in subjects:
        versions = client.get_versions(subject)
        print(f"{subject:<32} versions {','.join(map(str, versions)):<12} level {http.level(subject)}")
    return 0


@_friendly
def _show(args: argparse.Namespace, config: Config) -> int:
    client, http = _client(config), _Http(config)
    if args.version == "latest":
        registered = client.get_latest_version(args.subject)
    else:
        registered = client.get_version(args.subject, int(args.version))
    print(
        f"subject {registered.subject}  version {registered.version}  id {registered.schema_id}  "
        f"level {http.level(args.subject)}"
    )
    print(json.dumps(json.loads(registered.schema.schema_str or "null"), indent=2))
    return 0


@_friendly
def _register(args: argparse.Namespace, config: Config) -> int:
    client, failed = _client(config), False
    for spec in _specs(args, config):
        client.set_compatibility(spec.subject, spec.compatibility)
        for path in spec.versions:
            name = _rel(path, args, config)
            try:
                schema_id = client.register_schema(spec.subject, _avro(read_schema(path)))
            except Exception as exc:
                if not _is_registry_error(exc):
                    raise
                print(f"FAIL {spec.subject:<28} {name}: {getattr(exc, 'error_message', exc)}")
                failed = True
                break  # later versions build on this one
            found = client.lookup_schema(spec.subject, _avro(read_schema(path)))
            print(f"ok   {spec.subject:<28} {name} -> version {found.version}, id {schema_id}")
    return 1 if failed else 0


def _history_problems(spec: SubjectSpec, args: argparse.Namespace, config: Config) -> list[str]:
    """The declared versions checked against each other under the declared level (no registry)."""
    problems: list[str] = []
    schemas: list[tuple[int, str]] = []
    for number, path in enumerate(spec.versions, start=1):
        schema = read_schema(path)
        for reason in compat.check(spec.compatibility, schema, schemas):
            problems.append(f"{_rel(path, args, config)}: {reason}")
        schemas.append((number, schema))
    return problems


@_friendly
def _check(args: argparse.Namespace, config: Config) -> int:
    bad = 0
    http = None if args.offline else _Http(config)
    for spec in _specs(args, config):
        problems = _history_problems(spec, args, config)
        if http is not None:
            problems += _registry_problems(spec, http, args, config)
        status = "ok  " if not problems else "FAIL"
        print(f"{status} {spec.subject} ({spec.compatibility}, {len(spec.versions)} local version(s))")
        for problem in problems:
            print(f"     {problem}")
        bad += bool(problems)
    return 1 if bad else 0


def _registry_problems(spec: SubjectSpec, http: _Http, args: argparse.Namespace, config: Config) -> list[str]:
    """Ask the registry's /compatibility endpoint about each local version it does not have yet."""
    subject = _quote(spec.subject)
    level = http.level(spec.subject)
    registered = http.live_versions(spec.subject)
    problems: list[str] = []
    if registered and level != spec.compatibility:
        print(
            f"     note: registry level {level} differs from declared {spec.compatibility}; "
            "`kappa schema register` sets the declared one (checked under both)"
        )
    known = {schema for _, _, schema in registered}
    for path in spec.versions:
        schema = read_schema(path)
        if schema in known:
            continue
        status, body = http.call(
            "POST", f"/compatibility/subjects/{subject}/versions", {"schema": schema}, verbose="true"
        )
        if status != 200:
            problems.append(f"{_rel(path, args, config)}: registry answered {status}: {body.get('message')}")
            continue
        reasons = list(body.get("messages") or ([] if body.get("is_compatible") else ["incompatible"]))
        if level != spec.compatibility:
            history = [(version, text) for version, _, text in registered]
            reasons += compat.check(spec.compatibility, schema, history)
        problems += [f"{_rel(path, args, config)}: {reason}" for reason in reasons]
    return problems


@_friendly
def _diff(args: argparse.Namespace, config: Config) -> int:
    http, differs = _Http(config), False
    specs = _specs(args, config)
    for spec in specs:
        registered = http.live_versions(spec.subject)
        by_schema = {schema: (version, schema_id) for version, schema_id, schema in registered}
        local = [(path, read_schema(path)) for path in spec.versions]
        lines = []
        for path, schema in local:
            if schema in by_schema:
                version, schema_id = by_schema[schema]
                lines.append(f"  = {_rel(path, args, config)}  (version {version}, id {schema_id})")
            else:
                lines.append(f"  + {_rel(path, args, config)}  not registered")
        local_schemas = {schema for _, schema in local}
        for version, schema_id, schema in registered:
            if schema not in local_schemas:
                lines.append(f"  - version {version} (id {schema_id})  registered, not declared locally")
        same = all(line.startswith("  =") for line in lines)
        differs |= not same
        print(f"{'same' if same else 'DIFF'} {spec.subject}")
        print("\n".join(lines))
    declared = {spec.subject for spec in specs}
    _, subjects = http.call("GET", "/subjects")
    extra = sorted(set(subjects) - declared)
    if extra:  # informational: other tools (or tests) may register their own subjects
        print(f"note: registered but not declared in subjects.toml: {', '.join(extra)}")
    return 1 if differs else 0
