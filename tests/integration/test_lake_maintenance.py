"""Maintenance of the Iceberg archive on the real stack (PostgreSQL catalog, SeaweedFS, Flink MiniCluster):
compaction leaves one data file per partition with every record exactly once, on the appended
telemetry table and on the upserted windows table (equality deletes); snapshot expiry removes old
snapshots and their metadata, and time travel to a kept snapshot still reads the same rows; orphan-file
cleanup deletes an unreferenced file and nothing a snapshot reads.

The telemetry table gets several small commits as pyiceberg appends (one file per partition each, as a
checkpoint's commit of the streaming sink). The windows table is written by Flink's Iceberg sink in
upsert mode, twice over the same keys, so that it holds equality deletes as the live job's table does.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kappa import cli, lake, lake_maintenance, lake_query, sqlfiles
from kappa.config import Config
from kappa.flinkenv import JobOptions, flink_settings, sql_params

pytestmark = pytest.mark.integration

DAY = datetime(2026, 12, 1)
TYPES = ("sensor", "meter")


ROUNDS = 3  # commits per table
READINGS = 80  # per round


def _value(v: Any) -> str:
    return "NULL" if v is None else f"TIMESTAMP '{v}'" if isinstance(v, datetime) else repr(v)


def _telemetry_values(round_: int) -> list[str]:
    """Readings over two days and two device types (four partitions), each at its own Kafka offset."""
    rows = []
    for o in range(round_ * READINGS, (round_ + 1) * READINGS):
        row = (f"dev-{o % 7}", "site-1", TYPES[o % 2], o, DAY + timedelta(days=(o // 2) % 2, seconds=o), "ok",
               "1.0", 20.0 + o / 10, 40.0, 1000.0, 1.5, 5.0, 90.0, -60, 2, o % 3, o)
        rows.append("(" + ", ".join(_value(v) for v in row[:3]) + f", CAST({o} AS BIGINT), "
                    + ", ".join(_value(v) for v in row[4:16]) + f", CAST({o} AS BIGINT))")
    return rows


def _window_values(round_: int) -> list[str]:
    """The same 24 windows (four partitions) every round, with the round in their reading count."""
    rows = []
    for i in range(24):
        start = DAY + timedelta(days=i % 2, minutes=i)
        stats = ", ".join([f"{round_ + i}.0"] * 24)
        rows.append(f"('dev-{i % 5}', 'site-1', '{TYPES[(i // 2) % 2]}', TIMESTAMP '{start}', "
                    f"TIMESTAMP '{start + timedelta(minutes=1)}', CAST({round_} AS BIGINT), {stats}, "
                    f"TIMESTAMP '{start}', TIMESTAMP '{start + timedelta(seconds=30)}', 'M-{i % 3}')")
    return rows


def _write_rounds(config: Config, suffix: str) -> None:
    """Flink's Iceberg sink writes both tables in ROUNDS batch jobs, one commit per table each: small
    files, as the streaming sink's checkpoint commits leave them. The windows table is upserted on its
    identifier fields, so each round replaces the last one's rows (equality deletes)."""
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    settings = Configuration()
    for key, value in {**flink_settings(config, JobOptions(parallelism=1)), "execution.runtime-mode": "BATCH"}.items():
        settings.set_string(key, value)
    t_env = TableEnvironment.create(EnvironmentSettings.new_instance().in_batch_mode()
                                    .with_configuration(settings).build())
    for statement in sqlfiles.load("archive/catalog.sql", sql_params(config, JobOptions()), sql_dir=config.sql_dir):
        t_env.execute_sql(statement)
    prefix = f"`{config.lake.catalog}`.`{config.lake.namespace}`"
    for round_ in range(1, ROUNDS + 1):
        inserts = t_env.create_statement_set()
        for table, values in (("telemetry", _telemetry_values(round_)), ("device_agg_1m", _window_values(round_))):
            inserts.add_insert_sql(f"INSERT INTO {prefix}.`{table}{suffix}` VALUES {', '.join(values)}")
        inserts.execute().wait()


def _rows(config: Config, suffix: str, table: str, key: str, as_of: str | None = None) -> list[tuple[Any, ...]]:
    """Every row of an archive table as DuckDB's iceberg extension reads it (deletes applied), sorted."""
    spec = {"telemetry": lake.TELEMETRY, "device_agg_1m": lake.DEVICE_AGG_1M}[table]
    duck = lake_query.duckdb_connection(config, suffix, as_of=as_of, tables=(spec,))
    return list(duck.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall())


