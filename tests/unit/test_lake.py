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
    inserts = sqlfiles.load("archive/inserts.sql", params.with_values(output_suffix="_v2"))
    assert [s.split("\n")[0] for s in inserts] == [
        f"INSERT INTO `{config.lake.catalog}`.`{config.lake.namespace}`.`{t.name}_v2`" for t in aggregate.OUTPUTS.lake]


def test_artifact_ids_ending_in_a_version_are_found(tmp_path: Path) -> None:
    (tmp_path / "iceberg-flink-runtime-2.0-1.10.0.jar").write_bytes(b"")
    (tmp_path / "flink-connector-jdbc-core-4.0.0-2.0.jar").write_bytes(b"")
    found = jars._find(tmp_path, "iceberg-flink-runtime-2.0")
    assert found is not None and found.version == "1.10.0"
    assert jars._find(tmp_path, "flink-connector-jdbc") is None  # another artifact's jar
