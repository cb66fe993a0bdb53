"""Who may do what on S3: three key pairs, each client with the least one it needs, declared once.

- admin (`s3.access_key_env` / `secret_key_env`): the stack itself, to probe the gateway and create the
  bucket (`kappa stack up`); nothing else uses it.
- writer: Read, Write (put and delete) and List on the project's bucket only: the jobs' Iceberg sinks
  (sql/archive/catalog.sql), lake maintenance, table creation and
  drops, replay clean-up, and Flink's HA storage and checkpoints on S3.
- reader: Read and List on the bucket only: `kappa query` (DuckDB over Iceberg), pyiceberg's
  readers (`kappa query --lake --snapshots`, the exporter's lake commits, tests' checks).

`kappa stack up` generates every pair (kappa.stack.manager.ensure_local_secrets) and SeaweedFS serves
them from its identities file (kappa.stack.objectstore). For an external S3 with one key pair, a role
whose two variables are set nowhere falls back to the admin pair (every client then has its rights),
like the registry's roles; a role with only one of its two variables set is an error.
"""

from __future__ import annotations

from typing import Any

from kappa.config import Config
from kappa.errors import MissingSecret

ADMIN, WRITER, READER = "admin", "writer", "reader"
ROLES = (ADMIN, WRITER, READER)
# SeaweedFS's action names; the writer's and reader's are scoped to the project's bucket (`Action:bucket`)
_ACTIONS: dict[str, tuple[str, ...]] = {
    ADMIN: ("Admin", "Read", "Write", "List", "Tagging"),
    WRITER: ("Read", "Write", "List"),
    READER: ("Read", "List"),
}


def key_envs(config: Config, role: str) -> tuple[str, str]:
    """(access key variable, secret key variable) of `role`."""
    s3 = config.s3
    envs = {ADMIN: (s3.access_key_env, s3.secret_key_env),
            WRITER: (s3.writer_access_key_env, s3.writer_secret_key_env),
            READER: (s3.reader_access_key_env, s3.reader_secret_key_env)}
    if role not in envs:
        raise ValueError(f"unknown S3 role {role!r}; known: {', '.join(ROLES)}")
    return envs[role]


def _set(config: Config, env: str) -> bool:
    try:
        config.secret(env)
    except MissingSecret:
        return False
    return True


def keys(config: Config, role: str) -> tuple[str, str]:
    """(access key, secret key) of `role`, from the environment or the stack's local secrets; the admin
    pair when neither of the role's variables is set anywhere (an external S3 with one key pair)."""
    access_env, secret_env = key_envs(config, role)
    if role != ADMIN and not _set(config, access_env) and not _set(config, secret_env):
        access_env, secret_env = key_envs(config, ADMIN)
    return config.secret(access_env), config.secret(secret_env)


def actions(config: Config, role: str) -> list[str]:
    """SeaweedFS actions of `role`: the admin's unscoped, the others' on the project's bucket only."""
    if role == ADMIN:
        return list(_ACTIONS[ADMIN])
    return [f"{action}:{config.s3.bucket}" for action in _ACTIONS[role]]


def identities(config: Config) -> dict[str, Any]:
    """SeaweedFS's `-s3.config` document: one identity per role with its own key pair (a role that falls
    back to the admin's pair is left out: one access key, one identity)."""
    found, seen = [], set()
    for role in ROLES:
        access, secret = keys(config, role)
        if access in seen:
            continue
        seen.add(access)
        found.append({"name": f"kappa-{role}", "credentials": [{"accessKey": access, "secretKey": secret}],
                      "actions": actions(config, role)})
    return {"identities": found}