def test_compaction_and_expiry_keep_every_record_once(migrated: Config, capsys: pytest.CaptureFixture[str]) -> None:
    config, suffix = migrated, f"_maint_{uuid.uuid4().hex[:6]}"
    lake.ensure_tables(config, (lake.TELEMETRY, lake.DEVICE_AGG_1M, lake.DEAD_LETTERS), suffix)
    _write_rounds(config, suffix)

    before = {name: _rows(config, suffix, name, key) for name, key in
              (("telemetry", "kafka_partition, kafka_offset"), ("device_agg_1m", "device_id, window_start"))}
    assert len(before["telemetry"]) == ROUNDS * READINGS and len(before["device_agg_1m"]) == 24
    assert {row[5] for row in before["device_agg_1m"]} == {ROUNDS}  # reading_count: the last round replaced the others
    small = lake_maintenance.partition_files(config, lake.TELEMETRY, suffix)
    assert [p.data_files for p in small] == [ROUNDS] * 4
    upserted = lake_maintenance.partition_files(config, lake.DEVICE_AGG_1M, suffix)
    assert all(p.data_files == ROUNDS and p.delete_files >= 1 for p in upserted), upserted

    lines: list[str] = []
    results = lake_maintenance.compact(config, (lake.TELEMETRY, lake.DEVICE_AGG_1M), suffix, progress=lines.append)
    assert [(r.files_before, r.files_after) for r in results] == [(4 * ROUNDS, 4), (4 * ROUNDS, 4)]
    for spec in (lake.TELEMETRY, lake.DEVICE_AGG_1M):
        assert {p.data_files for p in lake_maintenance.partition_files(config, spec, suffix)} == {1}, spec.name
    for name, key in (("telemetry", "kafka_partition, kafka_offset"), ("device_agg_1m", "device_id, window_start")):
        assert _rows(config, suffix, name, key) == before[name], name  # every row once, unchanged
    assert any("rewriting" in line for line in lines)
    capsys.readouterr()
    assert cli.main(["lake", "status", "telemetry", "device_agg_1m", "--suffix", suffix]) == 0
    status = [line.split("\t") for line in capsys.readouterr().out.splitlines() if "_day=" in line]
    assert len(status) == 8 and {row[1] for row in status} == {"1"}, status  # one data file per partition

    # orphan files: one planted under the table's data folder goes; every snapshot still reads (below); an
    # empty table (no snapshot: the action would delete its metadata file) is skipped
    table = lake.catalog(config).load_table(lake.TELEMETRY.identifier(config, suffix))
    orphan = f"{table.location()}/data/orphan-of-a-failed-write.parquet"
    with table.io.new_output(orphan).create(overwrite=True) as out:
        out.write(b"not committed")
    assert cli.main(["lake", "orphans", "telemetry", "dead_letters", "--suffix", suffix, "--min-age-hours", "0"]) == 0
    assert not table.io.new_input(orphan).exists()
    assert lake.catalog(config).load_table(lake.DEAD_LETTERS.identifier(config, suffix)).current_snapshot() is None

    # expiry: the rounds' appends (the upserts' overwrites) and the compaction's replace; keep the newest two,
    # then only the newest
    table = lake.catalog(config).load_table(lake.TELEMETRY.identifier(config, suffix))
    history = [s.snapshot_id for s in table.snapshots()]
    assert len(history) == ROUNDS + 1 and table.current_snapshot().summary.operation.value == "replace"
    manifest_lists = {s.snapshot_id: s.manifest_list for s in table.snapshots()}
    now = datetime.now(UTC) + timedelta(minutes=1)
    [expired] = lake_maintenance.expire(config, (lake.TELEMETRY,), suffix, retain_last=2, max_age_hours=0,
                                        progress=lines.append, now=now)
    assert (expired.snapshots_before, expired.snapshots_after) == (ROUNDS + 1, 2)
    table = table.refresh()
    assert [s.snapshot_id for s in table.snapshots()] == history[-2:]
    # time travel to the kept pre-compaction snapshot reads the same rows from the small files
    assert _rows(config, suffix, "telemetry", "kafka_partition, kafka_offset", as_of=str(history[-2])) \
        == before["telemetry"]
    with pytest.raises(lake_query.LakeQueryError):
        lake_query.snapshot_id(table, str(history[0]))

    # the command line, with the retention given: every snapshot is older than now, the newest one stays
    assert cli.main(["lake", "expire", "telemetry", "--suffix", suffix, "--retain-last", "1",
                     "--max-age-hours", "0"]) == 0
    table = table.refresh()
    assert [s.snapshot_id for s in table.snapshots()] == history[-1:]
    # the expired snapshots' metadata is deleted from S3, the kept one's is not (the small data files go
    # when the compaction's own snapshot expires: Iceberg deletes the files that expired snapshots removed)
    assert [table.io.new_input(manifest_lists[s]).exists() for s in history] == [False] * ROUNDS + [True]
    assert _rows(config, suffix, "telemetry", "kafka_partition, kafka_offset") == before["telemetry"]
    lake.drop_tables(config, (lake.TELEMETRY, lake.DEVICE_AGG_1M, lake.DEAD_LETTERS), suffix)

