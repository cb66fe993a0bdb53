"""Golden tests for the SQL files: input readings (in arrival order, possibly out of order) and the
rows a view must produce, run on a bounded source in the local MiniCluster.

A fixture is a JSON file next to the SQL it tests (`sql/<area>/tests/<case>.json`):

    {"description": "...",
     "files": ["telemetry/ontime.sql", "telemetry/dedup.sql", "aggregates/windows.sql"],
     "view": "device_windows_1m",
     "input": [{"device_id": "d1", "seq": 1, "event_time": "2026-01-01T00:00:01Z", "temperature_c": 20.0}],
     "expected": [{"device_id": "d1", "window_start": "2026-01-01T00:00:00", "reading_count": 1}]}

The input replaces `telemetry_valid` (the decoded stream the SQL files read), with the same columns
and the same watermark; `expected` lists every output row, with only the columns it names compared
(floats within 1e-9 relative). Timestamps are written ISO 8601 in UTC.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kappa import sqlfiles
from kappa.config import Config
from kappa.flinkenv import JobContext, JobOptions

FIXTURE_GLOB = "*/tests/*.json"
INPUT_COLUMNS = (
    ("device_id", "STRING"), ("site_id", "STRING"), ("device_type", "STRING"), ("seq", "BIGINT"),
    ("event_ms", "BIGINT"), ("status", "STRING"), ("firmware_version", "STRING"), ("temperature_c", "DOUBLE"),
    ("humidity_pct", "DOUBLE"), ("pressure_hpa", "DOUBLE"), ("vibration_mm_s", "DOUBLE"), ("power_w", "DOUBLE"),
    ("battery_pct", "DOUBLE"), ("signal_rssi_dbm", "INT"), ("schema_id", "INT"), ("kafka_partition", "INT"),
    ("kafka_offset", "BIGINT"),
)
DEFAULTS = {"site_id": "site-0", "device_type": "thermal", "status": "OK", "firmware_version": "1.0.0",
            "schema_id": 2, "kafka_partition": 0}


@dataclass(frozen=True)
class Fixture:
    path: Path
    description: str
    files: list[str]
    view: str
    input: list[dict[str, Any]]
    expected: list[dict[str, Any]]


def fixtures(sql_dir: Path = sqlfiles.SQL_DIR) -> list[Fixture]:
    found = []
    for path in sorted(sql_dir.glob(FIXTURE_GLOB)):
        data = json.loads(path.read_text())
        found.append(Fixture(path, data.get("description", ""), data["files"], data["view"], data["input"],
                             data["expected"]))
    return found


def _ms(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _input_lines(rows: list[dict[str, Any]]) -> str:
    lines = []
    for offset, row in enumerate(rows):
        record = {**DEFAULTS, "kafka_offset": offset, **row}
        record["event_ms"] = _ms(record.pop("event_time"))
        lines.append(json.dumps({name: record.get(name) for name, _ in INPUT_COLUMNS}))
    return "\n".join(lines) + "\n"


def _normalize(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat()
    return value


def _matches(actual: dict[str, Any], wanted: dict[str, Any]) -> bool:
    for column, value in wanted.items():
        got = _normalize(actual.get(column))
        if isinstance(value, float) and isinstance(got, float):
            if not math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-9):
                return False
        elif isinstance(value, str) and isinstance(got, str) and "T" in value and "T" in got:
            if datetime.fromisoformat(value.rstrip("Z")) != datetime.fromisoformat(got):
                return False
        elif got != value:
            return False
    return True


def run_fixture(config: Config, fixture: Fixture) -> list[dict[str, Any]]:
    """Run the fixture's SQL files over its input; returns the view's rows (timestamps as ISO text)."""
    ctx = JobContext(config, JobOptions(bounded=True), job_name=f"sqltest-{fixture.path.stem}")
    ctx.t_env.get_config().set("parallelism.default", "1")
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "input.json"
        data.write_text(_input_lines(fixture.input))
        columns = ",\n  ".join(f"{name} {kind}" for name, kind in INPUT_COLUMNS)
        ctx.t_env.execute_sql(
            f"""CREATE TEMPORARY TABLE telemetry_valid (
  {columns},
  event_time AS TO_TIMESTAMP_LTZ(event_ms, 3),
  WATERMARK FOR event_time AS event_time - INTERVAL '{config.job.watermark_delay_s}' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{data}', 'format' = 'json',
        'scan.watermark.emit.strategy' = 'on-event')"""
        )
        ctx.execute_file("telemetry/functions.sql")
        for name in fixture.files:
            ctx.execute_file(name)
        table = ctx.t_env.sql_query(f"SELECT * FROM {fixture.view}")
        names = table.get_schema().get_field_names()
        casts = ", ".join(
            f"CAST(`{n}` AS TIMESTAMP(3)) AS `{n}`" if "LOCAL" in str(t).upper() or "LTZ" in str(t).upper()
            else f"`{n}`"
            for n, t in zip(names, table.get_schema().get_field_data_types(), strict=True)
        )
        with ctx.t_env.sql_query(f"SELECT {casts} FROM {fixture.view}").execute().collect() as results:
            return [{n: _normalize(v) for n, v in zip(names, row, strict=True)} for row in results]


def check(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> list[str]:
    """Problems: expected rows not produced (once each), and rows produced but not expected."""
    remaining = list(actual)
    problems = []
    for wanted in expected:
        match = next((row for row in remaining if _matches(row, wanted)), None)
        if match is None:
            problems.append(f"missing: {wanted}")
        else:
            remaining.remove(match)
    problems += [f"unexpected: {row}" for row in remaining]
    return problems
