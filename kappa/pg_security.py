"""Who may do what in PostgreSQL, and how every client reaches it over verified TLS, declared once.

The owner (config `postgres.user`) owns the database and every object the migrations create; the
migrations and the operator commands (replay, demo, `kappa db`, the tests' checks) connect as it.
Everything that runs unattended has its own login role, `<role_prefix><role>`, with least privilege:
each job writes only the tables its `OUTPUTS` declare (kappa/outputs.py; a replay's `_vN` tables are
created by the owner, then granted to the job's role before it runs), the registry owns its own
schema, the Iceberg JDBC catalog owns its own, the analyst reads the views, the monitor reads the
counters the exporters publish. Every client verifies the
server certificate (`postgres.sslmode`, default verify-full) against `postgres.ca_file`, or the
stack's CA.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kappa.config import Config

OWNER = "owner"
LAKE_SCHEMA = "iceberg"  # the Iceberg JDBC catalog's tables (its role's search_path)
REGISTRY_SCHEMA = "registry"  # kappa/registry/store.py names it in its SQL


@dataclass(frozen=True)
class PgRole:
    """One login role's rights."""

    role: str
    job: str | None = None  # SELECT/INSERT/UPDATE/DELETE on the tables jobs/<job>.py declares (any suffix)
    reads: tuple[str, ...] = ()  # SELECT on these tables ("table (col, ...)": on those columns only)
    writes: tuple[str, ...] = ()  # SELECT/INSERT/UPDATE/DELETE on these tables
    reads_views: bool = False  # SELECT on every view of schema public (the readers' query surface)
    own_schema: str | None = None  # owns this schema and all in it; it is also the role's search_path
    member_of: tuple[str, ...] = ()  # predefined roles (pg_monitor)


ROLES: dict[str, PgRole] = {r.role: r for r in (
    PgRole("aggregate", job="aggregate"),
    PgRole("alerts", job="alerts"),
    PgRole("smoke", job="smoke"),
    PgRole("registry", own_schema=REGISTRY_SCHEMA),
    PgRole("lake", own_schema=LAKE_SCHEMA),
    PgRole("analyst", reads_views=True),
    # prometheus-postgres-exporter (pg_monitor) and the project's exporter (kappa/metrics/exporter.py)
    PgRole("monitor", reads=("device_agg_1m", "dead_letters", "late_readings", "duplicates_1m", "alerts"),
             member_of=("pg_monitor",)),
    # the MQTT bridge's device directory (kappa/bridge/devices.py)
    PgRole("bridge", reads=("devices (device_id, status)",)),  # not the credential hashes
)}
JOB_ROLES = tuple(r.role for r in ROLES.values() if r.job)


def user(config: Config, role: str) -> str:
    return config.postgres.user if role == OWNER else f"{config.postgres.role_prefix}{role}"


def password_env(config: Config, role: str) -> str:
    return config.postgres.password_env if role == OWNER else f"KAPPA_PG_{role.upper()}_PASSWORD"


def job_role(job_name: str) -> str:
    """The role a run of `job_name` writes as (the owner for runs without one: benches, sqltest)."""
    return job_name if job_name in JOB_ROLES else OWNER


def ca_path(config: Config) -> Path:
    """The CA clients trust: `postgres.ca_file`, else the stack's own (kappa/stack/mqtt_tls.py)."""
    if config.postgres.ca_file:
        return Path(config.postgres.ca_file)
    from kappa.stack.mosquitto import ca_file  # the one CA of the local stack

    return ca_file(config)


def _verifies(config: Config) -> bool:
    return config.postgres.sslmode in ("verify-ca", "verify-full")


def libpq_params(config: Config) -> dict[str, Any]:
    """sslmode (and the CA when it is verified) as libpq / psycopg keyword arguments."""
    params: dict[str, Any] = {"sslmode": config.postgres.sslmode}
    if _verifies(config):
        params["sslrootcert"] = str(ca_path(config))
    return params


def ssl_query(config: Config) -> str:
    """`sslmode=...&sslrootcert=...` for URLs (pgjdbc, lib/pq, SQLAlchemy), values percent-encoded."""
    return "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in libpq_params(config).items())


def jdbc_url(config: Config) -> str:
    """pgjdbc's URL of the project database: the Flink JDBC sinks and the Iceberg JDBC catalog."""
    return f"{config.postgres.jdbc_url}?{ssl_query(config)}"


def sqlalchemy_url(config: Config, role: str) -> str:
    """SQLAlchemy's URL (pyiceberg's SqlCatalog) for `role`, user and password percent-encoded."""
    pg = config.postgres
    credentials = f"{quote(user(config, role), safe='')}:{quote(config.secret(password_env(config, role)), safe='')}"
    return f"postgresql+psycopg://{credentials}@{pg.host}:{pg.port}/{pg.database}?{ssl_query(config)}"
