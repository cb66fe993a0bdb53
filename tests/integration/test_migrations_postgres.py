"""The storage schema on plain PostgreSQL (the stack's own server): migrations, monthly partitions
with a DEFAULT partition, pruning, Flink-style upserts, rollups and retention.

The checks that change data or drop partitions run in a fresh database per test (created on the
test stack's server and migrated), so they neither see nor disturb what other tests write to the
stack's database."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from jobs import aggregate
from kappa import db, outputs
from kappa.config import Config
from kappa.stack.postgres import connect
from tests.integration.migration_data import assert_rollups_equal, expected_views, minute_rows, readings, rollup_rows

pytestmark = pytest.mark.integration

KEY = ("device_id", "window_start")


@contextlib.contextmanager
def _new_database(config: Config) -> Iterator[psycopg.Connection]:
    """A new, empty database on the test server; dropped afterwards."""
    name = f"kappa_mig_{uuid.uuid4().hex[:8]}"
    with connect(config, admin=True, dbname="postgres") as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(config.postgres.user))
        )
    try:
        with connect(config, dbname=name) as conn:
            yield conn
    finally:
        with connect(config, admin=True, dbname="postgres") as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def fresh_db(migrated: Config) -> Iterator[psycopg.Connection]:
    """A new, migrated database on the test server; dropped afterwards."""
    with _new_database(migrated) as conn:
        assert [m.version for m in db.migrate(conn)] == [m.version for m in db.plan(db.MIGRATIONS_DIR, False)]
        yield conn


def _row(device_id: str, start: datetime, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "device_id": device_id,
        "site_id": "site-a",
        "device_type": "thermal",
        "window_start": start,
        "window_end": start + timedelta(minutes=1),
        "reading_count": 1,
    }
    row.update(values)
    return row


def _upsert(conn: psycopg.Connection, table: str, key: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """The statement Flink's PostgreSQL dialect issues for an upsert sink."""
    columns = list(rows[0])
    query = sql.SQL("INSERT INTO {t} ({c}) VALUES ({v}) ON CONFLICT ({k}) DO UPDATE SET {s}").format(
        t=sql.Identifier(table),
        c=sql.SQL(", ").join(map(sql.Identifier, columns)),
        v=sql.SQL(", ").join(sql.Placeholder(c) for c in columns),
        k=sql.SQL(", ").join(map(sql.Identifier, key)),
        s=sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns if c not in key),
    )
    with conn.cursor() as cur:
        cur.executemany(query, rows)


def _ensure(conn: psycopg.Connection, table: str, start: str, end: str) -> int:
    """kappa_ensure_partitions: how many monthly partitions it created."""
    row = conn.execute("SELECT kappa_ensure_partitions(%s, %s, %s)", (table, start, end)).fetchone()
    assert row is not None
    return int(row[0])


def _partition_of(conn: psycopg.Connection, device_id: str) -> dict[datetime, str]:
    rows = conn.execute(
        "SELECT window_start, tableoid::regclass::text FROM device_agg_1m WHERE device_id = %s", (device_id,)
    ).fetchall()
    return dict(rows)


def _scanned_relations(plan: Any) -> set[str]:
    found = set()
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            found.add(plan["Relation Name"])
        for value in plan.values():
            found |= _scanned_relations(value)
    elif isinstance(plan, list):
        for item in plan:
            found |= _scanned_relations(item)
    return found


def test_migrate_again_applies_nothing(migrated: Config) -> None:
    with connect(migrated) as conn:
        assert db.migrate(conn) == []
        status = db.status(conn)
    assert status.flavour == "postgres"
    assert not status.pending and not status.changed and not status.unknown
    assert [a.version for a in status.applied] == [m.version for m in db.plan(db.MIGRATIONS_DIR, False)]


def test_views_have_the_shared_column_lists(migrated: Config) -> None:
    with connect(migrated) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name LIKE 'v\\_%' ORDER BY table_name, ordinal_position"
        ).fetchall()
    actual: dict[str, list[tuple[str, str]]] = {}
    for view, column, data_type in rows:
        actual.setdefault(view, []).append((column, data_type))
    assert actual == expected_views()


