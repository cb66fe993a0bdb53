"""The aggregation job's results computed independently in plain Python, from the readings that
were produced (the simulator returns them), so tests and the demo can check Flink row by row.

This is deliberately written without any of the job's SQL: one pass over the readings, grouping by
(device, minute) and (site, five minutes), with the definitions stated in sql/aggregates/windows.sql.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MINUTE_MS = 60_000
MEASURES = {"temp": "temperature_c", "humidity": "humidity_pct", "vibration": "vibration_mm_s",
            "battery": "battery_pct"}


@dataclass(frozen=True)
class Reading:
    device_id: str
    site_id: str
    device_type: str
    seq: int
    event_time: int  # epoch ms
    values: Mapping[str, float | None]
    device_model: str | None = None  # the registry version's model as of event_time; None without one


def _stats(points: list[tuple[int, float]]) -> dict[str, float | None]:
    """min/max/avg/first/last/stddev (population) of (event_ms, value) points; None if empty."""
    if not points:
        return dict.fromkeys(("min", "max", "avg", "first", "last", "stddev"))
    values = [v for _, v in points]
    mean = sum(values) / len(values)
    return {
        "min": min(values),
        "max": max(values),
        "avg": mean,
        "first": min(points)[1],  # earliest event time; ties by value, as FIRST_BY_TIME
        "last": max(points)[1],
        "stddev": math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)),
    }


def unique_readings(readings: Iterable[Reading]) -> list[Reading]:
    """Drop re-sent copies: one reading per (device, seq)."""
    seen: dict[tuple[str, int], Reading] = {}
    for reading in readings:
        seen.setdefault((reading.device_id, reading.seq), reading)
    return list(seen.values())


def device_windows_1m(readings: Iterable[Reading]) -> dict[tuple[str, int], dict[str, Any]]:
    """(device, window start ms) -> the columns of device_agg_1m."""
    groups: dict[tuple[str, int], list[Reading]] = defaultdict(list)
    for reading in unique_readings(readings):
        groups[(reading.device_id, reading.event_time - reading.event_time % MINUTE_MS)].append(reading)
    result = {}
    for key, rows in groups.items():
        # site, type and model of the window's first reading by event time (ties: the smallest), as
        # windows.sql; the model is None when that reading has none (at one event time, none first)
        first_model = min((r.event_time, r.device_model is not None, r.device_model or "") for r in rows)
        row: dict[str, Any] = {"site_id": min((r.event_time, r.site_id) for r in rows)[1],
                               "device_type": min((r.event_time, r.device_type) for r in rows)[1],
                               "device_model": first_model[2] if first_model[1] else None,
                               "reading_count": len(rows),
                               "first_event_time": min(r.event_time for r in rows),
                               "last_event_time": max(r.event_time for r in rows)}
        for short, field in MEASURES.items():
            points = [(r.event_time, v) for r in rows if (v := r.values.get(field)) is not None]
            for stat, value in _stats(points).items():
                row[f"{short}_{stat}"] = value
        result[key] = row
    return result


def site_windows_5m(readings: Iterable[Reading]) -> dict[tuple[str, int], dict[str, Any]]:
    """(site, window start ms) -> the columns of site_agg_5m."""
    size = 5 * MINUTE_MS
    groups: dict[tuple[str, int], list[Reading]] = defaultdict(list)
    for reading in unique_readings(readings):
        groups[(reading.site_id, reading.event_time - reading.event_time % size)].append(reading)
    result = {}
    for key, rows in groups.items():
        def values(field: str, rows: list[Reading] = rows) -> list[float]:
            return [v for r in rows if (v := r.values.get(field)) is not None]

        temps = values("temperature_c")
        humidity = values("humidity_pct")
        vibration = values("vibration_mm_s")
        battery = values("battery_pct")
        result[key] = {
            "device_count": len({r.device_id for r in rows}),
            "reading_count": len(rows),
            "temp_avg": sum(temps) / len(temps) if temps else None,
            "temp_min": min(temps, default=None),
            "temp_max": max(temps, default=None),
            "humidity_avg": sum(humidity) / len(humidity) if humidity else None,
            "vibration_max": max(vibration, default=None),
            "battery_min": min(battery, default=None),
        }
    return result


def close(actual: Any, expected: Any, rel: float = 1e-9, abs_tol: float = 1e-9) -> bool:
    """Floats equal within a relative 1e-9 (absolute 1e-9 near zero, e.g. a stddev of 0); other
    values exactly."""
    if isinstance(actual, float) and isinstance(expected, float):
        return math.isclose(actual, expected, rel_tol=rel, abs_tol=abs_tol)
    return bool(actual == expected)


def late_flags(records: Iterable[tuple[int, int, int]], late_after_ms: int) -> list[bool]:
    """For each (Kafka partition, offset, event ms) of the valid readings read: is it late by the job's
    rule (sql/telemetry/lateness.sql)? Late = event time at or more than `late_after_ms` (watermark delay +
    allowed lateness) behind the newest event time read before it or with it in its partition, in offset
    order. A function of the log only, so the same for a live run and any replay."""
    rows = list(records)
    newest: dict[int, int] = {}
    flags = [False] * len(rows)
    for i in sorted(range(len(rows)), key=lambda i: (rows[i][0], rows[i][1])):
        partition, _, event_ms = rows[i]
        newest[partition] = max(newest.get(partition, event_ms), event_ms)
        flags[i] = event_ms <= newest[partition] - late_after_ms
    return flags
