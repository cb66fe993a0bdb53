"""The TimescaleDB flavour of the storage schema, run for real in PGlite (PostgreSQL 17 with
TimescaleDB 2.23 in WebAssembly, from npm; tests/timescale/run_sql.mjs): the `.timescale.sql`
migration chain, hypertables, continuous aggregates checked against raw readings, policies run with
`CALL run_job`, upserts into compressed chunks, retention, and the `v_*` views answering with the
same columns as on plain PostgreSQL. Needs node and npm (`make setup` runs `npm ci` there); the
first run installs tests/timescale/node_modules itself."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from kappa import db
from kappa.config import PROJECT_ROOT
from tests.integration.migration_data import (
    assert_rollups_equal,
    expected_views,
    insert_sql,
    minute_rows,
    readings,
    rollup_rows,
)

pytestmark = pytest.mark.integration

DRIVER_DIR = PROJECT_ROOT / "tests" / "timescale"
START = datetime(2001, 1, 31, 22, 30)
MINUTES = 26 * 60  # crosses hour, day and month boundaries
POLICIES = [
    ("policy_compression", "device_agg_1m"),
    ("policy_retention", "device_agg_1m"),
    ("policy_retention", "site_agg_5m"),
    ("policy_retention", "device_agg_1h"),
    ("policy_refresh_continuous_aggregate", "device_agg_1h"),
    ("policy_refresh_continuous_aggregate", "device_agg_1d"),
]
ALERT = (
    "INSERT INTO alerts (alert_id, device_id, site_id, alert_type, severity, first_event_time, last_event_time, "
    "trigger_values, rule_version, detected_at) VALUES ('a-1', 'dev-t', 'site-a', 'OVERHEATING', 'WARNING', "
    "'2001-02-01 05:00', '2001-02-01 05:01', '{\"max_temperature_c\": 91.5}', 'rules-v1', '2001-02-01 05:01')"
)
ADDED_LATER = (12,)
"""Migrations applied only once device_agg_1m has rows in compressed chunks, as on a running server."""
MODEL = (
    "INSERT INTO device_agg_1m (device_id, site_id, device_type, window_start, window_end, reading_count, "
    "device_model) VALUES ('{device_id}', '{site_id}', '{device_type}', '{t}', "
    "'{t}'::timestamp + INTERVAL '1 minute', 7, 'M-2') "
    "ON CONFLICT (device_id, window_start) DO UPDATE SET reading_count = EXCLUDED.reading_count, "
    "device_model = EXCLUDED.device_model"
)
REWRITE = (
    "INSERT INTO device_agg_1m (device_id, site_id, device_type, window_start, window_end, reading_count, temp_max) "
    "VALUES ('{device_id}', '{site_id}', '{device_type}', '{t}', '{t}'::timestamp + INTERVAL '1 minute', 99, 999.0) "
    "ON CONFLICT (device_id, window_start) DO UPDATE SET reading_count = EXCLUDED.reading_count, "
    "temp_max = EXCLUDED.temp_max"
)


def _select_view(view: str) -> str:
    """All columns of a view, timestamps as text (PGlite would turn them into zoned JS dates)."""
    columns = [f"{c}::text AS {c}" if t.startswith("timestamp") else c for c, t in expected_views()[view]]
    return f"SELECT {', '.join(columns)} FROM {view}"


def _typed(rows: list[dict[str, Any]], view: str) -> list[dict[str, Any]]:
    types = dict(expected_views()[view])
    out = []
    for row in rows:
        typed = dict(row)
        for column, value in row.items():
            if value is not None and types[column].startswith("timestamp"):
                typed[column] = datetime.fromisoformat(value)
            elif value is not None and types[column] == "bigint":
                typed[column] = int(value)
        out.append(typed)
    return out


def _ensure_driver() -> None:
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.fail("node and npm are needed for the TimescaleDB checks (apt-get install nodejs npm)")
    if not (DRIVER_DIR / "node_modules" / "pglite-ts" / "package.json").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=DRIVER_DIR, check=True, timeout=600)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One PGlite run: the TimescaleDB migration chain, then every check below, in order."""
    _ensure_driver()
    raw = readings(START, MINUTES)
    minute, second = minute_rows(raw)[:2]
    chain = db.plan(db.MIGRATIONS_DIR, timescale=True)
    later = [m for m in chain if m.version in ADDED_LATER]
    checks: list[tuple[str, str | Path]] = [
        (
            "hypertables",
            "SELECT hypertable_name, num_dimensions, compression_enabled "
            "FROM timescaledb_information.hypertables ORDER BY 1",
        ),
        (
            "chunk_interval",
            "SELECT time_interval::text FROM timescaledb_information.dimensions "
            "WHERE hypertable_name = 'device_agg_1m'",
        ),
        (
            "caggs",
            "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates ORDER BY 1",
        ),
        ("thresholds", "SELECT device_type FROM alert_thresholds WHERE device_id IS NULL ORDER BY 1"),
    ]
    checks += [
        (
            f"job_{proc}_{table}",
            "SELECT job_id FROM timescaledb_information.jobs "
            f"WHERE proc_name = '{proc}' AND hypertable_name = '{table}'",
        )
        for proc, table in POLICIES
    ]
    checks += [
        ("insert", insert_sql("device_agg_1m", minute_rows(raw))),
        ("before_refresh", "SELECT count(*)::int AS n FROM v_device_1h"),
        *((f"refresh_{i}", statement) for i, statement in enumerate(db.refresh_statements("timescale"))),
        ("hourly", _select_view("v_device_1h")),
        ("daily", _select_view("v_device_1d")),
        ("compress", "CALL run_job(${job_policy_compression_device_agg_1m})"),
        (
            "chunks",
            "SELECT count(*)::int AS n, count(*) FILTER (WHERE is_compressed)::int AS compressed "
            "FROM timescaledb_information.chunks WHERE hypertable_name = 'device_agg_1m'",
        ),
        # a column added to the hypertable whose chunks are all compressed (migration 0012)
        *((f"migrate_{m.version:04d}", m.path) for m in later),
        (
            "model_column",
            "SELECT data_type, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_name = 'device_agg_1m' AND column_name = 'device_model'",
        ),
        ("model_in_compressed", "SELECT count(*)::int AS n, count(device_model)::int AS with_model FROM device_agg_1m"),
        ("model_upsert", MODEL.format(t=second["window_start"].isoformat(sep=" "), **second)),
        (
            "model_read",
            "SELECT device_model, reading_count::int AS reading_count, temp_min FROM v_device_1m "
            f"WHERE device_id = '{second['device_id']}' "
            f"AND window_start = '{second['window_start'].isoformat(sep=' ')}'",
        ),
        (
            "views",
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name LIKE 'v\\_%' ORDER BY table_name, ordinal_position",
        ),
        ("rewrite", REWRITE.format(t=minute["window_start"].isoformat(sep=" "), **minute)),
        (
            "rewritten",
            "SELECT reading_count::int AS reading_count, temp_max, temp_min FROM device_agg_1m "
            f"WHERE device_id = '{minute['device_id']}' "
            f"AND window_start = '{minute['window_start'].isoformat(sep=' ')}'",
        ),
        ("alert", ALERT),
        ("alerts", "SELECT jsonb_typeof(trigger_values) AS kind, trigger_values::text AS tv FROM v_alerts"),
        *((f"retention_{i}", s) for i, s in enumerate(db.retention_statements("timescale", "20 years"))),
        ("rows_left", "SELECT count(*)::int AS n FROM device_agg_1m"),
        ("hourly_after_retention", "SELECT count(*)::int AS n FROM v_device_1h"),
        *(
            (f"run_{proc}_{table}", f"CALL run_job(${{job_{proc}_{table}}})")
            for proc, table in POLICIES
            if proc != "policy_compression"
        ),
    ]
    checks_file = tmp_path_factory.mktemp("timescale") / "checks.json"
    checks_file.write_text(json.dumps([{"name": n, "file": str(s)} if isinstance(s, Path) else {"name": n, "sql": s}
                                       for n, s in checks]))
    files = [str(m.path) for m in chain if m not in later]
    proc = subprocess.run(
        ["node", str(DRIVER_DIR / "run_sql.mjs"), "--checks", str(checks_file), *files],
        cwd=DRIVER_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.stdout, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert proc.returncode == 0 and "error" not in result, (result.get("failed"), result.get("error"))
    assert result["applied"] == files
    return {"raw": raw, "minute": minute, "second": second, **result["checks"]}


def test_chain_is_the_timescale_flavour() -> None:
    names = [m.path.name for m in db.plan(db.MIGRATIONS_DIR, timescale=True)]
    assert any(n.endswith(".timescale.sql") for n in names)
    assert not any(n.endswith(".postgres.sql") for n in names)


def test_hypertables_and_continuous_aggregates_exist(run: dict[str, Any]) -> None:
    assert run["hypertables"] == [
        {"hypertable_name": "device_agg_1m", "num_dimensions": 1, "compression_enabled": True},
        {"hypertable_name": "site_agg_5m", "num_dimensions": 1, "compression_enabled": False},
    ]
    assert run["chunk_interval"] == [{"time_interval": "1 day"}]
    assert run["caggs"] == [
        {"view_name": "device_agg_1d", "materialized_only": True},
        {"view_name": "device_agg_1h", "materialized_only": True},
    ]
    assert all(len(run[f"job_{p}_{t}"]) == 1 for p, t in POLICIES), "a policy is missing"
    assert [r["device_type"] for r in run["thresholds"]] == ["environmental", "power", "thermal", "vibration"]


def test_views_answer_with_the_same_columns_as_on_plain_postgres(run: dict[str, Any]) -> None:
    actual: dict[str, list[tuple[str, str]]] = {}
    for row in run["views"]:
        actual.setdefault(row["table_name"], []).append((row["column_name"], row["data_type"]))
    assert actual == expected_views()


def test_refreshed_rollups_equal_a_computation_from_raw_readings(run: dict[str, Any]) -> None:
    assert run["before_refresh"] == [{"n": 0}]  # materialized only: nothing before a refresh
    assert_rollups_equal(_typed(run["hourly"], "v_device_1h"), rollup_rows(run["raw"], "1h"))
    assert_rollups_equal(_typed(run["daily"], "v_device_1d"), rollup_rows(run["raw"], "1d"))


def test_compression_policy_and_upsert_into_a_compressed_chunk(run: dict[str, Any]) -> None:
    assert run["chunks"] == [{"n": 3, "compressed": 3}]  # 2001-01-31, 02-01, 02-02: all older than 7 days
    assert run["rewritten"] == [{"reading_count": 99, "temp_max": 999.0, "temp_min": run["minute"]["temp_min"]}]


def test_device_model_added_to_the_compressed_hypertable(run: dict[str, Any]) -> None:
    """Migration 0012 on a hypertable whose every chunk is compressed: the nullable column without a
    default is accepted, compressed rows read it as NULL, and an upsert into a compressed chunk (as the
    job's JDBC sink issues) writes it, read back through the reader view."""
    assert run["chunks"] == [{"n": 3, "compressed": 3}]  # compressed before the migration ran
    assert run["model_column"] == [{"data_type": "text", "is_nullable": "YES", "column_default": None}]
    assert run["model_in_compressed"] == [{"n": len(minute_rows(run["raw"])), "with_model": 0}]
    assert run["model_read"] == [{"device_model": "M-2", "reading_count": 7, "temp_min": run["second"]["temp_min"]}]


def test_alert_trigger_values_read_as_jsonb(run: dict[str, Any]) -> None:
    assert run["alerts"] == [{"kind": "object", "tv": '{"max_temperature_c": 91.5}'}]


def test_retention_drops_chunks_and_keeps_the_rollups(run: dict[str, Any]) -> None:
    dropped = [r["drop_chunks"] for r in run["retention_0"]]
    assert len(dropped) == 3 and all("_hyper_" in d for d in dropped)
    assert run["rows_left"] == [{"n": 0}]
    # Continuous aggregates keep buckets whose raw chunks are gone (until a refresh covers them).
    assert run["hourly_after_retention"] == [{"n": len(run["hourly"])}]
