"""The Iceberg archive's table design and wiring, without services."""

from pathlib import Path

import pytest

from jobs import aggregate
from kappa import jars, lake, sqlfiles
from kappa.config import load_config

pytestmark = pytest.mark.unit


def test_tables_are_partitioned_by_day_and_type_sorted_and_zstd() -> None:
    config = load_config(profile="local", environ={})
    for table in aggregate.OUTPUTS.lake:
        schema = lake._schema(table)
        spec, order = lake._layout(table, schema)
        transforms = {schema.find_field(f.source_id).name: str(f.transform) for f in spec.fields}
        assert transforms[table.time_column] == "day"
        assert ("device_type" in transforms) == table.partition_by_type
        assert [schema.find_field(f.source_id).name for f in order.fields] == list(table.sort)
        properties = lake.table_properties(config, table)
        assert properties["write.parquet.compression-codec"] == "zstd"
        assert int(properties["write.target-file-size-bytes"]) == config.lake.target_file_size_mb * 1024 * 1024
        # upserted tables: identifier fields include every partition source column (Iceberg requires it)
        if table.key:
            assert properties["write.upsert.enabled"] == "true"
            assert set(transforms) <= set(table.key)
            assert {schema.find_field(i).name for i in schema.identifier_field_ids} == set(table.key)


def test_archive_sql_uses_only_config_placeholders_and_masks_the_s3_keys() -> None:
    config = load_config(profile="local", environ={"KAPPA_S3__PORT": "4242"})
    params = sqlfiles.params_from_config(config, include_secrets=False).with_values(job_name="aggregate")
    (catalog,) = sqlfiles.load("archive/catalog.sql", params)
    assert "'s3.endpoint' = 'http://127.0.0.1:4242'" in catalog and sqlfiles.MASK in catalog
    assert f"'warehouse' = 's3://{config.s3.bucket}/{config.lake.warehouse_prefix}'" in catalog
    # (kappa.flinkenv.sql_params gives the Iceberg tables the output suffix, unless a replay writes a branch)
    inserts = sqlfiles.load("archive/inserts.sql", params.with_values(output_suffix="_v2", lake_suffix="_v2"))
    assert [s.split("\n")[0] for s in inserts] == [
        f"INSERT INTO `{config.lake.catalog}`.`{config.lake.namespace}`.`{t.name}_v2`" for t in aggregate.OUTPUTS.lake]


def test_windows_table_made_before_device_model_gets_it_and_old_files_stay_readable(tmp_path: Path) -> None:
    """Schema evolution of an existing windows table (ensure_tables -> add_missing_columns), on a real
    Iceberg catalog (SQLite) and warehouse (local files): the column is appended, optional, the columns'
    order is then the declared one (the job's INSERT is positional), and a file written before reads it
    as null, through pyiceberg and through DuckDB's iceberg extension (what `kappa query` uses)."""
    import dataclasses
    from datetime import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyiceberg.catalog.sql import SqlCatalog

    from kappa import lake_query

    new = lake.DEVICE_AGG_1M
    old = dataclasses.replace(new, columns=tuple(c for c in new.columns if c.name != "device_model"))
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path / 'catalog.db'}", warehouse=f"file://{tmp_path}")
    catalog.create_namespace("lake")
    schema = lake._schema(old)  # unpartitioned: pyiceberg writes day() partitions only with pyiceberg-core
    table = catalog.create_table("lake.device_agg_1m", schema=schema)

    def add_file(data: pa.Table, name: str) -> None:
        """A Parquet file registered in the table (pyiceberg 0.12's own writer does not run against this
        pyarrow): no field ids in it, so readers map its columns by the table's name mapping."""
        path = tmp_path / f"{name}.parquet"
        pq.write_table(data, path)
        table.add_files([f"file://{path}"])

    def rows(model: str | None, minute: int, columns: tuple[lake.Column, ...]) -> pa.Table:
        values = {"device_id": "d1", "site_id": "s1", "device_type": "thermal", "reading_count": 3,
                  "window_start": datetime(2026, 1, 1, 0, minute), "window_end": datetime(2026, 1, 1, 0, minute + 1),
                  "device_model": model}
        arrow = table.schema().as_arrow()
        return pa.Table.from_pylist([{c.name: values.get(c.name) for c in columns}],
                                    schema=pa.schema([arrow.field(c.name) for c in columns]))

    add_file(rows(None, 0, old.columns), "before")
    assert lake.add_missing_columns(table, new) is table
    field = table.schema().find_field("device_model")
    assert not field.required and field.field_id > max(f.field_id for f in schema.fields)
    assert [f.name for f in table.schema().fields] == [c.name for c in new.columns]
    assert lake.add_missing_columns(table, new).schema() == table.schema()  # idempotent
    add_file(rows("M-1", 1, new.columns), "after")
    scanned = table.scan().to_arrow().sort_by("window_start").to_pylist()
    assert [(r["window_start"].minute, r["device_model"]) for r in scanned] == [(0, None), (1, "M-1")]

    import duckdb
    import duckdb_extension_avro
    import duckdb_extension_iceberg

    duck = duckdb.connect()
    lake_query._load_extension(duck, duckdb_extension_avro, "avro")
    lake_query._load_extension(duck, duckdb_extension_iceberg, "iceberg")
    read = duck.execute(f"SELECT minute(window_start), device_model FROM iceberg_scan('{table.metadata_location}') "
                        "ORDER BY 1").fetchall()
    assert read == [(0, None), (1, "M-1")]


def test_a_required_column_is_never_added_to_an_existing_table() -> None:
    class Existing:
        def schema(self) -> object:
            return lake._schema(lake.DEAD_LETTERS)

    declared = lake.LakeTable("dead_letters", (*lake.DEAD_LETTERS.columns, lake.Column("x", "int", required=True)),
                              time_column="kafka_timestamp", sort=())
    with pytest.raises(ValueError, match="required column"):
        lake.add_missing_columns(Existing(), declared)  # type: ignore[arg-type]


def test_artifact_ids_ending_in_a_version_are_found(tmp_path: Path) -> None:
    (tmp_path / "iceberg-flink-runtime-2.0-1.10.0.jar").write_bytes(b"")
    (tmp_path / "flink-connector-jdbc-core-4.0.0-2.0.jar").write_bytes(b"")
    found = jars._find(tmp_path, "iceberg-flink-runtime-2.0")
    assert found is not None and found.version == "1.10.0"
    assert jars._find(tmp_path, "flink-connector-jdbc") is None  # another artifact's jar
