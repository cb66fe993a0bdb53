"""Shared by the alerting job's integration tests: its alerts against the simulator's planted anomalies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from kappa import outputs
from kappa.simulate import Manifest

KIND_TO_TYPE = {"overheating": "OVERHEATING", "temperature_trend": "TEMPERATURE_TREND",
                "vibration_then_heat": "VIBRATION_THEN_HEAT", "low_battery": "LOW_BATTERY", "silent": "DEVICE_SILENT"}
SIMULATOR_INTERVAL_MS = 11_000  # the simulator's reading interval


def ms(value: datetime) -> int:
    return int(value.replace(tzinfo=UTC).timestamp() * 1000)


def alert_rows(conn: psycopg.Connection, suffix: str) -> list[dict[str, Any]]:
    cursor = conn.execute(sql.SQL("SELECT * FROM {} ORDER BY device_id, first_event_time").format(
        sql.Identifier("alerts" + outputs.check_suffix(suffix))))
    names = [c.name for c in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def planted_anomalies(manifest: Manifest) -> list[dict[str, Any]]:
    """The anomalies the alerting job must find; every kind must be there, or the data is too small."""
    anomalies = [a for a in manifest.data["anomalies"] if a["kind"] in KIND_TO_TYPE]
    assert {a["kind"] for a in anomalies} == set(KIND_TO_TYPE), manifest.data["skipped_anomalies"]
    return anomalies


def assert_alerts_match_planted(rows: list[dict[str, Any]], manifest: Manifest) -> None:
    """Every planted anomaly raised its alert, at its first reading, and nothing else was raised."""
    anomalies = planted_anomalies(manifest)
    got = {(r["device_id"], r["alert_type"]) for r in rows}
    planted = {(a["device_id"], KIND_TO_TYPE[a["kind"]]) for a in anomalies}
    assert got == planted, f"missing {sorted(planted - got)}; unexpected {sorted(got - planted)}"
    assert len(rows) == len(planted), [(r["device_id"], r["alert_type"]) for r in rows]
    for a in anomalies:
        (row,) = [r for r in rows if r["device_id"] == a["device_id"] and r["alert_type"] == KIND_TO_TYPE[a["kind"]]]
        first, last = ms(row["first_event_time"]), ms(row["last_event_time"])
        if a["kind"] == "temperature_trend":  # the rise may begin one reading before the ramp
            assert a["first_event_time"] - SIMULATOR_INTERVAL_MS <= first <= a["first_event_time"], (a, row)
        else:
            assert first == a["first_event_time"], (a, row)
        assert first < last <= a["last_event_time"], (a, row)
        if a["kind"] == "silent":  # raised when the watermark passed the bound, resolved by the next reading
            assert last == a["last_event_time"] and row["trigger_values_json"]["resolved"] == 1.0, (a, row)
        if a["kind"] == "vibration_then_heat":
            assert last == a["temperature_event_time"]
