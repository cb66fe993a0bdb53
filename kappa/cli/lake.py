"""`kappa lake compact | expire | orphans | status`: upkeep of the Iceberg archive (kappa.lake_maintenance)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from kappa.cli.common import pass_config, progress

if TYPE_CHECKING:
    from kappa.config import Config


def _common(func: Any) -> Any:
    func = click.option("--suffix", default="", help="a replayed version's tables, e.g. _v2")(func)
    return click.argument("tables", nargs=-1, metavar="[TABLE]...")(func)


@click.group(
    short_help="upkeep of the Iceberg archive: compact small files, expire snapshots, show files",
    help="Maintenance through Iceberg's own actions. Each action commits atomically or not at all: an "
    "interrupted run leaves the tables as they were (exit code 2 on failure, 130 when interrupted). "
    "TABLE: archive tables (default: telemetry device_agg_1m dead_letters).")
def lake() -> None:
    pass


@lake.command(
    short_help="rewrite each partition's small data files into files of the target size",
    help="Iceberg's Flink rewrite action, run in a local MiniCluster: one 'replace' commit per table, "
    "validated against the live job's concurrent commits. Upserted windows are rewritten with their "
    "equality deletes applied. The replaced files stay for time travel until `kappa lake expire` expires "
    "the snapshots that read them.")
@_common
@click.option("--target-mb", type=int, help="target data file size (default: lake.target_file_size_mb)")
@pass_config
def compact(config: Config, tables: tuple[str, ...], suffix: str, target_mb: int | None) -> int:
    from kappa import lake_maintenance as maintenance

    results = maintenance.compact(config, maintenance.tables(list(tables)), suffix, target_mb, progress)
    for r in results:
        click.echo(f"{r.table}\t{r.files_before} -> {r.files_after} data files\t{r.seconds:.1f} s")
    return 0


@lake.command(
    short_help="expire old snapshots and delete the files only they referenced",
    help="Iceberg's ExpireSnapshots: snapshots older than --max-age-hours go, except the newest "
    "--retain-last of each table and any branch or tag. Time travel reaches only the kept snapshots.")
@_common
@click.option("--retain-last", type=int, help="keep this many newest snapshots (default: lake.snapshot_retain_last)")
@click.option("--max-age-hours", type=float,
              help="expire snapshots older than this (default: lake.snapshot_max_age_hours)")
@pass_config
def expire(config: Config, tables: tuple[str, ...], suffix: str, retain_last: int | None,
           max_age_hours: float | None) -> int:
    from kappa import lake_maintenance as maintenance

    results = maintenance.expire(config, maintenance.tables(list(tables)), suffix, retain_last, max_age_hours,
                                 progress)
    for r in results:
        click.echo(f"{r.table}\t{r.snapshots_before} -> {r.snapshots_after} snapshots\t{r.seconds:.1f} s")
    return 0


@lake.command(
    short_help="delete files under the tables' locations that no snapshot references",
    help="Iceberg's Flink DeleteOrphanFiles (its maintenance API, run once): files no snapshot references and "
    "older than --min-age-hours are deleted (a failed or killed write's files). Younger files may belong to a "
    "running job's checkpoint not committed yet: keep the age well above it. Tables without any snapshot are "
    "skipped.")
@_common
@click.option("--min-age-hours", type=float, help="only files older than this (default: lake.orphan_min_age_hours)")
@pass_config
def orphans(config: Config, tables: tuple[str, ...], suffix: str, min_age_hours: float | None) -> int:
    from kappa import lake_maintenance as maintenance

    for name in maintenance.delete_orphans(config, maintenance.tables(list(tables)), suffix, min_age_hours,
                                           progress):
        click.echo(f"{name}\torphan files older than the minimum age deleted")
    return 0


@lake.command(help="per table and partition: data files, delete files, rows, MB; snapshots")
@_common
@pass_config
def status(config: Config, tables: tuple[str, ...], suffix: str) -> int:
    from kappa import lake_maintenance as maintenance

    for spec in maintenance.tables(list(tables)):
        table = maintenance.load(config, spec, suffix)
        current = table.current_snapshot()
        click.echo(f"# {spec.name}{suffix}: {len(table.snapshots())} snapshots, current "
                   f"{current.snapshot_id if current else '-'}")
        click.echo("partition\tdata_files\tdelete_files\trows\tMB")
        for p in maintenance.partition_files(config, spec, suffix):
            click.echo(f"{p.partition}\t{p.data_files}\t{p.delete_files}\t{p.records}\t{p.bytes / 2**20:.2f}")
    return 0
