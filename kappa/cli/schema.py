"""`kappa schema list | show | register | check | diff`: the repository's Avro subjects vs the registry.

`schemas/avro/subjects.toml` is the source of truth (see `kappa.schemas`); the registry is what
producers and consumers actually use. These commands keep the two in step and catch incompatible
schema changes before a producer meets the 409 at run time.
"""

from __future__ import annotations

import functools
import json
import sys
import urllib.parse
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import click
import httpx
import requests

from kappa.cli.common import pass_config
from kappa.config import Config
from kappa.errors import KappaError
from kappa.registry import READ, WRITE, client_conf, compat, ensure_compatibility, session
from kappa.schemas import SubjectSpec, default_root, load_subjects, read_schema

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

Command = Callable[..., int]
ROOT_KEY = "kappa.schema.root"


@click.group(help="Avro schemas: schemas/avro/ vs the schema registry")
@click.option("--root", type=click.Path(path_type=Path), help="schema folder (default: <project>/schemas/avro)")
@click.pass_context
def schema(ctx: click.Context, root: Path | None) -> None:
    ctx.meta[ROOT_KEY] = root


# ---- plumbing -----------------------------------------------------------------------------------
def _friendly(func: Command) -> Command:
    """Turn unreachable-registry and unexpected registry errors into one readable KappaError."""

    @functools.wraps(func)
    def wrapper(config: Config, *args: Any, **kwargs: Any) -> int:
        try:
            return func(config, *args, **kwargs)
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


def _specs(config: Config) -> list[SubjectSpec]:
    return load_subjects(_root(config))


def _root(config: Config) -> Path:
    root = click.get_current_context().meta.get(ROOT_KEY)
    return Path(root) if root else default_root(config.root)


def _rel(path: Path, config: Config) -> str:
    root = _root(config).resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


class _Http:
    """Plain REST calls for what SchemaRegistryClient does not expose (verbose checks, defaults)."""

    def __init__(self, config: Config, role: str = READ) -> None:
        self.url = config.registry.url
        self.session = session(config, role)  # verifies the registry's certificate
        self.session.headers["Content-Type"] = "application/vnd.schemaregistry.v1+json"

    def call(self, method: str, path: str, body: Any = None, **params: str) -> tuple[int, Any]:
        response = self.session.request(method, self.url + path, json=body, params=params, timeout=10)
        if response.status_code == 401:
            raise KappaError(f"schema registry at {self.url} refused the credentials (HTTP 401)")
        if response.status_code == 403:
            raise KappaError(f"schema registry at {self.url}: {response.json().get('message')} (HTTP 403)")
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


def _client(config: Config, role: str = READ) -> SchemaRegistryClient:
    """A client with the least registry role the command needs (kappa/registry/roles.py)."""
    client: SchemaRegistryClient = _sr().SchemaRegistryClient(client_conf(config, role))
    return client


def _avro(text: str) -> Any:
    return _sr().Schema(text, "AVRO")


# ---- commands -----------------------------------------------------------------------------------
@schema.command("list", help="registered subjects, their versions and level")
@pass_config
@_friendly
def list_(config: Config) -> int:
    client, http = _client(config), _Http(config)
    subjects = client.get_subjects()
    if not subjects:
        click.echo(f"no subjects registered at {config.registry.url}")
    for subject in subjects:
        versions = client.get_versions(subject)
        click.echo(f"{subject:<32} versions {','.join(map(str, versions)):<12} level {http.level(subject)}")
    return 0


@schema.command(help="print one registered schema version")
@click.argument("subject")
@click.option("--version", default="latest", help="version number or 'latest' (default)")
@pass_config
@_friendly
def show(config: Config, subject: str, version: str) -> int:
    client, http = _client(config), _Http(config)
    if version == "latest":
        registered = client.get_latest_version(subject)
    else:
        registered = client.get_version(subject, int(version))
    click.echo(
        f"subject {registered.subject}  version {registered.version}  id {registered.schema_id}  "
        f"level {http.level(subject)}"
    )
    click.echo(json.dumps(json.loads(registered.schema.schema_str or "null"), indent=2))
    return 0


