"""Shared by the migration tests on plain PostgreSQL and on TimescaleDB (PGlite): synthetic raw
readings, their one-minute aggregates (device_agg_1m rows) and the hourly/daily rollups expected
from the raw readings themselves, so the count-weighted means and pooled deviations of the rollups
are checked against a direct computation, not against the same formula."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kappa.config import PROJECT_ROOT

EXPECTED_VIEWS_FILE = PROJECT_ROOT / "tests" / "timescale" / "expected_views.json"
MEASUREMENTS = {
    "temp": "temperature_c",
    "humidity": "humidity_pct",
    "vibration": "vibration_mm_s",
    "battery": "battery_pct",
}
DEVICE_TYPES = {"dev-t": ("thermal", "site-a"), "dev-v": ("vibration", "site-a"), "dev-e": ("environmental", "site-b")}
PRESENT = {  # which measurements a device type sends (as kappa.simulate does)
    "thermal": ("temp", "battery"),
    "vibration": ("temp", "vibration", "battery"),
    "environmental": ("temp", "humidity", "battery"),
}


def expected_views() -> dict[str, list[tuple[str, str]]]:
    """View name -> [(column, information_schema data_type)], what both backends must answer."""
    data = json.loads(Path(EXPECTED_VIEWS_FILE).read_text())
    return {view: [(c, t) for c, t in cols] for view, cols in data.items()}


@dataclass
class Reading:
    device_id: str
    event_time: datetime
    values: dict[str, float]


def readings(start: datetime, minutes: int, seed: int = 7) -> list[Reading]:
    """1-5 readings per device and minute (some minutes skipped) from `start` for `minutes`."""
    rng = random.Random(seed)
    out = []
    for device_id, (dtype, _site) in DEVICE_TYPES.items():
        for minute in range(minutes):
            if rng.random() < 0.1:
                continue
            for _ in range(rng.randint(1, 5)):
                t = start + timedelta(minutes=minute, seconds=rng.randint(0, 59), milliseconds=rng.randint(0, 999))
                vals = {
                    "temp": rng.uniform(15.0, 95.0),
                    "humidity": rng.uniform(20.0, 90.0),
                    "vibration": rng.uniform(0.1, 30.0),
                    "battery": rng.uniform(5.0, 100.0),
                }
                out.append(Reading(device_id, t, {m: round(v, 3) for m, v in vals.items() if m in PRESENT[dtype]}))
    return out


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"min": None, "max": None, "avg": None, "stddev": None}
    mean = sum(values) / len(values)
    return {
        "min": min(values),
        "max": max(values),
        "avg": mean,
        "stddev": math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)),
    }


def _bucket(t: datetime, width: str) -> datetime:
    if width == "1m":
        return t.replace(second=0, microsecond=0)
    if width == "1h":
        return t.replace(minute=0, second=0, microsecond=0)
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def _group(rows: list[Reading], width: str) -> dict[tuple[str, datetime], list[Reading]]:
    groups: dict[tuple[str, datetime], list[Reading]] = {}
    for r in sorted(rows, key=lambda r: r.event_time):
        groups.setdefault((r.device_id, _bucket(r.event_time, width)), []).append(r)
    return groups


def minute_rows(rows: list[Reading]) -> list[dict[str, Any]]:
    """device_agg_1m rows (column -> value) computed from the raw readings."""
    out = []
    for (device_id, start), group in sorted(_group(rows, "1m").items()):
        dtype, site = DEVICE_TYPES[device_id]
        row: dict[str, Any] = {
            "device_id": device_id,
            "site_id": site,
            "device_type": dtype,
            "window_start": start,
            "window_end": start + timedelta(minutes=1),
            "reading_count": len(group),
        }
        for m in MEASUREMENTS:
            values = [r.values[m] for r in group if m in r.values]
            for stat, v in _stats(values).items():
                row[f"{m}_{stat}"] = v
            row[f"{m}_first"] = values[0] if values else None
            row[f"{m}_last"] = values[-1] if values else None
        row["first_event_time"] = group[0].event_time
        row["last_event_time"] = group[-1].event_time
        out.append(row)
    return out


def rollup_rows(rows: list[Reading], width: str) -> dict[tuple[str, datetime], dict[str, Any]]:
    """(device_id, bucket start) -> expected v_device_1h / v_device_1d columns, from raw readings."""
    minutes = {(r["device_id"], r["window_start"]) for r in minute_rows(rows)}
    out = {}
    for (device_id, start), group in _group(rows, width).items():
        dtype, site = DEVICE_TYPES[device_id]
        row: dict[str, Any] = {
            "device_id": device_id,
            "site_id": site,
            "device_type": dtype,
            "window_start": start,
            "window_count": sum(1 for d, s in minutes if d == device_id and _bucket(s, width) == start),
            "reading_count": len(group),
            "first_event_time": group[0].event_time,
            "last_event_time": group[-1].event_time,
        }
        for m in MEASUREMENTS:
            for stat, v in _stats([r.values[m] for r in group if m in r.values]).items():
                row[f"{m}_{stat}"] = v
        out[(device_id, start)] = row
    return out


def sql_value(value: Any) -> str:
    """A SQL literal for the test data (the PGlite driver takes SQL text: no COPY, no parameters)."""
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return f"'{value.isoformat(sep=' ')}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def insert_sql(table: str, rows: list[dict[str, Any]]) -> str:
    columns = list(rows[0])
    values = ",\n".join("(" + ", ".join(sql_value(r[c]) for c in columns) + ")" for r in rows)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES\n{values}"


def assert_rollups_equal(actual: list[dict[str, Any]], expected: dict[tuple[str, datetime], dict[str, Any]]) -> None:
    """Compare rollup rows read back (timestamps as datetime) with `rollup_rows`."""
    import pytest

    got = {(r["device_id"], r["window_start"]): r for r in actual}
    assert got.keys() == expected.keys()
    for key, want in expected.items():
        row = got[key]
        for column, value in want.items():
            if isinstance(value, float):
                assert row[column] == pytest.approx(value, rel=1e-9, abs=1e-6), (key, column)
            else:
                assert row[column] == value, (key, column)
