"""Versioned PostgreSQL/TimescaleDB migrations from `db/migrations/` (`kappa db migrate`), and the
upkeep of the time-series storage (`kappa db refresh`, `kappa db retention`, `kappa db status`).

Files are `NNNN_name.sql` (always applied), or come in pairs `NNNN_name.timescale.sql` /
`NNNN_name.postgres.sql`: the first is applied where the TimescaleDB extension is available, the
second on plain PostgreSQL. Each version is applied once, in its own transaction, and recorded.
A database keeps the flavour it was first migrated with (see `choose_flavour`).

The time-series tables (0003) are hypertables with continuous aggregates on TimescaleDB, and
monthly range partitions with materialized views on plain PostgreSQL; the `v_*` views (0004) read
the same on both. `refresh_statements` and `retention_statements` give the SQL of each flavour so
that the TimescaleDB one can be checked without a TimescaleDB server (tests/timescale/).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from kappa.config import Config

from kappa.config import PROJECT_ROOT
from kappa.errors import KappaError

MIGRATIONS_DIR = PROJECT_ROOT / "db" / "migrations"
_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<flavour>timescale|postgres))?\.sql$")

Flavour = Literal["timescale", "postgres"]
ROLLUPS: tuple[str, ...] = ("device_agg_1h", "device_agg_1d")
"""Hourly and daily rollups of device_agg_1m: continuous aggregates or materialized views."""
SERIES_TABLES: tuple[str, ...] = ("device_agg_1m", "site_agg_5m")
"""Hypertables (TimescaleDB) or month-partitioned tables (plain PostgreSQL), subject to retention."""
PARTITION_WINDOW = ("1 month", "3 months")
"""`kappa db refresh` on plain PostgreSQL keeps monthly partitions from this long before the current
month to this long after its start (0003 creates the same at migration time)."""


class MigrationError(KappaError):
    """A migration failed; the database is left at the previous version."""


class DbError(KappaError):
    """A maintenance command (refresh, retention, status) failed."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]

    @property
    def flavoured(self) -> bool:
        return self.path.name.endswith((".timescale.sql", ".postgres.sql"))


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    applied_at: datetime


@dataclass
class Status:
    flavour: Flavour
    timescale_available: bool
    applied: list[AppliedMigration] = field(default_factory=list)
    pending: list[Migration] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    """Applied versions whose file differs from what was applied (checksum)."""
    unknown: list[int] = field(default_factory=list)
    """Applied versions with no file in the folder."""


