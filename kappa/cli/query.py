"""`kappa query`: DuckDB SQL over the Iceberg archive (kappa.lake_query), as of now or an older snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from kappa.cli.common import pass_config

if TYPE_CHECKING:
    from kappa.config import Config


def _print_result(result: Any) -> None:
    click.echo("\t".join(d[0] for d in result.description or []))
    for row in result.fetchall():
        click.echo("\t".join("" if v is None else str(v) for v in row))


@click.command(
    short_help="run DuckDB SQL over the Iceberg archive (views telemetry, device_agg_1m, dead_letters)",
    help="Run DuckDB SQL over the Iceberg archive the jobs write: views telemetry, device_agg_1m and "
    "dead_letters. SQL: e.g. \"SELECT site_id, count(*) FROM telemetry GROUP BY 1\".")
@click.argument("sql", required=False)
@click.option("--as-of", help="time travel: a snapshot id, or a time (ISO 8601, naive = UTC)")
@click.option("--suffix", default="", help="a --follow replay version's own tables, e.g. _v2")
@click.option("--branch", help="a bounded replay's branch of the live tables, e.g. replay_v2")
@click.option("--snapshots", is_flag=True, help="list the tables' snapshots (and their metadata files)")
@click.option("--lake", is_flag=True, hidden=True,
              help="accepted for scripts from when a Parquet archive existed too (Iceberg is the only one now)")
@pass_config
def query(config: Config, sql: str | None, as_of: str | None, suffix: str, branch: str | None, snapshots: bool,
          lake: bool) -> int:
    from kappa import lake as iceberg
    from kappa import lake_query

    if snapshots:
        catalog = iceberg.catalog(config)
        for spec in lake_query.ALL_TABLES:  # what DuckDB's iceberg_scan() reads (README: an analyst's session)
            if catalog.table_exists(spec.identifier(config, suffix)):
                click.echo(f"# {spec.name}: {catalog.load_table(spec.identifier(config, suffix)).metadata_location}")
        click.echo("table\tsnapshot_id\tcommitted_at\toperation")
        for row in lake_query.snapshots(config, suffix):
            click.echo("\t".join(str(v) for v in row))
        return 0
    if not sql:
        raise lake_query.LakeQueryError("give a SQL query (or --snapshots)")
    _print_result(lake_query.duckdb_connection(config, suffix, as_of, branch=branch).execute(sql))
    return 0
