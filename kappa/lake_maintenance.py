"""Upkeep of the Iceberg archive through Iceberg's own actions: compaction, snapshot expiry, orphan files.

The streaming sink commits a few small files per partition at every checkpoint; compaction rewrites
them with Iceberg's Flink rewrite action (`org.apache.iceberg.flink.actions.Actions`), which runs as a
Flink job in this process's MiniCluster and commits one `replace` snapshot. Expiry is Iceberg's core
`Table.expireSnapshots()`, which also deletes the files only the expired snapshots referenced. Orphan
files go with the Flink maintenance API's `DeleteOrphanFiles`, run once (see `JavaLake.delete_orphans`).

All three reach the JVM through PyFlink's gateway, with the catalog declared by `sql/archive/catalog.sql`
(the jobs' own JDBC catalog with S3FileIO): no second copy of its properties. Crash safety is Iceberg's
commit protocol: a rewrite writes new files first and then swaps them in with one atomic catalog commit
(validated against concurrent commits of the live job); killed before that commit, the table is as it
was and the new files are orphans, not data. Nothing here writes metadata of its own.

The windows table is upserted (equality deletes). The rewrite reads rows with their deletes applied and
gives the new files the sequence number of the snapshot it started from
(`useStartingSequenceNumber`), so deletes committed meanwhile by the live job still apply to them. The
equality-delete files themselves stay referenced (no Flink action removes dangling deletes in 1.10).

Why not Iceberg's newer Flink maintenance API for all three? It is built as a continuous streaming job
(a table monitor, triggers, a lock), the shape of post-commit maintenance next to the live job; a command
that compacts now and returns is the rewrite action's shape. Only orphan cleanup has no such one-shot
action outside Spark, so that one runs the maintenance API on a bounded stream.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from kappa import lake
from kappa.config import Config
from kappa.errors import KappaError

if TYPE_CHECKING:
    from pyiceberg.table import Table as IcebergTable

Progress = Callable[[str], None]
_CONTENT = {0: "data", 1: "position deletes", 2: "equality deletes"}


class LakeMaintenanceError(KappaError):
    """A maintenance action could not run or commit (the table is as it was)."""


@dataclass(frozen=True)
class PartitionFiles:
    """The live files of one partition of a table's current snapshot."""

    partition: str
    data_files: int
    delete_files: int
    records: int  # rows in data files (deleted rows included: deletes are applied on read)
    bytes: int


@dataclass(frozen=True)
class CompactResult:
    table: str
    files_before: int
    files_after: int
    rewritten: int  # data files replaced
    added: int  # data files written
    seconds: float


@dataclass(frozen=True)
class ExpireResult:
    table: str
    snapshots_before: int
    snapshots_after: int
    seconds: float


def partition_label(partition: dict[str, Any]) -> str:
    """`window_start_day=2026-12-02/device_type=sensor` (a day transform's value is days since the epoch)."""
    parts = []
    for name, value in partition.items():
        if name.endswith("_day") and isinstance(value, int):
            value = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=value)).date().isoformat()
        parts.append(f"{name}={value}")
    return "/".join(parts) or "(unpartitioned)"


def summarize(files: Iterable[dict[str, Any]]) -> list[PartitionFiles]:
    """Rows of pyiceberg's `inspect.files()` (content, partition, record_count, file_size_in_bytes) per
    partition, sorted by partition."""
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in files:
        entry = acc[partition_label(row["partition"] or {})]
        if row["content"] == 0:
            entry[0] += 1
            entry[2] += int(row["record_count"])
        else:
            entry[1] += 1
        entry[3] += int(row["file_size_in_bytes"])
    return [PartitionFiles(key, *values) for key, values in sorted(acc.items())]


def expiry_cutoff(now: datetime, max_age_hours: float) -> int:
    """Epoch millis before which snapshots may expire (the newest `retain_last` are kept regardless)."""
    return int((now - timedelta(hours=max_age_hours)).timestamp() * 1000)


def tables(names: Iterable[str] | None = None) -> tuple[lake.LakeTable, ...]:
    """The archive tables named (all of them by default)."""
    from kappa.lake_query import ALL_TABLES

    known = {t.name: t for t in ALL_TABLES}
    wanted = list(names or known)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise LakeMaintenanceError(f"no archive table {', '.join(unknown)} (known: {', '.join(known)})")
    return tuple(known[n] for n in wanted)


def load(config: Config, spec: lake.LakeTable, suffix: str = "") -> IcebergTable:
    from pyiceberg.exceptions import NoSuchTableError

    try:
        return lake.catalog(config).load_table(spec.identifier(config, suffix))
    except NoSuchTableError as exc:
        raise LakeMaintenanceError(f"{spec.identifier(config, suffix)} does not exist: run the aggregation "
                                   "job first") from exc


