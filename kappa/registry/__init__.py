"""A Confluent-compatible Schema Registry (AVRO only) backed by PostgreSQL, shipped with the project.

No registry server is installable here, so the project runs its own; clients only ever see the
Confluent REST API at `config.registry.url`, so a real Confluent/Karapace/Apicurio registry is a
configuration change. Schema references are not supported (a registration that carries any is
rejected with 42201); modes other than READWRITE are not supported.
"""

from __future__ import annotations

import os
from typing import Any

from kappa.config import Config


def credentials(config: Config) -> tuple[str, str]:
    """Basic-auth (user, password): always on. The user is `registry.user` (or the `user_env` variable);
    the password comes from `config.secret` (environment, else the secrets `kappa stack up` generated).
    A missing password raises KeyError rather than silently turning auth off."""
    user = os.environ.get(config.registry.user_env) or config.registry.user
    return user, config.secret(config.registry.password_env)


def client_conf(config: Config) -> dict[str, Any]:
    """Configuration for confluent_kafka's SchemaRegistryClient pointing at this registry."""
    conf: dict[str, Any] = {"url": config.registry.url}
    user, password = credentials(config)
    conf["basic.auth.user.info"] = f"{user}:{password}"
    return conf


def run_server(config: Config, host: str | None = None, port: int | None = None) -> None:
    """Serve until SIGTERM/SIGINT (see `kappa.registry.app.run_server`)."""
    from kappa.registry.app import run_server as _run

    _run(config, host, port)


__all__ = ["client_conf", "credentials", "run_server"]
