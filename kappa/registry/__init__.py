"""A Confluent-compatible Schema Registry (AVRO only) backed by PostgreSQL, shipped with the project.

No registry server is installable here, so the project runs its own; clients only ever see the
Confluent REST API at `config.registry.url`, so a real Confluent/Karapace/Apicurio registry is a
configuration change. Schema references are not supported (a registration that carries any is
rejected with 42201); modes other than READWRITE are not supported.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import TYPE_CHECKING, Any

from kappa.config import Config
from kappa.errors import KappaError, MissingSecret
from kappa.registry.roles import ADMIN, READ, ROLES, WRITE

if TYPE_CHECKING:
    import requests


def role_user(config: Config, role: str) -> str:
    """The basic-auth user of `role`; the admin's name may come from the `user_env` variable."""
    registry = config.registry
    if role == ADMIN:
        return os.environ.get(registry.user_env) or registry.user
    return {READ: registry.read_user, WRITE: registry.write_user}[role]


def role_password_env(config: Config, role: str) -> str:
    registry = config.registry
    return {ADMIN: registry.password_env, READ: registry.read_password_env, WRITE: registry.write_password_env}[role]


def credentials(config: Config, role: str) -> tuple[str, str]:
    """Basic-auth (user, password) of `role` (kappa/registry/roles.py); auth is always on.

    Passwords come from `config.secret` (environment, else the secrets `kappa stack up` generated). A read
    or write role whose password is set nowhere falls back to the admin credential: an external registry
    with a single credential works unchanged (every client then has that one identity's rights). A
    missing admin password raises MissingSecret rather than silently turning auth off."""
    if role not in ROLES:
        raise ValueError(f"unknown registry role {role!r}; known: {', '.join(ROLES)}")
    if role != ADMIN:
        try:
            return role_user(config, role), config.secret(role_password_env(config, role))
        except MissingSecret:
            pass
    return role_user(config, ADMIN), config.secret(role_password_env(config, ADMIN))


def identities(config: Config) -> dict[str, tuple[str, str]]:
    """role -> (user, password): what the project's registry server accepts."""
    return {role: credentials(config, role) for role in ROLES}


def ca_file(config: Config) -> str:
    """The CA file every client verifies the registry's certificate against (`requests`' `verify=`)."""
    from kappa.registry.tls import ca_path

    return str(ca_path(config))


def client_conf(config: Config, role: str) -> dict[str, Any]:
    """Configuration for confluent_kafka's SchemaRegistryClient, authenticated as `role`, verifying TLS."""
    user, password = credentials(config, role)
    return {"url": config.registry.url, "basic.auth.user.info": f"{user}:{password}",
            "ssl.ca.location": ca_file(config)}


def session(config: Config, role: str | None = None) -> requests.Session:
    """A `requests` session for the registry: verifies its certificate against `ca_file`, and logs in as
    `role` (None: anonymous, for tests of refusals)."""
    from kappa.registry.http import VerifyingSession

    http = VerifyingSession(ca_file(config))
    if role is not None:
        http.auth = credentials(config, role)
    return http


def ensure_compatibility(config: Config, subject: str, level: str) -> bool:
    """Give `subject` its own compatibility `level`; True if it had to change. The level is read with the
    read role and changed, only when it differs, with the admin role (a level change is an admin's act):
    a schema owner holding the write role only can re-run `kappa schema register` once levels are set."""
    url = f"{config.registry.url}/config/{urllib.parse.quote(subject, safe='')}"
    with session(config, READ) as reader:
        current = reader.get(url, timeout=10)
    if current.status_code == 200 and current.json().get("compatibilityLevel") == level:
        return False
    if current.status_code in (200, 404):
        with session(config, ADMIN) as admin:
            current = admin.put(url, json={"compatibility": level}, timeout=10)
        if current.status_code == 200:
            return True
    body = current.json() if current.headers.get("Content-Type", "").endswith("json") else {}
    raise KappaError(f"schema registry: {body.get('message', current.reason)} (HTTP {current.status_code}, "
                     f"setting {subject}'s compatibility)")


def run_server(config: Config, host: str | None = None, port: int | None = None) -> None:
    """Serve until SIGTERM/SIGINT (see `kappa.registry.server.run_server`)."""
    from kappa.registry.server import run_server as _run

    _run(config, host, port)


__all__ = ["ADMIN", "READ", "WRITE", "ca_file", "client_conf", "credentials", "ensure_compatibility", "identities",
           "role_password_env", "role_user", "run_server", "session"]
