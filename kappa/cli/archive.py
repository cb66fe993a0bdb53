"""`kappa archive run | compact | status` (Parquet on S3, kappa.archive) and `kappa query` (DuckDB over
that archive, or with --lake over the Iceberg archive, kappa.lake_query)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from kappa.cli.common import pass_config, progress
from kappa.cli.progress import reporting

if TYPE_CHECKING:
    from kappa.archive_datasets import Dataset
    from kappa.config import Config

DATASET_HELP = "telemetry (decoded raw readings, default) or aggregates (the 1-minute aggregates topic)"


def _check_dataset(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """kappa.archive_datasets.DATASETS, checked when the command runs (its module imports pyarrow)."""
    from kappa.archive_datasets import DATASETS

    if value not in DATASETS:
        raise click.BadParameter(f"{value!r} is not one of {', '.join(sorted(DATASETS))}", ctx=ctx, param=param)
    return value


def _dataset_options(topic_help: str = "default: the dataset's topic") -> Any:
    def decorate(func: Any) -> Any:
        func = click.option("--prefix", help="object key prefix in the bucket (default: the dataset's)")(func)
        func = click.option("--topic", help=topic_help)(func)
        return click.option("--dataset", default="telemetry", callback=_check_dataset, metavar="telemetry|aggregates",
                            help=DATASET_HELP)(func)
    return decorate


def _dataset(name: str, prefix: str | None) -> tuple[Dataset, str]:
    from kappa.archive_datasets import DATASETS

    dataset = DATASETS[name]
    return dataset, prefix or dataset.default_prefix


@click.group(help="archive telemetry and aggregates to Parquet on S3 (exactly once)")
def archive() -> None:
    pass


@archive.command(help="archive what is in the topic (--follow: keep going)")
@_dataset_options()
@click.option("--batch", type=int, default=50_000, show_default=True, help="records per partition per batch (file)")
@click.option("--follow", is_flag=True, help="keep archiving new records until interrupted")
@pass_config
def run(config: Config, dataset: str, topic: str | None, prefix: str | None, batch: int, follow: bool) -> int:
    from kappa.archive import ArchiveWriter

    chosen, prefix = _dataset(dataset, prefix)
    writer = ArchiveWriter(config, topic, batch_records=batch, prefix=prefix, dataset=chosen)
    try:
        with reporting(f"archive {dataset}") as (say, advance):
            archived = writer.run(once=not follow, progress=say, advance=advance)
    finally:
        writer.close()
    click.echo(f"archived {archived} rows to s3://{config.s3.bucket}/{prefix}/")
    return 0


@archive.command(help="merge the small files of closed hour partitions (crash-safe)")
@_dataset_options(topic_help="only files archived from this topic (default: every topic of the prefix)")
@click.option("--min-age-hours", type=float, default=2.0, show_default=True,
              help="an hour partition is closed once its hour ended this long before the newest archived event "
                   "time (capped at now)")
@click.option("--target-mb", type=float, default=128.0, show_default=True,
              help="files below this size are small; merged objects stay below it")
@pass_config
def compact(config: Config, dataset: str, topic: str | None, prefix: str | None, min_age_hours: float,
            target_mb: float) -> int:
    from kappa.archive_compact import Compactor

    _, prefix = _dataset(dataset, prefix)
    compactor = Compactor(config, prefix, topic=topic, min_age_hours=min_age_hours, target_mb=target_mb,
                          progress=progress)
    result = compactor.run()
    click.echo(f"compacted {result.merged_files} files into {result.groups} ({result.rows} rows) under "
               f"s3://{config.s3.bucket}/{prefix}/; deleted {result.deleted_replaced} replaced and "
               f"{result.deleted_orphans} unregistered object(s) left by earlier runs")
    return 0


@archive.command(help="per partition: archived offset and lag; live files per day")
@_dataset_options()
@click.option("--partitions", is_flag=True, help="one line per Hive partition, not per day")
@pass_config
def status(config: Config, dataset: str, topic: str | None, prefix: str | None, partitions: bool) -> int:
    from kappa import archive_manifest as manifest
    from kappa.archive import ArchiveWriter
    from kappa.stack.postgres import connect

    chosen, prefix = _dataset(dataset, prefix)
    writer = ArchiveWriter(config, topic, prefix=prefix, dataset=chosen)
    try:
        rows = writer.status()
    finally:
        writer.close()
    click.echo(f"topic {writer.topic}")
    click.echo(f"{'partition':>9} {'archived':>10} {'end':>10} {'lag':>8}")
    for row in rows:
        click.echo(f"{row.partition:>9} {row.archived_offset:>10} {row.end_offset:>10} {row.lag:>8}")
    with connect(config) as conn:
        lines = manifest.summary(conn, prefix, by="partition" if partitions else "day")
        replaced = manifest.replaced_count(conn, prefix)
    label = "hive partition" if partitions else "day"
    width = max([len(label)] + [len(line[0]) for line in lines])
    click.echo(f"\ns3://{config.s3.bucket}/{prefix}/ (live objects of the manifest)")
    click.echo(f"{label:<{width}} {'partitions':>10} {'files':>7} {'rows':>10} {'MB':>9}")
    for key, partitions_, files, count, size in lines:
        click.echo(f"{key:<{width}} {partitions_:>10} {files:>7} {count:>10} {size / 2**20:>9.2f}")
    totals = [sum(int(line[i]) for line in lines) for i in (1, 2, 3, 4)]
    click.echo(f"{'total':<{width}} {totals[0]:>10} {totals[1]:>7} {totals[2]:>10} {totals[3] / 2**20:>9.2f}")
    if replaced:
        click.echo(f"{replaced} replaced object(s) not deleted yet (the next `kappa archive compact` deletes them)")
    return 0


def _print_result(result: Any) -> None:
    click.echo("\t".join(d[0] for d in result.description or []))
    for row in result.fetchall():
        click.echo("\t".join("" if v is None else str(v) for v in row))


def _query_lake(config: Config, sql: str | None, as_of: str | None, suffix: str, snapshots: bool) -> int:
    """`kappa query --lake`: SQL over the Iceberg archive, as of now or an older snapshot."""
    from kappa import lake, lake_query

    if snapshots:
        catalog = lake.catalog(config)
        for spec in lake_query.ALL_TABLES:  # what DuckDB's iceberg_scan() reads (README: an analyst's session)
            if catalog.table_exists(spec.identifier(config, suffix)):
                click.echo(f"# {spec.name}: {catalog.load_table(spec.identifier(config, suffix)).metadata_location}")
        click.echo("table\tsnapshot_id\tcommitted_at\toperation")
        for row in lake_query.snapshots(config, suffix):
            click.echo("\t".join(str(v) for v in row))
        return 0
    if not sql:
        raise lake_query.LakeQueryError("give a SQL query (or --snapshots)")
    _print_result(lake_query.duckdb_connection(config, suffix, as_of).execute(sql))
    return 0


@click.command(
    short_help="run DuckDB SQL over the Parquet archive, or with --lake over the Iceberg archive",
    help="Run DuckDB SQL over the Parquet archive (view `telemetry`, or `aggregates_1m` with --dataset "
    "aggregates), or with --lake over the Iceberg archive (views telemetry, device_agg_1m, dead_letters). "
    "SQL: e.g. \"SELECT site_id, count(*) FROM telemetry GROUP BY 1\".")
@click.argument("sql", required=False)
@click.option("--dataset", default="telemetry", callback=_check_dataset, metavar="telemetry|aggregates",
              help=DATASET_HELP)
@click.option("--prefix", help="object key prefix in the bucket (default: the dataset's)")
@click.option("--lake", "lake_", is_flag=True,
              help="query the Iceberg archive (views telemetry, device_agg_1m, dead_letters)")
@click.option("--as-of", help="Iceberg time travel: a snapshot id, or a time (ISO 8601, naive = UTC)")
@click.option("--suffix", default="", help="Iceberg: a replayed version's tables, e.g. _v2")
@click.option("--snapshots", is_flag=True, help="Iceberg: list the tables' snapshots")
@pass_config
def query(config: Config, sql: str | None, dataset: str, prefix: str | None, lake_: bool, as_of: str | None,
          suffix: str, snapshots: bool) -> int:
    if lake_ or as_of or snapshots:
        return _query_lake(config, sql, as_of, suffix, snapshots)
    from kappa.archive import duckdb_connection
    from kappa.archive_manifest import ArchiveError

    if not sql:
        raise ArchiveError("give a SQL query")
    chosen, prefix = _dataset(dataset, prefix)
    _print_result(duckdb_connection(config, prefix, view=chosen.view).execute(sql))
    return 0
