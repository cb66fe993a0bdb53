"""Maintenance of the Iceberg archive on the real stack (PostgreSQL catalog, SeaweedFS, Flink MiniCluster):
compaction leaves one data file per partition with every record exactly once, on the appended
telemetry table and on the upserted windows table (equality deletes); snapshot expiry removes old
snapshots and their metadata, and time travel to a kept snapshot still reads the same rows; orphan-file
cleanup deletes an unreferenced file and nothing a snapshot reads. Schema evolution: the telemetry table
is made before uptime_s (telemetry v3) and gains it after the first round by `lake.ensure_tables`, without
a rewrite; the first round's files read it as NULL, the later rounds' rows carry it, compaction keeps both.

The telemetry table gets several small commits as pyiceberg appends (one file per partition each, as a
checkpoint's commit of the streaming sink). The windows table is written by Flink's Iceberg sink in
upsert mode, twice over the same keys, so that it holds equality deletes as the live job's table does.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kappa import cli, lake, lake_maintenance, lake_query, s3_security, sqlfiles
from kappa.config import Config
from kappa.flinkenv import JobOptions, flink_settings, sql_params

pytestmark = pytest.mark.integration

DAY = datetime(2026, 12, 1)
TYPES = ("sensor", "meter")


ROUNDS = 3  # commits per table
READINGS = 80  # per round
EVOLVED_AT = 2  # the telemetry table gains uptime_s (telemetry v3) before this round


def _value(v: Any) -> str:
    return "NULL" if v is None else f"TIMESTAMP '{v}'" if isinstance(v, datetime) else repr(v)


def _uptime(offset: int) -> int | None:
    """uptime_s of the reading at `offset`: from the round the table has the column, every third one is
    from a v3 writer; NULL otherwise."""
    return 1000 + offset if offset >= EVOLVED_AT * READINGS and offset % 3 == 0 else None


def _telemetry_values(round_: int) -> list[str]:
    """Readings over two days and two device types (four partitions), each at its own Kafka offset; in the
    table's columns of that round (uptime_s last from round EVOLVED_AT on)."""
    rows = []
    for o in range(round_ * READINGS, (round_ + 1) * READINGS):
        row = (f"dev-{o % 7}", "site-1", TYPES[o % 2], o, DAY + timedelta(days=(o // 2) % 2, seconds=o), "ok",
               "1.0", 20.0 + o / 10, 40.0, 1000.0, 1.5, 5.0, 90.0, -60, 2, o % 3, o)
        uptime = "" if round_ < EVOLVED_AT else f", CAST({_uptime(o) if _uptime(o) is not None else 'NULL'} AS BIGINT)"
        rows.append("(" + ", ".join(_value(v) for v in row[:3]) + f", CAST({o} AS BIGINT), "
                    + ", ".join(_value(v) for v in row[4:16]) + f", CAST({o} AS BIGINT){uptime})")
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


def _batch_env(config: Config) -> tuple[Any, str]:
    """A batch TableEnvironment with the archive's Iceberg catalog, and the lake namespace's SQL prefix."""
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    settings = Configuration()
    for key, value in {**flink_settings(config, JobOptions(parallelism=1)), "execution.runtime-mode": "BATCH"}.items():
        settings.set_string(key, value)
    t_env = TableEnvironment.create(EnvironmentSettings.new_instance().in_batch_mode()
                                    .with_configuration(settings).build())
    for statement in sqlfiles.load("archive/catalog.sql", sql_params(config, JobOptions()), sql_dir=config.sql_dir):
        t_env.execute_sql(statement)
    return t_env, f"`{config.lake.catalog}`.`{config.lake.namespace}`"


def _write_rounds(config: Config, suffix: str, evolve: Callable[[], None]) -> None:
    """Flink's Iceberg sink writes both tables in ROUNDS batch jobs, one commit per table each: small
    files, as the streaming sink's checkpoint commits leave them. The windows table is upserted on its
    identifier fields, so each round replaces the last one's rows (equality deletes). `evolve` changes
    the tables' schemas before round EVOLVED_AT, which then plans in a fresh catalog that sees them."""
    t_env, prefix = _batch_env(config)
    for round_ in range(1, ROUNDS + 1):
        if round_ == EVOLVED_AT:
            evolve()
            t_env, prefix = _batch_env(config)
        inserts = t_env.create_statement_set()
        for table, values in (("telemetry", _telemetry_values(round_)), ("device_agg_1m", _window_values(round_))):
            inserts.add_insert_sql(f"INSERT INTO {prefix}.`{table}{suffix}` VALUES {', '.join(values)}")
        inserts.execute().wait()


def _gain_uptime(config: Config, suffix: str) -> None:
    """`lake.ensure_tables` with telemetry v3's uptime_s declared: the table made before it gains the column
    (optional, last) by Iceberg schema evolution, a metadata change: no commit, no data file rewritten."""
    table = lake.catalog(config).load_table(lake.TELEMETRY.identifier(config, suffix))
    snapshot = table.current_snapshot().snapshot_id
    files = lake_maintenance.partition_files(config, lake.TELEMETRY, suffix)
    assert "uptime_s" not in {f.name for f in table.schema().fields}
    (evolved,) = lake.ensure_tables(config, (lake.TELEMETRY,), suffix)
    assert [f.name for f in evolved.schema().fields] == [c.name for c in lake.TELEMETRY.columns]
    assert not evolved.schema().find_field("uptime_s").required
    assert evolved.current_snapshot().snapshot_id == snapshot
    assert lake_maintenance.partition_files(config, lake.TELEMETRY, suffix) == files


def _rows(config: Config, suffix: str, table: str, key: str, as_of: str | None = None) -> list[tuple[Any, ...]]:
    """Every row of an archive table as DuckDB's iceberg extension reads it (deletes applied), sorted."""
    spec = {"telemetry": lake.TELEMETRY, "device_agg_1m": lake.DEVICE_AGG_1M}[table]
    duck = lake_query.duckdb_connection(config, suffix, as_of=as_of, tables=(spec,))
    return list(duck.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall())


def test_compaction_and_expiry_keep_every_record_once(migrated: Config, capsys: pytest.CaptureFixture[str]) -> None:
    config, suffix = migrated, f"_maint_{uuid.uuid4().hex[:6]}"
    before_v3 = dataclasses.replace(lake.TELEMETRY, columns=tuple(c for c in lake.TELEMETRY.columns
                                                                  if c.name != "uptime_s"))
    lake.ensure_tables(config, (before_v3, lake.DEVICE_AGG_1M, lake.DEAD_LETTERS), suffix)
    _write_rounds(config, suffix, lambda: _gain_uptime(config, suffix))

    before = {name: _rows(config, suffix, name, key) for name, key in
              (("telemetry", "kafka_partition, kafka_offset"), ("device_agg_1m", "device_id, window_start"))}
    assert len(before["telemetry"]) == ROUNDS * READINGS and len(before["device_agg_1m"]) == 24
    assert {row[5] for row in before["device_agg_1m"]} == {ROUNDS}  # reading_count: the last round replaced the others
    # telemetry v3: the first round's files (written before the table had uptime_s) read it as NULL
    uptimes = {row[16]: row[17] for row in before["telemetry"]}  # kafka_offset -> uptime_s
    assert uptimes == {o: _uptime(o) for o in range(READINGS, (ROUNDS + 1) * READINGS)}
    assert {uptimes[o] for o in range(READINGS, EVOLVED_AT * READINGS)} == {None}
    assert sum(u is not None for u in uptimes.values()) > 0
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
    assert cli.main(["query", "--suffix", suffix, "SELECT count(*), count(uptime_s) FROM telemetry"]) == 0
    with_uptime = sum(_uptime(o) is not None for o in range(READINGS, (ROUNDS + 1) * READINGS))
    assert capsys.readouterr().out.splitlines()[1:] == [f"{ROUNDS * READINGS}\t{with_uptime}"]
    assert cli.main(["lake", "status", "telemetry", "device_agg_1m", "--suffix", suffix]) == 0
    status = [line.split("\t") for line in capsys.readouterr().out.splitlines() if "_day=" in line]
    assert len(status) == 8 and {row[1] for row in status} == {"1"}, status  # one data file per partition

    # orphan files: one planted under the table's data folder goes; every snapshot still reads (below); an
    # empty table (no snapshot: the action would delete its metadata file) is skipped
    # (planted as a failed job would have: with the writer's keys; the reader's are refused)
    table = lake.catalog(config, s3_security.WRITER).load_table(lake.TELEMETRY.identifier(config, suffix))
    orphan = f"{table.location()}/data/orphan-of-a-failed-write.parquet"
    with table.io.new_output(orphan).create(overwrite=True) as out:
        out.write(b"not committed")
    reading = lake.catalog(config).load_table(lake.TELEMETRY.identifier(config, suffix))
    with pytest.raises(OSError, match="ACCESS_DENIED"), reading.io.new_output(orphan).create(overwrite=True) as out:
        out.write(b"the reader's")
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
