"""Kappa reprocessing on the real stack: a replay reads exactly the offsets captured at its start,
equals a fresh bounded run of the changed job, compares with the "live" run, and promotes by
switching the reader views (always switched back to live: the database is shared)."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from confluent_kafka import Producer

from kappa import expected, jobrunner, outputs, replay
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.simulate import simulate
from kappa.stack.postgres import connect
from tests.integration.aggregate_support import faulty_spec

pytestmark = pytest.mark.integration

CHANGED = {"watermark_delay_s": "90"}  # the changed logic: late readings here are 35-50 s late, so none is


def _produce_extra(config: Config, topic: str, count: int = 6) -> None:
    producer = Producer({"bootstrap.servers": config.kafka.bootstrap})
    for i in range(count):
        producer.produce(topic, key=b"extra", value=b"not avro %d" % i, partition=i % config.kafka.partitions)
    assert producer.flush(30) == 0


def test_replay_is_bounded_compares_and_promotes(migrated: Config) -> None:
    live_suffix = f"_live_{uuid.uuid4().hex[:6]}"
    topic = f"telemetry{live_suffix.replace('_', '-')}"
    with connect(migrated) as conn:
        outputs.create_versioned_tables(conn, live_suffix)
    spec = dataclasses.replace(faulty_spec(topic, seed=23, devices=6, readings=30), late=0.06, late_margin_s=30.0)
    manifest = simulate(migrated, spec, produce=True, log=lambda _: None)
    total = manifest.data["counts"]["total"]
    live = live_suffix.lstrip("_")  # the "live" run of this test is version `live_xxxxxx` (V1)
    jobrunner.run_local(migrated, "aggregate", JobOptions(
        bounded=True, output_suffix=live_suffix, extra={"telemetry_topic": topic}), wait=True)

    rng = replay.capture_range(migrated, topic)
    assert rng.total == total
    _produce_extra(migrated, topic)  # after capture: the replay must not read these

    tag = uuid.uuid4().hex[:6]
    v2, fresh = f"r{tag}", f"f{tag}"
    lines: list[str] = []
    try:
        done = replay.run_replay(migrated, "aggregate", v2, rng, extra=CHANGED, interval_s=1, log=lines.append)
        assert done.state == "finished" and done.end == rng.end and done.start == rng.start
        assert "finished" in lines[-1]
        # a fresh bounded run of the changed job over the same offsets, into another suffix
        with connect(migrated) as conn:
            outputs.create_versioned_tables(conn, "_" + fresh)
        jobrunner.run_local(migrated, "aggregate", JobOptions(bounded=True, output_suffix="_" + fresh, extra={
            **CHANGED, "telemetry_topic": topic, "source_options": replay.source_options(rng.start, rng.end)}),
            wait=True)

        with connect(migrated) as conn:
            books = outputs.accounting(conn, "_" + v2, late=len(outputs.late_keys(migrated, f"{topic}-late_{v2}")))
            assert books.total == total, books  # bounded by the captured offsets: no extra record
            assert books.dead_letters == manifest.data["counts"]["malformed"]
            assert books.late == 0
            for table, keys in replay.COMPARE_TABLES.items():
                mine = replay.table_rows(conn, f"{table}_{v2}", keys)
                theirs = replay.table_rows(conn, f"{table}_{fresh}", keys)
                assert mine.keys() == theirs.keys(), table
                for key, row in mine.items():  # the same rows (updated_at is write time); floats to 1e-9,
                    # since summation order in Flink's local/global aggregation varies between runs
                    for column, value in row.items():
                        if column != "updated_at":
                            assert expected.close(value, theirs[key][column]), (table, key, column)

            # v2 against the fresh run: no differences at all
            same = replay.compare_versions(conn, "aggregate", v2, fresh)
            assert all(d.differences == 0 for d in same), replay.format_diffs(v2, fresh, same)

            # V1 (watermark delay 5 s) against v2 (600 s): exactly the windows of V1's late readings differ
            late_v1 = outputs.late_keys(migrated, f"{topic}-late{live_suffix}")
            by_key = {(r.device_id, r.seq): r for r in manifest.records}
            late_windows = {(d, by_key[(d, s)].event_time // 60_000) for d, s in late_v1}
            diffs = {d.table: d for d in replay.compare_versions(conn, "aggregate", live, v2)}
            device = diffs["device_agg_1m"]
            assert device.only_left == 0
            assert device.differing + device.only_right == len(late_windows), (
                replay.format_diffs(live, v2, list(diffs.values())), late_v1)
            if late_v1:
                assert "reading_count" in device.columns or device.only_right

            # a catch-up read often emits no watermark before the last record, so V1 may have no late
            # readings and nothing may differ above; prove compare finds differences on real tables too
            first = min(replay.table_rows(conn, f"device_agg_1m_{fresh}", replay.COMPARE_TABLES["device_agg_1m"]))
            last = max(replay.table_rows(conn, f"device_agg_1m_{fresh}", replay.COMPARE_TABLES["device_agg_1m"]))
            conn.execute(f'UPDATE "device_agg_1m_{fresh}" SET reading_count = reading_count + 100 '
                         "WHERE device_id = %s AND window_start = %s", first)
            conn.execute(f'DELETE FROM "device_agg_1m_{fresh}" WHERE device_id = %s AND window_start = %s', last)
            tampered = replay.compare_versions(conn, "aggregate", v2, fresh)[0]
            assert (tampered.only_left, tampered.only_right, tampered.differing) == (1, 0, 1)
            assert tampered.top_columns() == "reading_count(1)"

            # promote v2: the reader views switch to its tables in one transaction; then back to live
            replay.promote(conn, "aggregate", v2)
            count = conn.execute("SELECT count(*) FROM v_device_1m").fetchone()
            assert count == conn.execute(f'SELECT count(*) FROM "device_agg_1m_{v2}"').fetchone()
            sites = conn.execute("SELECT count(*) FROM v_site_5m").fetchone()
            assert sites == conn.execute(f'SELECT count(*) FROM "site_agg_5m_{v2}"').fetchone()
            assert replay.get_version(conn, "aggregate", v2).promoted
            with pytest.raises(replay.ReplayError, match="promoted"):
                replay.drop(migrated, conn, "aggregate", v2)
    finally:
        with connect(migrated) as conn:
            for table in outputs.AGGREGATE_TABLES:
                conn.execute(f'DROP TABLE IF EXISTS "{table}_{fresh}"')
            replay.promote(conn, "aggregate", "live")
            assert conn.execute("SELECT count(*) FROM v_device_1m").fetchone() == \
                conn.execute("SELECT count(*) FROM device_agg_1m").fetchone()
            if any(v.version == v2 for v in replay.versions(conn, "aggregate")):
                gone = replay.drop(migrated, conn, "aggregate", v2)
                assert f"table device_agg_1m_{v2}" in gone
