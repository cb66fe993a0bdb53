"""The archive as Apache Iceberg tables: Flink writes them (sql/archive), DuckDB and pyiceberg read them.

The catalog is Iceberg's JDBC catalog in the project's PostgreSQL (tables `iceberg_tables` and
`iceberg_namespace_properties`, shared by Java's JdbcCatalog and pyiceberg's SqlCatalog); data and
metadata files are on the stack's S3 under `s3://<bucket>/<lake.warehouse_prefix>`.

The tables are created here, with pyiceberg, before a job plans its INSERTs: Flink's DDL has no hidden
partition transforms (`PARTITIONED BY (days(ts))` is rejected), and the design wants them: partitioned
by day(event time) and device type, sorted by device then time, zstd Parquet, a target file size.
Creation is idempotent, so every run of a job (live, replay `<name><suffix>`, test) ensures its own.
Flink's sink writes files in arrival order; the sort order is what compaction and readers use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kappa.config import Config
from kappa.outputs import check_suffix
from kappa.s3_security import READER, WRITER

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table import Table as IcebergTable


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # string | long | int | double | timestamp
    required: bool = False


@dataclass(frozen=True)
class LakeTable:
    """One Iceberg table a job writes (`<name><suffix>` in the lake namespace)."""

    name: str
    columns: tuple[Column, ...]
    time_column: str  # partitioned by day(time_column)
    sort: tuple[str, ...]
    key: tuple[str, ...] = ()  # identifier fields: the sink upserts by them (windows updated by late data)
    partition_by_type: bool = True  # and by device_type (identity)

    def identifier(self, config: Config, suffix: str = "") -> str:
        return f"{config.lake.namespace}.{self.name}{check_suffix(suffix)}"


def _columns(spec: str, required: tuple[str, ...] = ()) -> tuple[Column, ...]:
    """`"name kind, name kind"` -> columns (readable next to the SQL INSERT that fills them)."""
    pairs = [item.split() for item in spec.replace("\n", " ").split(",") if item.strip()]
    return tuple(Column(name, kind, name in required) for name, kind in pairs)


_STATS = ("temp", "humidity", "vibration", "battery")
TELEMETRY = LakeTable(
    "telemetry",
    _columns("""device_id string, site_id string, device_type string, seq long, event_time timestamp,
      status string, firmware_version string, temperature_c double, humidity_pct double, pressure_hpa double,
      vibration_mm_s double, power_w double, battery_pct double, signal_rssi_dbm int, schema_id int,
      kafka_partition int, kafka_offset long, uptime_s long""", required=("kafka_partition", "kafka_offset")),
    time_column="event_time", sort=("device_id", "event_time"))
DEVICE_AGG_1M = LakeTable(
    "device_agg_1m",
    _columns("device_id string, site_id string, device_type string, window_start timestamp, window_end timestamp,"
             " reading_count long, "
             + ", ".join(f"{m}_{s} double" for m in _STATS for s in ("min", "max", "avg", "first", "last", "stddev"))
             + ", first_event_time timestamp, last_event_time timestamp, device_model string",
             required=("device_id", "device_type", "window_start")),
    time_column="window_start", sort=("device_id", "window_start"), key=("device_id", "device_type", "window_start"))
DEAD_LETTERS = LakeTable(
    "dead_letters",
    _columns("topic string, kafka_partition int, kafka_offset long, reason string, error string,"
             " kafka_timestamp timestamp", required=("kafka_partition", "kafka_offset")),
    time_column="kafka_timestamp", sort=("kafka_partition", "kafka_offset"), partition_by_type=False)


def warehouse(config: Config) -> str:
    return f"s3://{config.s3.bucket}/{config.lake.warehouse_prefix}"


def catalog(config: Config, s3_role: str = READER) -> SqlCatalog:
    """pyiceberg's view of the same JDBC catalog the jobs write through, its files read (and written, for
    `s3_role=WRITER`: table creation, schema evolution, drops) with that S3 role's keys."""
    from pyiceberg.catalog.sql import SqlCatalog

    from kappa import pg_security, s3_security

    s3 = config.s3
    access_key, secret_key = s3_security.keys(config, s3_role)
    uri = pg_security.sqlalchemy_url(config, "lake")  # the catalog's own role and schema, TLS verified
    return SqlCatalog(config.lake.catalog, uri=uri, warehouse=warehouse(config), **{
        "s3.endpoint": s3.endpoint, "s3.path-style-access": "true", "s3.region": s3.region,
        "s3.access-key-id": access_key, "s3.secret-access-key": secret_key})