def test_rows_land_in_month_partitions_or_default(fresh_db: psycopg.Connection) -> None:
    conn = fresh_db
    assert _ensure(conn, "device_agg_1m", "2001-01-10", "2001-02-02") == 2
    # Idempotent: the months exist now.
    assert _ensure(conn, "device_agg_1m", "2001-01-01", "2001-03-01") == 0
    jan, feb, far = datetime(2001, 1, 31, 23, 59), datetime(2001, 2, 1, 0, 0), datetime(2090, 6, 1, 12, 0)
    _upsert(conn, "device_agg_1m", KEY, [_row("d1", jan), _row("d1", feb), _row("d1", far)])
    assert _partition_of(conn, "d1") == {
        jan: "device_agg_1m_p200101",
        feb: "device_agg_1m_p200102",
        far: "device_agg_1m_default",
    }
    # Creating the month later moves its rows out of DEFAULT.
    assert _ensure(conn, "device_agg_1m", "2090-06-01", "2090-07-01") == 1
    assert _partition_of(conn, "d1")[far] == "device_agg_1m_p209006"
    assert conn.execute("SELECT count(*) FROM device_agg_1m_default").fetchone() == (0,)
    # The partitions carry the parent's primary key and BRIN index.
    indexes = {r[0] for r in conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'device_agg_1m_p209006'")}
    assert any("USING brin (window_start)" in i for i in indexes)
    assert any("UNIQUE" in i and "(device_id, window_start)" in i for i in indexes)


def test_one_day_range_scans_one_partition(fresh_db: psycopg.Connection) -> None:
    conn = fresh_db
    _ensure(conn, "device_agg_1m", "2001-01-01", "2001-04-01")
    _upsert(conn, "device_agg_1m", KEY, [_row("d1", datetime(2001, m, 15)) for m in (1, 2, 3)])
    (plan,) = conn.execute(
        "EXPLAIN (FORMAT JSON) SELECT * FROM device_agg_1m "
        "WHERE window_start >= '2001-02-15' AND window_start < '2001-02-16'"
    ).fetchone()
    assert _scanned_relations(plan) == {"device_agg_1m_p200102"}
    (plan,) = conn.execute(
        "EXPLAIN (FORMAT JSON) SELECT * FROM device_agg_1m "
        "WHERE window_start >= '2001-01-15' AND window_start < '2001-02-16'"
    ).fetchone()
    assert _scanned_relations(plan) == {"device_agg_1m_p200101", "device_agg_1m_p200102"}


def test_upsert_rewrites_the_row(fresh_db: psycopg.Connection) -> None:
    conn = fresh_db
    start = datetime(2001, 1, 1, 10, 0)
    _upsert(conn, "device_agg_1m", KEY, [_row("d1", start, reading_count=2, temp_max=50.0)])
    (first_update,) = conn.execute("SELECT updated_at FROM device_agg_1m").fetchone()
    time.sleep(0.01)
    _upsert(conn, "device_agg_1m", KEY, [_row("d1", start, reading_count=3, temp_max=61.5)])
    rows = conn.execute("SELECT reading_count, temp_max, updated_at FROM device_agg_1m").fetchall()
    assert len(rows) == 1 and rows[0][:2] == (3, 61.5)
    assert rows[0][2] > first_update  # the trigger keeps updated_at current

    alert = {
        "alert_id": "a-1",
        "device_id": "d1",
        "site_id": "site-a",
        "alert_type": "OVERHEATING",
        "severity": "WARNING",
        "first_event_time": start,
        "last_event_time": start + timedelta(seconds=30),
        "trigger_values": json.dumps({"max_temperature_c": 88.5}),
        "rule_version": "rules-v1",
        "detected_at": start + timedelta(seconds=30),
    }
    _upsert(conn, "alerts", ("alert_id",), [alert])
    _upsert(conn, "alerts", ("alert_id",), [alert | {"severity": "CRITICAL", "trigger_values": '{"readings": 4}'}])
    rows = conn.execute("SELECT severity, trigger_values FROM v_alerts").fetchall()
    assert rows == [("CRITICAL", {"readings": 4})]  # jsonb comes back as a dict
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        _upsert(conn, "alerts", ("alert_id",), [alert | {"alert_id": "a-2", "trigger_values": "not json"}])


def test_rollups_equal_a_computation_from_raw_readings(fresh_db: psycopg.Connection) -> None:
    conn = fresh_db
    raw = readings(datetime(2001, 1, 31, 22, 30), minutes=26 * 60)  # crosses an hour, day and month edge
    _ensure(conn, "device_agg_1m", "2001-01-01", "2001-03-01")
    _upsert(conn, "device_agg_1m", KEY, minute_rows(raw))
    assert conn.execute("SELECT count(*) FROM v_device_1h").fetchone() == (0,)  # not refreshed yet
    assert db.refresh(conn) == "postgres"
    with conn.cursor(row_factory=dict_row) as cur:
        hourly = cur.execute("SELECT * FROM v_device_1h").fetchall()
        daily = cur.execute("SELECT * FROM v_device_1d").fetchall()
    assert all(r["window_end"] - r["window_start"] == timedelta(hours=1) for r in hourly)
    assert_rollups_equal(hourly, rollup_rows(raw, "1h"))
    assert_rollups_equal(daily, rollup_rows(raw, "1d"))
    # A rewritten minute shows up in the rollups after the next refresh.
    minute = minute_rows(raw)[0]
    _upsert(conn, "device_agg_1m", KEY, [minute | {"temp_max": 1000.0}])
    db.refresh(conn)
    start = minute["window_start"].replace(minute=0)
    assert conn.execute(
        "SELECT temp_max FROM v_device_1h WHERE device_id = %s AND window_start = %s", (minute["device_id"], start)
    ).fetchone() == (1000.0,)


def test_retention_drops_whole_old_partitions(fresh_db: psycopg.Connection) -> None:
    conn = fresh_db
    _ensure(conn, "device_agg_1m", "2001-01-01", "2001-03-01")
    _ensure(conn, "site_agg_5m", "2001-01-01", "2001-02-01")
    _upsert(
        conn,
        "device_agg_1m",
        KEY,
        [_row("d1", datetime(2001, 1, 5)), _row("d1", datetime(2001, 2, 5)), _row("d1", datetime(1995, 1, 1))]
        + [_row("d1", datetime(2090, 1, 1))],
    )
    now_utc = conn.execute("SELECT (now() AT TIME ZONE 'UTC')::timestamp").fetchone()[0]
    _upsert(conn, "device_agg_1m", KEY, [_row("d1", now_utc.replace(second=0, microsecond=0))])
    dropped = db.retention(conn, "20 years")
    assert sorted(dropped) == sorted(
        [
            "device_agg_1m_default (1 rows)",  # the 1995 row; the 2090 row stays
            "device_agg_1m_p200101 (1 rows)",
            "device_agg_1m_p200102 (1 rows)",
            "site_agg_5m_p200101 (0 rows)",
        ]
    )
    parts = {
        r[0]
        for r in conn.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass", ("device_agg_1m",)
        )
    }
    assert not {"device_agg_1m_p200101", "device_agg_1m_p200102"} & parts
    assert f"device_agg_1m_p{now_utc:%Y%m}" in parts
    years = sorted(r[0].year for r in conn.execute("SELECT window_start FROM device_agg_1m"))
    assert years == [now_utc.year, 2090]
    assert db.retention(conn, "20 years") == []


