"""Kappa reprocessing on the real stack, with a real change of the SQL logic: the live job (the
repository's sql/) runs over a dataset; an analyst's fix to sql/aggregates/windows.sql is replayed
from earliest as v2 on the standalone cluster; v2 equals a fresh local run of the changed job over the
same offsets; compare reports exactly the windows the fix alters (worked out in Python from what the
simulator produced, not from the job's output); promote switches the reader views atomically (and
always back to live: the database is shared)."""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from kappa import expected, jobrunner, kafka_clients, lake, lake_branch, lake_query, outputs
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.replay import ReplayError, compare, offsets, promote, runner, versions
from kappa.simulate import Manifest, simulate
from kappa.stack.postgres import connect
from tests.integration.aggregate_support import READING_CATEGORIES, assert_matches_python, faulty_spec, to_reading
from tests.integration.kafka_support import committed_messages
from tests.integration.scratch import Names, run_bounded, versioned_outputs

AGGREGATE = outputs.job_outputs("aggregate")

pytestmark = pytest.mark.integration

# The analyst's change: readings a device itself flags WARN or FAULT (a sensor it distrusts) no longer
# count in the device's one-minute temperature average. Everything else stays as it is.
LIVE_AVG = "MAX(temperature_c) AS temp_max, AVG(temperature_c) AS temp_avg,"
FIXED_AVG = "MAX(temperature_c) AS temp_max, AVG(CASE WHEN status = 'OK' THEN temperature_c END) AS temp_avg,"

EXTRA = 6  # undecodable records produced after the replay's capture


def _changed_sql_dir(tmp_path: Path) -> Path:
    """A copy of sql/ with the fix in sql/aggregates/windows.sql (device windows only)."""
    changed = tmp_path / "sql"
    shutil.copytree(Path(__file__).resolve().parents[2] / "sql", changed)
    windows = changed / "aggregates" / "windows.sql"
    text = windows.read_text()
    assert text.count(LIVE_AVG) == 1, "windows.sql changed: update the replay test's edit"
    windows.write_text(text.replace(LIVE_AVG, FIXED_AVG))
    return changed


def _with_sql_dir(config: Config, sql_dir: Path) -> Config:
    return config.model_copy(update={"paths": config.paths.model_copy(update={"sql_dir": sql_dir})})


def _changed_windows(manifest: Manifest) -> tuple[set[tuple[str, datetime]], int]:
    """The device windows whose temp_avg the fix alters, and how many device windows there are: the
    readings' windows computed by kappa.expected with and without the non-OK temperatures."""
    readings = [to_reading(r) for r in manifest.records if r.category in READING_CATEGORIES]
    ok_only = [dataclasses.replace(r, values={**r.values, "temperature_c": None})
               if r.values.get("status") != "OK" else r for r in readings]
    before, after = expected.device_windows_1m(readings), expected.device_windows_1m(ok_only)
    changed = {key for key in before if not expected.close(before[key]["temp_avg"], after[key]["temp_avg"])}
    as_db = {(device, datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None)) for device, ms in changed}
    return as_db, len(before)


def _produce_extra(config: Config, topic: str, count: int) -> None:
    producer = kafka_clients.producer(config)
    for i in range(count):
        producer.produce(topic, key=b"extra", value=b"not avro %d" % i, partition=i % config.kafka.partitions)
    assert producer.flush(30) == 0


def _assert_same_rows(conn: psycopg.Connection, left: str, right: str) -> None:
    """Every row and every column equal (updated_at is write time). Floats to a relative 1e-9: the
    order in which one window's readings from different partitions reach the aggregate varies
    between runs, and with it the last bits of a sum; everything else exactly."""
    for table in AGGREGATE.compared:
        mine = compare.table_rows(conn, f"{table.name}_{left}", table.key)
        theirs = compare.table_rows(conn, f"{table.name}_{right}", table.key)
        assert mine.keys() == theirs.keys(), table.name
        for key, row in mine.items():
            assert row.keys() == theirs[key].keys()
            for column, value in row.items():
                other = theirs[key][column]
                if column != "updated_at":
                    assert expected.close(value, other), (table.name, key, column, value, other)