def _type(kind: str) -> Any:
    from pyiceberg import types

    return {"string": types.StringType, "long": types.LongType, "int": types.IntegerType,
            "double": types.DoubleType, "timestamp": types.TimestampType}[kind]()


def _schema(table: LakeTable) -> Any:
    from pyiceberg.schema import Schema
    from pyiceberg.types import NestedField

    fields = [NestedField(i, c.name, _type(c.kind), required=c.required) for i, c in enumerate(table.columns, 1)]
    ids = {c.name: i for i, c in enumerate(table.columns, 1)}
    return Schema(*fields, identifier_field_ids=[ids[name] for name in table.key])


def _layout(table: LakeTable, schema: Any) -> tuple[Any, Any]:
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.table.sorting import SortField, SortOrder
    from pyiceberg.transforms import DayTransform, IdentityTransform

    def field(name: str) -> int:
        return int(schema.find_field(name).field_id)

    parts = [PartitionField(field(table.time_column), 1000, DayTransform(), f"{table.time_column}_day")]
    if table.partition_by_type:
        parts.append(PartitionField(field("device_type"), 1001, IdentityTransform(), "device_type"))
    order = SortOrder(*(SortField(source_id=field(name), transform=IdentityTransform()) for name in table.sort))
    return PartitionSpec(*parts), order


def table_properties(config: Config, table: LakeTable) -> dict[str, str]:
    properties = {
        "format-version": "2",
        "write.format.default": "parquet",
        "write.parquet.compression-codec": "zstd",
        "write.target-file-size-bytes": str(config.lake.target_file_size_mb * 1024 * 1024),
        # one writer per partition value instead of every subtask writing every partition
        "write.distribution-mode": "hash",
    }
    if table.key:
        properties["write.upsert.enabled"] = "true"  # a window updated within allowed lateness replaces its row
    return properties


def ensure_tables(config: Config, tables: tuple[LakeTable, ...], suffix: str = "") -> list[IcebergTable]:
    """Create the namespace and `<table><suffix>` of each table unless they exist, and add the columns
    declared since an existing table was made (idempotent)."""
    lake = catalog(config, WRITER)
    lake.create_namespace_if_not_exists(config.lake.namespace)
    created = []
    for table in tables:
        schema = _schema(table)
        spec, order = _layout(table, schema)
        existing = lake.create_table_if_not_exists(
            table.identifier(config, suffix), schema=schema, partition_spec=spec, sort_order=order,
            properties=table_properties(config, table))
        created.append(add_missing_columns(existing, table))
    return created


def add_missing_columns(existing: IcebergTable, table: LakeTable) -> IcebergTable:
    """Iceberg schema evolution: a column declared after the table was created (e.g. device_agg_1m's
    device_model) is added at the end, optional, with a new field id. Files written before read it as
    null (readers match columns by field id), so old data stays readable; the job's INSERT lists the
    columns in declaration order, which is the evolved table's order too (new columns are appended)."""
    have = {field.name for field in existing.schema().fields}
    missing = [column for column in table.columns if column.name not in have]
    if not missing:
        return existing
    if any(column.required for column in missing):
        raise ValueError(f"{table.name}: a required column cannot be added to an existing table: {missing}")
    with existing.update_schema() as update:
        for column in missing:
            update.add_column(column.name, _type(column.kind))
    return existing


def drop_tables(config: Config, tables: tuple[LakeTable, ...], suffix: str) -> list[str]:
    """Drop the versioned tables that exist (never the live ones); returns the names dropped."""
    from pyiceberg.exceptions import NoSuchTableError

    if not check_suffix(suffix):
        raise ValueError("refusing to drop the live lake tables")
    lake, gone = catalog(config, WRITER), []
    for table in tables:
        try:
            lake.purge_table(table.identifier(config, suffix))
        except NoSuchTableError:
            continue
        gone.append(table.identifier(config, suffix))
    return gone


def empty_live_tables(config: Config, tables: tuple[LakeTable, ...]) -> None:
    """Purge and recreate the live tables: the demo starts from empty outputs (it empties the PostgreSQL
    tables too), so that what it shows of the archive is this run's. Nothing else empties live tables."""
    from pyiceberg.exceptions import NoSuchTableError

    lake = catalog(config, WRITER)
    for table in tables:
        try:
            lake.purge_table(table.identifier(config))
        except NoSuchTableError:
            continue
    ensure_tables(config, tables)