@schema.command(help="set each declared level, then register the declared versions in order")
@pass_config
@_friendly
def register(config: Config) -> int:
    """Registers with the write role; a declared level that differs from the registry's is set with the
    admin role (only then: with the levels in place, a schema owner needs no admin credential)."""
    client, failed = _client(config, WRITE), False
    for spec in _specs(config):
        ensure_compatibility(config, spec.subject, spec.compatibility)
        for path in spec.versions:
            name = _rel(path, config)
            try:
                schema_id = client.register_schema(spec.subject, _avro(read_schema(path)))
            except Exception as exc:
                if not _is_registry_error(exc):
                    raise
                click.echo(f"FAIL {spec.subject:<28} {name}: {getattr(exc, 'error_message', exc)}")
                failed = True
                break  # later versions build on this one
            found = client.lookup_schema(spec.subject, _avro(read_schema(path)))
            click.echo(f"ok   {spec.subject:<28} {name} -> version {found.version}, id {schema_id}")
    return 1 if failed else 0


def _history_problems(spec: SubjectSpec, config: Config) -> list[str]:
    """The declared versions checked against each other under the declared level (no registry)."""
    problems: list[str] = []
    schemas: list[tuple[int, str]] = []
    for number, path in enumerate(spec.versions, start=1):
        schema = read_schema(path)
        for reason in compat.check(spec.compatibility, schema, schemas):
            problems.append(f"{_rel(path, config)}: {reason}")
        schemas.append((number, schema))
    return problems


@schema.command(help="would the registry accept each local schema? (exit 1 if not)")
@click.option("--offline", is_flag=True, help="only check the local version history against itself")
@pass_config
@_friendly
def check(config: Config, offline: bool) -> int:
    bad = 0
    http = None if offline else _Http(config, WRITE)  # POST /compatibility: the write role
    for spec in _specs(config):
        problems = _history_problems(spec, config)
        if http is not None:
            problems += _registry_problems(spec, http, config)
        status = "ok  " if not problems else "FAIL"
        click.echo(f"{status} {spec.subject} ({spec.compatibility}, {len(spec.versions)} local version(s))")
        for problem in problems:
            click.echo(f"     {problem}")
        bad += bool(problems)
    return 1 if bad else 0


def _registry_problems(spec: SubjectSpec, http: _Http, config: Config) -> list[str]:
    """Ask the registry's /compatibility endpoint about each local version it does not have yet."""
    subject = _quote(spec.subject)
    level = http.level(spec.subject)
    registered = http.live_versions(spec.subject)
    problems: list[str] = []
    if registered and level != spec.compatibility:
        click.echo(
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
            problems.append(f"{_rel(path, config)}: registry answered {status}: {body.get('message')}")
            continue
        reasons = list(body.get("messages") or ([] if body.get("is_compatible") else ["incompatible"]))
        if level != spec.compatibility:
            history = [(version, text) for version, _, text in registered]
            reasons += compat.check(spec.compatibility, schema, history)
        problems += [f"{_rel(path, config)}: {reason}" for reason in reasons]
    return problems


@schema.command(help="declared vs registered versions (exit 1 when a declared subject differs)")
@pass_config
@_friendly
def diff(config: Config) -> int:
    http, differs = _Http(config), False
    specs = _specs(config)
    for spec in specs:
        registered = http.live_versions(spec.subject)
        by_schema = {schema: (version, schema_id) for version, schema_id, schema in registered}
        local = [(path, read_schema(path)) for path in spec.versions]
        lines = []
        for path, schema in local:
            if schema in by_schema:
                version, schema_id = by_schema[schema]
                lines.append(f"  = {_rel(path, config)}  (version {version}, id {schema_id})")
            else:
                lines.append(f"  + {_rel(path, config)}  not registered")
        local_schemas = {schema for _, schema in local}
        for version, schema_id, schema in registered:
            if schema not in local_schemas:
                lines.append(f"  - version {version} (id {schema_id})  registered, not declared locally")
        same = all(line.startswith("  =") for line in lines)
        differs |= not same
        click.echo(f"{'same' if same else 'DIFF'} {spec.subject}")
        click.echo("\n".join(lines))
    declared = {spec.subject for spec in specs}
    _, subjects = http.call("GET", "/subjects")
    extra = sorted(set(subjects) - declared)
    if extra:  # informational: other tools (or tests) may register their own subjects
        click.echo(f"note: registered but not declared in subjects.toml: {', '.join(extra)}")
    return 1 if differs else 0
