"""`kappa lake compact | expire | status`: upkeep of the Iceberg archive (kappa.lake_maintenance)."""

from __future__ import annotations

import argparse
import sys

from kappa.config import Config

_TABLES_HELP = "archive tables (default: telemetry device_agg_1m dead_letters)"


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tables", nargs="*", metavar="TABLE", help=_TABLES_HELP)
    parser.add_argument("--suffix", default="", help="a replayed version's tables, e.g. _v2")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser(
        "lake", help="upkeep of the Iceberg archive: compact small files, expire snapshots, show files",
        description="Maintenance through Iceberg's own actions. Each action commits atomically or not at all: "
        "an interrupted run leaves the tables as they were (exit code 2 on failure, 130 when interrupted).")
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    compact = actions.add_parser(
        "compact", help="rewrite each partition's small data files into files of the target size",
        description="Iceberg's Flink rewrite action, run in a local MiniCluster: one 'replace' commit per table, "
        "validated against the live job's concurrent commits. Upserted windows are rewritten with their "
        "equality deletes applied. The replaced files stay for time travel until `kappa lake expire` expires "
        "the snapshots that read them.")
    _common(compact)
    compact.add_argument("--target-mb", type=int, help="target data file size (default: lake.target_file_size_mb)")
    compact.set_defaults(func=_compact)
    expire = actions.add_parser(
        "expire", help="expire old snapshots and delete the files only they referenced",
        description="Iceberg's ExpireSnapshots: snapshots older than --max-age-hours go, except the newest "
        "--retain-last of each table and any branch or tag. Time travel reaches only the kept snapshots.")
    _common(expire)
    expire.add_argument("--retain-last", type=int, help="keep this many newest snapshots (default: "
                        "lake.snapshot_retain_last)")
    expire.add_argument("--max-age-hours", type=float, help="expire snapshots older than this (default: "
                        "lake.snapshot_max_age_hours)")
    expire.set_defaults(func=_expire)
    orphans = actions.add_parser(
        "orphans", help="delete files under the tables' locations that no snapshot references",
        description="Iceberg's Flink DeleteOrphanFiles (its maintenance API, run once): files no snapshot "
        "references and older than --min-age-hours are deleted (a failed or killed write's files). Younger "
        "files may belong to a running job's checkpoint not committed yet: keep the age well above it. "
        "Tables without any snapshot are skipped.")
    _common(orphans)
    orphans.add_argument("--min-age-hours", type=float, help="only files older than this (default: "
                         "lake.orphan_min_age_hours)")
    orphans.set_defaults(func=_orphans)
    status = actions.add_parser("status", help="per table and partition: data files, delete files, rows, MB; "
                                "snapshots")
    _common(status)
    status.set_defaults(func=_status)


def _compact(args: argparse.Namespace, config: Config) -> int:
    from kappa import lake_maintenance as maintenance

    results = maintenance.compact(config, maintenance.tables(args.tables), args.suffix, args.target_mb, _progress)
    for r in results:
        print(f"{r.table}\t{r.files_before} -> {r.files_after} data files\t{r.seconds:.1f} s")
    return 0


def _expire(args: argparse.Namespace, config: Config) -> int:
    from kappa import lake_maintenance as maintenance

    results = maintenance.expire(config, maintenance.tables(args.tables), args.suffix, args.retain_last,
                                 args.max_age_hours, _progress)
    for r in results:
        print(f"{r.table}\t{r.snapshots_before} -> {r.snapshots_after} snapshots\t{r.seconds:.1f} s")
    return 0


def _orphans(args: argparse.Namespace, config: Config) -> int:
    from kappa import lake_maintenance as maintenance

    for name in maintenance.delete_orphans(config, maintenance.tables(args.tables), args.suffix,
                                           args.min_age_hours, _progress):
        print(f"{name}\torphan files older than the minimum age deleted")
    return 0


def _status(args: argparse.Namespace, config: Config) -> int:
    from kappa import lake_maintenance as maintenance

    for spec in maintenance.tables(args.tables):
        table = maintenance.load(config, spec, args.suffix)
        current = table.current_snapshot()
        print(f"# {spec.name}{args.suffix}: {len(table.snapshots())} snapshots, current "
              f"{current.snapshot_id if current else '-'}")
        print("partition\tdata_files\tdelete_files\trows\tMB")
        for p in maintenance.partition_files(config, spec, args.suffix):
            print(f"{p.partition}\t{p.data_files}\t{p.delete_files}\t{p.records}\t{p.bytes / 2**20:.2f}")
    return 0