def timescale_available(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    return row is not None


def timescale_installed(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return row is not None


def plan(folder: Path, timescale: bool) -> list[Migration]:
    """The migrations for this flavour of database, in version order."""
    chosen: dict[int, Migration] = {}
    wanted = "timescale" if timescale else "postgres"
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"badly named migration {path.name} (want NNNN_name[.timescale|.postgres].sql)")
        flavour = match.group("flavour")
        if flavour and flavour != wanted:
            continue
        version = int(match.group("version"))
        if version in chosen:
            raise MigrationError(f"two migrations with version {version:04d}")
        chosen[version] = Migration(version, match.group("name"), path)
    return [chosen[v] for v in sorted(chosen)]


def _applied(conn: psycopg.Connection) -> list[AppliedMigration]:
    if conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,):
        return []
    rows = conn.execute("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
    return [AppliedMigration(*row) for row in rows]


def choose_flavour(conn: psycopg.Connection, folder: Path = MIGRATIONS_DIR) -> Flavour:
    """TimescaleDB if the extension is installed in the database; plain PostgreSQL if a flavoured
    migration was already applied without it (installing TimescaleDB later must not switch the
    schema's flavour half-way); otherwise TimescaleDB if it is available."""
    if timescale_installed(conn):
        return "timescale"
    applied = {m.version for m in _applied(conn)}
    if any(m.flavoured and m.version in applied for m in plan(folder, timescale=False)):
        return "postgres"
    return "timescale" if timescale_available(conn) else "postgres"


def migrate(conn: psycopg.Connection, folder: Path = MIGRATIONS_DIR, config: Config | None = None) -> list[Migration]:
    """Apply pending migrations; returns the ones applied now. With `config`, then grant the
    least-privilege roles their tables and views (kappa/stack/pg_setup.py; idempotent)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY, name TEXT NOT NULL, "
        "checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    done = []
    for migration in plan(folder, choose_flavour(conn, folder) == "timescale"):
        if migration.version in applied:
            continue
        try:
            with conn.transaction():
                conn.execute(migration.path.read_text().encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
        except psycopg.Error as exc:
            raise MigrationError(f"migration {migration.path.name} failed: {exc}") from exc
        done.append(migration)
    if config is not None:
        from kappa.stack.pg_setup import grant

        grant(config, conn)
    return done


def status(conn: psycopg.Connection, folder: Path = MIGRATIONS_DIR) -> Status:
    flavour = choose_flavour(conn, folder)
    applied = _applied(conn)
    files = {m.version: m for m in plan(folder, flavour == "timescale")}
    done = {a.version: a for a in applied}
    return Status(
        flavour=flavour,
        timescale_available=timescale_available(conn),
        applied=applied,
        pending=[m for v, m in files.items() if v not in done],
        changed=[v for v, a in done.items() if v in files and files[v].checksum != a.checksum],
        unknown=[v for v in done if v not in files],
    )


def refresh_statements(flavour: Flavour) -> list[str]:
    """SQL bringing the hourly/daily rollups up to date (each statement on its own, no transaction)."""
    if flavour == "timescale":
        return [
            sql.SQL("CALL refresh_continuous_aggregate({}, NULL, NULL)").format(sql.Literal(name)).as_string()
            for name in ROLLUPS
        ]
    before, after = (sql.Literal(v).as_string() for v in PARTITION_WINDOW)
    tables = ", ".join(sql.Literal(t).as_string() for t in SERIES_TABLES)
    return [
        f"SELECT kappa_ensure_partitions(t, date_trunc('month', now() AT TIME ZONE 'UTC') - INTERVAL {before}, "
        f"date_trunc('month', now() AT TIME ZONE 'UTC') + INTERVAL {after}) "
        f"FROM unnest(ARRAY[{tables}]::regclass[]) AS t",
        "SELECT kappa_refresh_rollups()",
    ]


def retention_statements(flavour: Flavour, older_than: str, tables: tuple[str, ...] = SERIES_TABLES) -> list[str]:
    """SQL dropping time-series data older than `older_than` (a PostgreSQL interval, e.g. '90 days');
    each statement answers one row per chunk / partition dropped (first column: its name)."""
    interval = sql.SQL("{}::interval").format(sql.Literal(older_than))
    if flavour == "timescale":
        query = sql.SQL("SELECT drop_chunks({}, older_than => {})::text")
    else:
        query = sql.SQL("SELECT partition_name, rows_removed FROM kappa_drop_partitions_older_than({}, {})")
    return [query.format(sql.Literal(table), interval).as_string() for table in tables]


def refresh(conn: psycopg.Connection) -> Flavour:
    """Refresh the rollups (and, on plain PostgreSQL, extend the monthly partitions)."""
    flavour = choose_flavour(conn)
    try:
        for statement in refresh_statements(flavour):
            conn.execute(statement)
    except psycopg.Error as exc:
        raise DbError(f"refresh failed ({flavour}): {exc}") from exc
    return flavour


def retention(conn: psycopg.Connection, older_than: str, tables: tuple[str, ...] = SERIES_TABLES) -> list[str]:
    """Drop time-series data older than `older_than`; returns what was dropped, one line each."""
    flavour = choose_flavour(conn)
    dropped: list[str] = []
    try:
        for statement in retention_statements(flavour, older_than, tables):
            for row in conn.execute(statement):
                dropped.append(" ".join(str(v) for v in row) if len(row) == 1 else f"{row[0]} ({row[1]} rows)")
    except psycopg.Error as exc:
        raise DbError(f"retention failed ({flavour}): {exc}") from exc
    return dropped

