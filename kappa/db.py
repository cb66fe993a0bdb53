"""Versioned PostgreSQL/TimescaleDB migrations from `db/migrations/` (`kappa db migrate`).

Files are `NNNN_name.sql` (always applied), or come in pairs `NNNN_name.timescale.sql` /
`NNNN_name.postgres.sql`: the first is applied where the TimescaleDB extension is available, the
second on plain PostgreSQL. Each version is applied once, in its own transaction, and recorded.
"""

from __future__ import annotations

import argparse
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from kappa.config import PROJECT_ROOT, Config
from kappa.errors import KappaError
from kappa.stack.postgres import connect

MIGRATIONS_DIR = PROJECT_ROOT / "db" / "migrations"
_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<flavour>timescale|postgres))?\.sql$")


class MigrationError(KappaError):
    """A migration failed; the database is left at the previous version."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]


def timescale_available(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
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


def migrate(conn: psycopg.Connection, folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply pending migrations; returns the ones applied now."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY, name TEXT NOT NULL, "
        "checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    done = []
    for migration in plan(folder, timescale_available(conn)):
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
    return done


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    db = subparsers.add_parser("db", help="database migrations")
    actions = db.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("migrate", help="apply pending migrations from db/migrations/").set_defaults(
        func=_migrate
    )


def _migrate(args: argparse.Namespace, config: Config) -> int:
    with connect(config) as conn:
        applied = migrate(conn)
    for migration in applied:
        print(f"applied {migration.path.name}")
    print(f"database {config.postgres.database} is up to date ({len(applied)} applied now)")
    return 0