def partition_files(config: Config, spec: lake.LakeTable, suffix: str = "") -> list[PartitionFiles]:
    """The current snapshot's live files per partition (pyiceberg reads the manifests)."""
    table = load(config, spec, suffix)
    if table.current_snapshot() is None:
        return []
    return summarize(table.inspect.files().select(
        ["content", "partition", "record_count", "file_size_in_bytes"]).to_pylist())


class JavaLake:
    """The archive's tables as Java `org.apache.iceberg.Table`s in PyFlink's JVM, loaded through the
    Flink catalog of sql/archive/catalog.sql; and a stream environment for the rewrite action's job."""

    def __init__(self, config: Config, parallelism: int | None = None) -> None:
        from kappa.flinkenv import JobContext, JobOptions

        self.config = config
        self.ctx = JobContext(config, JobOptions(bounded=True, parallelism=parallelism), job_name="lake-maintenance")
        self.ctx.execute_file("archive/catalog.sql")
        flink_catalog = self.ctx.t_env._j_tenv.getCatalog(config.lake.catalog).get()
        self.catalog = flink_catalog.catalog()  # org.apache.iceberg.catalog.Catalog (JdbcCatalog)

    def table(self, spec: lake.LakeTable, suffix: str = "") -> Any:
        from pyflink.java_gateway import get_gateway

        jvm = get_gateway().jvm
        identifier = jvm.org.apache.iceberg.catalog.TableIdentifier.parse(spec.identifier(self.config, suffix))
        return self.catalog.loadTable(identifier)

    def rewrite(self, table: Any, target_bytes: int) -> tuple[int, int]:
        """Iceberg's Flink rewrite action on one table: (data files replaced, data files written)."""
        from pyflink.java_gateway import get_gateway

        actions = get_gateway().jvm.org.apache.iceberg.flink.actions.Actions
        j_env = self.ctx.env._j_stream_execution_environment
        action = (actions.forTable(j_env, table).rewriteDataFiles()
                  .targetSizeInBytes(target_bytes).useStartingSequenceNumber(True))
        result = action.maxParallelism(self.ctx.env.get_parallelism()).execute()
        return int(result.deletedDataFiles().size()), int(result.addedDataFiles().size())

    def delete_orphans(self, spec: lake.LakeTable, suffix: str, min_age_ms: int) -> None:
        """Iceberg's Flink DeleteOrphanFiles, run once: the maintenance API fed a bounded change stream of
        one commit, so its trigger fires once and the job ends. Locked with its JDBC lock in PostgreSQL."""
        from pyflink.java_gateway import get_gateway

        jvm = get_gateway().jvm
        api = jvm.org.apache.iceberg.flink.maintenance.api
        manager = self.ctx.t_env._j_tenv.getCatalogManager()
        props = manager.getCatalogDescriptor(self.config.lake.catalog).get().getConfiguration().toMap()
        props.remove("type")
        loader = jvm.org.apache.iceberg.flink.CatalogLoader.custom(
            self.config.lake.catalog, props, jvm.org.apache.hadoop.conf.Configuration(), props.get("catalog-impl"))
        name = spec.identifier(self.config, suffix)
        tables = jvm.org.apache.iceberg.flink.TableLoader.fromCatalog(
            loader, jvm.org.apache.iceberg.catalog.TableIdentifier.parse(name))
        lock_props = jvm.java.util.HashMap()
        for key in ("jdbc.user", "jdbc.password"):
            lock_props.put(key, props.get(key))
        lock_props.put("flink-maintenance.lock.jdbc.init-lock-tables", "true")
        lock = api.JdbcLockFactory(props.get("uri"), name, lock_props)
        env = self.ctx.env._j_stream_execution_environment
        one_commit = jvm.java.util.ArrayList()
        one_commit.add(jvm.org.apache.iceberg.flink.maintenance.operator.TableChange.builder().commitCount(1).build())
        task = (api.DeleteOrphanFiles.builder().minAge(jvm.java.time.Duration.ofMillis(min_age_ms))
                .usePrefixListing(True).scheduleOnCommitCount(1))
        api.TableMaintenance.forChangeStream(env.fromData(one_commit), tables, lock).add(task).append()
        env.execute(f"delete orphan files of {name}")

    @staticmethod
    def expire(table: Any, older_than_ms: int, retain_last: int) -> None:
        """Iceberg's core ExpireSnapshots: drops the snapshots and deletes files no kept one references."""
        table.expireSnapshots().expireOlderThan(older_than_ms).retainLast(retain_last).cleanExpiredFiles(True).commit()