def _view_reads(conn: psycopg.Connection, view: str) -> str:
    row = conn.execute("SELECT pg_get_viewdef(%s::regclass)", (view,)).fetchone()
    assert row is not None
    return str(row[0])


@pytest.mark.cluster
def test_replay_of_a_sql_change_equals_a_fresh_run_compares_and_promotes(migrated: Config, tmp_path: Path) -> None:
    names = Names.new("live")
    topic, live_suffix = names.topic, versioned_outputs(migrated, names.suffix)
    # no late readings and out-of-order ones strictly inside the watermark delay: then no run routes a
    # reading late, whatever the timing of its watermarks, and every run's windows are a function of the data
    delay_s = migrated.job.watermark_delay_s
    spec = dataclasses.replace(faulty_spec(topic, seed=23, devices=6, readings=30), late=0.0,
                               out_of_order_max_s=delay_s - 1.0)
    manifest = simulate(migrated, spec, produce=True, log=lambda _: None)
    total = manifest.data["counts"]["total"]
    live = live_suffix.lstrip("_")  # the "live" run of this test is version `live_xxxxxx` (V1, repo SQL)
    run_bounded(migrated, "aggregate", topic, live_suffix)
    assert_matches_python(migrated, live_suffix, manifest, topic)  # V1 is right, and none of it late

    changed_config = _with_sql_dir(migrated, _changed_sql_dir(tmp_path))
    rng = offsets.capture_range(migrated, topic)
    assert rng.total == total
    _produce_extra(migrated, topic, EXTRA)  # after capture: the replay must not read these

    tag = uuid.uuid4().hex[:6]
    v2, fresh = f"r{tag}", f"f{tag}"
    lines: list[str] = []
    try:
        done = runner.run_replay(changed_config, "aggregate", v2, rng, cluster=True, interval_s=1,
                                 log=lines.append)
        assert done.state == "finished" and done.end == rng.end and done.start == rng.start
        assert any(line.startswith("submitted as Flink job") for line in lines), lines
        assert any("p0:" in line and "/" in line for line in lines[1:-1]), lines  # progress per partition
        assert "finished" in lines[-1]
        # the version's Iceberg branch of the live windows table holds its 1-minute windows, once each (a
        # replay from the earliest offsets starts from an emptied branch: kappa.lake_branch.fork)
        windows = lake.catalog(migrated).load_table(lake.DEVICE_AGG_1M.identifier(migrated))
        branch_head = lake_branch.head(windows, versions.lake_ref(v2))
        assert branch_head is not None and branch_head != lake_branch.head(windows, "main")
        duck = lake_query.duckdb_connection(migrated, tables=(lake.DEVICE_AGG_1M,), branch=versions.lake_ref(v2))
        archived = duck.execute("SELECT device_id, epoch_ms(window_start) FROM device_agg_1m").fetchall()
        with connect(migrated) as conn:
            tabled = conn.execute(f'SELECT device_id, window_start FROM "device_agg_1m_{v2}"').fetchall()
        assert sorted(archived) == sorted((d, int(w.replace(tzinfo=UTC).timestamp() * 1000)) for d, w in tabled)
        # a fresh bounded run of the changed job over the same offsets, locally, into another suffix
        with connect(migrated) as conn:
            versions.register(conn, "aggregate", fresh, rng)  # so that cleanup drops its tables and topics
            outputs.create_versioned_tables(conn, "_" + fresh)
        jobrunner.run_local(changed_config, "aggregate", JobOptions(bounded=True, output_suffix="_" + fresh, extra={
            "telemetry_topic": topic, "source_options": offsets.source_options(rng.start, rng.end)}), wait=True)

        with connect(migrated) as conn:
            versions.set_state(conn, "aggregate", fresh, "finished")
            books = outputs.accounting(conn, "_" + v2, late=len(outputs.late_keys(migrated, f"{topic}-late_{v2}")))
            assert books.total == total, books  # bounded by the captured offsets: no extra record
            assert books.dead_letters == manifest.data["counts"]["malformed"]
            assert books.late == 0

            # v2 (cluster) against the fresh local run of the changed job: the same rows
            _assert_same_rows(conn, v2, fresh)
            same = compare.compare_versions(conn, "aggregate", v2, fresh)
            assert all(d.differences == 0 for d in same), compare.format_diffs(v2, fresh, same)

            # V1 against v2: exactly the device windows holding a WARN/FAULT temperature differ, only in
            # temp_avg; no window lost or gained; site windows and duplicate counts are untouched
            want, windows = _changed_windows(manifest)
            assert 0 < len(want) < windows, (len(want), windows)  # the data exercises the change
            diffs = {d.table: d for d in compare.compare_versions(conn, "aggregate", live, v2)}
            report = compare.format_diffs(live, v2, list(diffs.values()))
            device = diffs["device_agg_1m"]
            assert device.rows_left == device.rows_right == windows, report
            assert (device.only_left, device.only_right) == (0, 0), report
            assert device.differing_keys == want, (report, sorted(device.differing_keys ^ want)[:5])
            assert dict(device.columns) == {"temp_avg": len(want)}, report
            assert diffs["site_agg_5m"].differences == 0 and diffs["duplicates_1m"].differences == 0, report

            # promote v2: both reader views switch to its tables in one transaction
            promote.promote(conn, "aggregate", v2)
            assert f"device_agg_1m_{v2}" in _view_reads(conn, "v_device_1m")
            assert f"site_agg_5m_{v2}" in _view_reads(conn, "v_site_5m")
            count = conn.execute("SELECT count(*) FROM v_device_1m").fetchone()
            assert count == conn.execute(f'SELECT count(*) FROM "device_agg_1m_{v2}"').fetchone()
            assert versions.get_version(conn, "aggregate", v2).promoted
            with pytest.raises(ReplayError, match="promoted"):
                promote.drop(migrated, conn, "aggregate", v2)

            # all or nothing: a promotion that fails at the second view leaves the first one as it was
            conn.execute(f'ALTER TABLE "site_agg_5m_{fresh}" RENAME TO "site_agg_5m_{fresh}_gone"')
            with pytest.raises(ReplayError, match=f"site_agg_5m_{fresh}"):
                promote.promote(conn, "aggregate", fresh)
            conn.execute(f'ALTER TABLE "site_agg_5m_{fresh}_gone" RENAME TO "site_agg_5m_{fresh}"')
            assert f"device_agg_1m_{v2}" in _view_reads(conn, "v_device_1m")
            assert versions.get_version(conn, "aggregate", v2).promoted

        # the seam: v2's live job as `promote` prints it (bounded here by the latest offsets) continues
        # exactly at the replay's end: it reads the records produced after the capture, once each
        follow_on = promote.follow_on_options(done)
        assert not follow_on.bounded and follow_on.output_suffix == "_" + v2
        # bounded here (the reference topics to their end too, or the job never finishes), and its
        # telemetry source from the replay's end to the latest offset
        # (and without the Iceberg inserts: it would write main of the session's shared live tables)
        follow_on = dataclasses.replace(follow_on, bounded=True, lake=False)
        follow_on.extra["source_options"] += ",\n  'scan.bounded.mode' = 'latest-offset'"
        jobrunner.run_local(changed_config, "aggregate", follow_on, wait=True)
        dead = committed_messages(migrated, f"{migrated.kafka.dead_letter_topic}_{v2}")
        assert len(dead) == manifest.data["counts"]["malformed"] + EXTRA  # exactly-once topic: no repeat
        with connect(migrated) as conn:
            after = compare.compare_versions(conn, "aggregate", v2, fresh)  # the extra records are no readings
            assert all(d.differences == 0 for d in after), compare.format_diffs(v2, fresh, after)
    finally:
        with connect(migrated) as conn:
            conn.execute(f'DROP TABLE IF EXISTS "site_agg_5m_{fresh}_gone"')
            promote.promote(conn, "aggregate", "live")
            assert conn.execute("SELECT count(*) FROM v_device_1m").fetchone() == \
                conn.execute("SELECT count(*) FROM device_agg_1m").fetchone()
            existing = {v.version for v in versions.versions(conn, "aggregate")}
            if fresh in existing:
                promote.drop(migrated, conn, "aggregate", fresh)
            if v2 in existing:
                gone = promote.drop(migrated, conn, "aggregate", v2)
                assert f"table device_agg_1m_{v2}" in gone
                assert f"iceberg branch device_agg_1m@{versions.lake_ref(v2)}" in gone
