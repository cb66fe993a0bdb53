"""Reading the Iceberg archive: DuckDB over the tables' current metadata (or an older snapshot), for
`kappa query`.

DuckDB's iceberg extension reads a table from its metadata file; the catalog (pyiceberg's SqlCatalog on
the same JDBC tables) says which file is current. The extensions ship in PyPI wheels and are loaded
from their files: DuckDB's own INSTALL would download them (and the iceberg extension needs avro).
pyiceberg itself reads the telemetry and dead-letter tables, not the windows table: the sink upserts
windows with equality deletes, which pyiceberg 0.12 does not read (DuckDB does).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kappa import lake, s3_security
from kappa.config import Config
from kappa.errors import KappaError


class LakeQueryError(KappaError):
    """The archive cannot be read as asked (no such table or snapshot)."""


def _load_extension(conn: Any, module: Any, name: str) -> None:
    import duckdb

    folder = Path(module.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    conn.execute(f"LOAD '{folder / f'{name}.duckdb_extension'}'")


def snapshot_id(table: Any, as_of: str | None) -> int | None:
    """The snapshot of `table` that `--as-of` names: a snapshot id, or a time (ISO 8601, naive = UTC)
    for the snapshot current then. None: the current one."""
    if not as_of:
        return None
    if as_of.isdigit():
        if table.snapshot_by_id(int(as_of)) is None:
            raise LakeQueryError(f"{table.name()} has no snapshot {as_of}")
        return int(as_of)
    moment = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    millis = int(moment.timestamp() * 1000)
    before = [s for s in table.snapshots() if s.timestamp_ms <= millis]
    if not before:
        raise LakeQueryError(f"{table.name()} has no snapshot at or before {as_of}")
    return int(max(before, key=lambda s: s.timestamp_ms).snapshot_id)


ALL_TABLES = (lake.TELEMETRY, lake.DEVICE_AGG_1M, lake.DEAD_LETTERS)


def duckdb_session(config: Config) -> Any:
    """DuckDB with the httpfs, avro and iceberg extensions loaded and the stack's S3 as its secret."""
    import duckdb
    import duckdb_extension_avro
    import duckdb_extension_httpfs
    import duckdb_extension_iceberg

    conn = duckdb.connect()
    for module, name in ((duckdb_extension_httpfs, "httpfs"), (duckdb_extension_avro, "avro"),
                         (duckdb_extension_iceberg, "iceberg")):
        _load_extension(conn, module, name)
    s3 = config.s3
    conn.execute("CREATE SECRET kappa_s3 (TYPE s3, KEY_ID ?, SECRET ?, ENDPOINT ?, REGION ?, URL_STYLE 'path', "
                 "USE_SSL false)", [*s3_security.keys(config, s3_security.READER),  # queries only read
                                    f"{s3.host}:{s3.port}", s3.region])
    return conn


def duckdb_connection(config: Config, suffix: str = "", as_of: str | None = None,
                      tables: tuple[lake.LakeTable, ...] = ALL_TABLES, branch: str | None = None) -> Any:
    """DuckDB with one view per archive table (`telemetry`, `device_agg_1m`, `dead_letters`), as of now
    or as of `as_of` (a snapshot id applies to every table it belongs to; a time to all of them), or at
    the head of `branch` (a replay's `replay_<version>`; tables without it are left out)."""
    if as_of and branch:
        raise LakeQueryError("give a branch or a time/snapshot (--as-of), not both")
    conn = duckdb_session(config)
    catalog = lake.catalog(config, s3_security.READER)
    found = False
    for spec in tables:
        try:
            table = catalog.load_table(spec.identifier(config, suffix))
        except Exception:  # noqa: BLE001 - pyiceberg's NoSuchTableError: the job has not run yet
            continue
        found = True
        scan = f"iceberg_scan('{table.metadata_location}'"
        snapshot = None
        if branch:  # a branch the sink made on a table whose main is still empty has commits of its own
            ref = table.metadata.refs.get(branch)
            if ref is None:
                continue
            snapshot = int(ref.snapshot_id)
        elif table.current_snapshot() is None:  # created, nothing committed yet: an empty view
            conn.execute(f"CREATE VIEW {spec.name} AS SELECT * FROM {scan}) LIMIT 0")
            continue
        if as_of:
            try:
                snapshot = snapshot_id(table, as_of)
            except LakeQueryError:
                if as_of.isdigit():
                    continue  # a snapshot id names one table's snapshot: the others are left out
                # a time before the table's first commit: it was empty then
                conn.execute(f"CREATE VIEW {spec.name} AS SELECT * FROM {scan}) LIMIT 0")
                continue
        option = f", snapshot_from_id = {snapshot}" if snapshot is not None else ""
        conn.execute(f"CREATE VIEW {spec.name} AS SELECT * FROM {scan}{option})")
    if not found:
        raise LakeQueryError(f"no archive tables in {config.lake.catalog}.{config.lake.namespace}"
                             f" (suffix {suffix!r}): run the aggregation job first")
    return conn


def snapshots(config: Config, suffix: str = "") -> list[tuple[str, int, str, str]]:
    """(table, snapshot id, committed at, operation) of every archive table, oldest first."""
    catalog, rows = lake.catalog(config), []
    for spec in ALL_TABLES:
        try:
            table = catalog.load_table(spec.identifier(config, suffix))
        except Exception:  # noqa: BLE001 - not created yet
            continue
        for snap in table.snapshots():
            when = datetime.fromtimestamp(snap.timestamp_ms / 1000, UTC).isoformat(timespec="milliseconds")
            rows.append((spec.name, int(snap.snapshot_id), when, str(snap.summary.operation if snap.summary else "")))
    return sorted(rows, key=lambda r: r[2])

