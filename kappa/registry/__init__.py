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


def credentials(config: Config) -> tuple[str, str] | None:
    """Basic-auth (user, password), on only when the user variable is set in the environment.

    The password then comes from `config.secret` (environment, else the local secrets file); a user
    without a password is a misconfiguration and raises KeyError rather than silently disabling auth.
    """
    user = os.environ.get(config.registry.user_env)
    if not user:
        return None
    return user, config.secret(config.registry.password_env)


def client_conf(config: Config) -> dict[str, Any]:
    """Configuration for confluent_kafka's SchemaRegistryClient pointing at this registry."""
    conf: dict[str, Any] = {"url": config.registry.url}
    auth = credentials(config)
    if auth:
        conf["basic.auth.user.info"] = f"{auth[0]}:{auth[1]}"
    return conf


def run_server(config: Config, host: str | None = None, port: int | None = None) -> None:
    """Serve until SIGTERM/SIGINT (see `kappa.registry.app.run_server`)."""
    from kappa.registry.app import run_server as _run

    _run(config, host, port)


__all__ = ["client_conf", "credentials", "run_server"]
