"""`kappa db roles | migrate | refresh | retention | status`: migrations and upkeep of PostgreSQL (kappa.db)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kappa.cli.common import pass_config
from kappa.db import SERIES_TABLES  # psycopg, but no Kafka, Arrow or Flink

if TYPE_CHECKING:
    from kappa.config import Config


@click.group(help="database migrations and upkeep")
def db() -> None:
    pass


@db.command(help="apply pending migrations from db/migrations/")
@pass_config
def migrate(config: Config) -> int:
    from kappa import reference
    from kappa.db import migrate as apply_migrations
    from kappa.stack.postgres import connect

    with connect(config) as conn:
        applied = apply_migrations(conn, config=config)
        seeded = reference.seed(config, conn)
    for migration in applied:
        click.echo(f"applied {migration.path.name}")
    if seeded:
        click.echo(seeded)
    click.echo(f"database {config.postgres.database} is up to date ({len(applied)} applied now)")
    return 0


@db.command(help="as the server's superuser (KAPPA_PG_ADMIN_PASSWORD): the owner, the database and every "
                 "least-privilege role with its password (KAPPA_PG_<ROLE>_PASSWORD); before `migrate` on an "
                 "external server (`stack up` does it for its own)")
@pass_config
def roles(config: Config) -> int:
    from kappa import pg_security
    from kappa.stack.postgres import bootstrap

    bootstrap(config)
    names = [pg_security.user(config, role) for role in pg_security.ROLES]
    click.echo(f"roles of database {config.postgres.database} up to date: {config.postgres.user}, {', '.join(names)}")
    return 0


@db.command(help="refresh the hourly/daily rollups (continuous aggregates or materialized views)")
@pass_config
def refresh(config: Config) -> int:
    from kappa.db import ROLLUPS
    from kappa.db import refresh as refresh_rollups
    from kappa.stack.postgres import connect

    with connect(config) as conn:
        flavour = refresh_rollups(conn)
    click.echo(f"refreshed {', '.join(ROLLUPS)} ({flavour})")
    return 0


@db.command(help="drop time-series chunks/partitions older than an interval")
@click.option("--older-than", required=True, metavar="INTERVAL", help="PostgreSQL interval, e.g. '90 days'")
@click.option("--table", "tables", multiple=True, type=click.Choice(SERIES_TABLES),
              help=f"table to trim (repeatable; default: {', '.join(SERIES_TABLES)})")
@pass_config
def retention(config: Config, older_than: str, tables: tuple[str, ...]) -> int:
    from kappa.db import retention as drop_older
    from kappa.stack.postgres import connect

    with connect(config) as conn:
        dropped = drop_older(conn, older_than, tables or SERIES_TABLES)
    for line in dropped:
        click.echo(f"dropped {line}")
    click.echo(f"retention: {len(dropped)} chunk(s)/partition(s) older than {older_than} dropped")
    return 0


@db.command(help="flavour, applied and pending migrations")
@pass_config
def status(config: Config) -> int:
    from kappa.db import status as migration_status
    from kappa.stack.postgres import connect

    with connect(config) as conn:
        st = migration_status(conn)
    click.echo(
        f"database {config.postgres.database}: flavour {st.flavour} (timescaledb available: {st.timescale_available})"
    )
    for a in st.applied:
        mark = " CHANGED since applied" if a.version in st.changed else " (no file)" if a.version in st.unknown else ""
        click.echo(f"  {a.version:04d} {a.name:<24} {a.checksum} {a.applied_at:%Y-%m-%d %H:%M:%S%z}{mark}")
    for m in st.pending:
        click.echo(f"  {m.version:04d} {m.name:<24} pending ({m.path.name})")
    click.echo(f"{len(st.applied)} applied, {len(st.pending)} pending")
    return 1 if st.changed else 0