def _java_error(exc: Exception, what: str) -> LakeMaintenanceError:
    message = str(getattr(exc, "java_exception", None) or exc).strip().splitlines()
    return LakeMaintenanceError(f"{what} failed, nothing was committed: {message[0] if message else exc}")


def compact(config: Config, specs: tuple[lake.LakeTable, ...], suffix: str = "", target_mb: int | None = None,
            progress: Progress = print) -> list[CompactResult]:
    """Rewrite the small data files of each table into files of up to `target_mb` (default
    `lake.target_file_size_mb`), one table after the other, one commit each."""
    target = (target_mb or config.lake.target_file_size_mb) * 1024 * 1024
    for spec in specs:
        load(config, spec, suffix)  # a missing table is the user's error, before the JVM starts
    progress("starting Flink (MiniCluster) for Iceberg's rewrite action")
    java, results = JavaLake(config), []
    for spec in specs:
        before = partition_files(config, spec, suffix)
        files = sum(p.data_files for p in before)
        progress(f"{spec.name}{suffix}: {files} data files in {len(before)} partitions; rewriting "
                 f"(target {target // 2**20} MB)")
        started = time.monotonic()
        try:
            rewritten, added = java.rewrite(java.table(spec, suffix), target)
        except Exception as exc:  # py4j's Py4JJavaError: the action commits nothing when it fails
            raise _java_error(exc, f"compaction of {spec.name}{suffix}") from exc
        after = sum(p.data_files for p in partition_files(config, spec, suffix))
        result = CompactResult(spec.name + suffix, files, after, rewritten, added, time.monotonic() - started)
        progress(f"{result.table}: {rewritten} files rewritten into {added}; {files} -> {after} data files "
                 f"({result.seconds:.1f} s)")
        results.append(result)
    return results


def expire(config: Config, specs: tuple[lake.LakeTable, ...], suffix: str = "", retain_last: int | None = None,
           max_age_hours: float | None = None, progress: Progress = print,
           now: datetime | None = None) -> list[ExpireResult]:
    """Expire snapshots older than `max_age_hours` beyond the newest `retain_last` (defaults from [lake]),
    deleting the data and metadata files only they referenced. Snapshots of branches and tags are kept."""
    keep = retain_last if retain_last is not None else config.lake.snapshot_retain_last
    age = max_age_hours if max_age_hours is not None else config.lake.snapshot_max_age_hours
    if keep < 1:
        raise LakeMaintenanceError("retain at least one snapshot (--retain-last >= 1)")
    cutoff = expiry_cutoff(now or datetime.now(UTC), age)
    for spec in specs:
        load(config, spec, suffix)
    progress("starting the JVM (PyFlink gateway) for Iceberg's ExpireSnapshots")
    java, results = JavaLake(config), []
    for spec in specs:
        table = java.table(spec, suffix)
        before = len(list(load(config, spec, suffix).snapshots()))
        started = time.monotonic()
        try:
            java.expire(table, cutoff, keep)
        except Exception as exc:  # Py4JJavaError
            raise _java_error(exc, f"snapshot expiry of {spec.name}{suffix}") from exc
        after = len(list(load(config, spec, suffix).snapshots()))
        result = ExpireResult(spec.name + suffix, before, after, time.monotonic() - started)
        progress(f"{result.table}: {before} -> {after} snapshots ({result.seconds:.1f} s)")
        results.append(result)
    return results


def delete_orphans(config: Config, specs: tuple[lake.LakeTable, ...], suffix: str = "",
                   min_age_hours: float | None = None, progress: Progress = print) -> list[str]:
    """Delete files under each table's location that no snapshot references and that are older than
    `min_age_hours` (default `lake.orphan_min_age_hours`: younger files may be a running job's
    not-yet-committed checkpoint). Tables without a snapshot are skipped: measured here, the action
    deleted such a table's current metadata file. Returns the tables cleaned."""
    age = min_age_hours if min_age_hours is not None else config.lake.orphan_min_age_hours
    for spec in specs:
        load(config, spec, suffix)
    progress("starting Flink (MiniCluster) for Iceberg's DeleteOrphanFiles")
    java, cleaned = JavaLake(config, parallelism=1), []
    for spec in specs:
        if load(config, spec, suffix).current_snapshot() is None:
            progress(f"{spec.name}{suffix}: no snapshot yet, skipped")
            continue
        started = time.monotonic()
        progress(f"{spec.name}{suffix}: deleting files older than {age} h that no snapshot references")
        try:
            java.delete_orphans(spec, suffix, int(age * 3600 * 1000))
        except Exception as exc:  # Py4JJavaError
            raise _java_error(exc, f"orphan-file cleanup of {spec.name}{suffix}") from exc
        progress(f"{spec.name}{suffix}: done ({time.monotonic() - started:.1f} s)")
        cleaned.append(spec.name + suffix)
    return cleaned