# The reader view as migration 0004 made it, before device_model (0012).
V_DEVICE_1M_0004 = aggregate.OUTPUTS.views[0].columns.replace(", device_model", "")


def test_device_model_added_to_data_replay_versions_and_a_promoted_view(migrated: Config, tmp_path: Path) -> None:
    """Migration 0012 on a database migrated up to 0011 that holds windows in monthly partitions, a
    replayed version's table and the reader view promoted to it: every one gets the nullable column
    (rows written before read NULL), the view keeps reading the promoted version and gains the column,
    and the job's declared view (jobs/aggregate.py, used by `promote`) fits the migrated schema."""
    before = tmp_path / "migrations"
    before.mkdir()
    for migration in db.plan(db.MIGRATIONS_DIR, timescale=False):
        if migration.version < 12:
            shutil.copy(migration.path, before / migration.path.name)
    with _new_database(migrated) as conn:
        db.migrate(conn, before)
        _ensure(conn, "device_agg_1m", "2001-01-01", "2001-02-01")
        jan, far = datetime(2001, 1, 5, 10, 0), datetime(2090, 6, 1, 12, 0)
        _upsert(conn, "device_agg_1m", KEY, [_row("d1", jan), _row("d1", far)])
        outputs.create_versioned_tables(conn, "_v7")
        _upsert(conn, "device_agg_1m_v7", KEY, [_row("d1", jan, site_id="site-v7")])
        conn.execute("INSERT INTO replay_versions (job, version, topic, start_offsets, end_offsets, from_spec, state) "
                     "VALUES ('aggregate', 'v7', 'telemetry', '{}', '{}', 'earliest', 'promoted')")
        conn.execute(f"CREATE OR REPLACE VIEW v_device_1m AS SELECT {V_DEVICE_1M_0004} FROM device_agg_1m_v7")

        assert [m.version for m in db.migrate(conn)][:1] == [12]  # then any later ones
        having = conn.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'device_model' "
            "AND data_type = 'text' AND is_nullable = 'YES' AND table_name LIKE 'device\\_agg\\_1m%' ORDER BY 1"
        ).fetchall()
        tables = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                              "AND table_name LIKE 'device\\_agg\\_1m%' ORDER BY 1").fetchall()
        assert having == tables  # the table, every partition (the months 0003 made too) and the version
        assert {"device_agg_1m", "device_agg_1m_default", "device_agg_1m_p200101", "device_agg_1m_v7"} <= {
            t for (t,) in having}
        assert conn.execute("SELECT count(*), count(device_model) FROM device_agg_1m").fetchone() == (2, 0)
        # still the promoted version's rows, now with the model column last
        assert conn.execute("SELECT site_id, device_model FROM v_device_1m").fetchall() == [("site-v7", None)]
        view_columns = [c for (c,) in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'v_device_1m' "
            "ORDER BY ordinal_position")]
        assert view_columns == [c.strip() for c in aggregate.OUTPUTS.views[0].columns.split(",")]
        # the job's sink writes it (an upsert into a partition), a version made now has it, promote works
        _upsert(conn, "device_agg_1m", KEY, [_row("d1", jan, device_model="M-1")])
        outputs.create_versioned_tables(conn, "_v8")
        _upsert(conn, "device_agg_1m_v8", KEY, [_row("d1", far, device_model="M-2")])
        conn.execute(aggregate.OUTPUTS.views[0].definition(""))
        assert conn.execute("SELECT device_model FROM v_device_1m ORDER BY window_start").fetchall() == [
            ("M-1",), (None,)]
        conn.execute(aggregate.OUTPUTS.views[0].definition("_v8"))
        assert conn.execute("SELECT device_model FROM v_device_1m").fetchall() == [("M-2",)]
