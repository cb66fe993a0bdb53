"""Deterministic IoT fleet simulator: realistic telemetry, planted anomalies and injected faults.

Why: the pipeline's tests need input whose correct output is known. Everything derives from the
seed and a fixed start time (never the wall clock), the manifest states exactly what was planted
and injected, and `simulate()` returns the produced records so tests compute expectations on
their own.

Stream model. Every device reads every `interval_s` (with a fixed per-device phase and small jitter).
Readings are sent in event-time order, except injected faults, which are sent later:
  * out_of_order: sent after newer readings, but at most `out_of_order_max_s` (default: the
    watermark delay) behind the newest event time sent so far -> still on time for Flink.
  * late: sent at least watermark delay + `late_margin_s` behind -> dropped by event-time windows.
  * duplicate: the same bytes (same device + seq) sent again shortly after the original.
  * malformed: one batch per dead-letter reason (bad magic, too short, unknown schema id, corrupt
    body, NaN value, far-future event time), keyed by a real device id.
A reading's category is decided by its actual lateness in the global send order
(max event time sent before it minus its own): 0 -> valid, (0, delay] -> out_of_order,
> delay -> late. Kafka timestamp = event time, except for far-future records (brokers reject
timestamps more than `log.message.timestamp.after.max.ms` ahead), which carry their send position.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

DEFAULT_START = "2026-01-01T00:00:00Z"
DEVICE_TYPES = ("thermal", "vibration", "environmental", "power")
MEASUREMENTS: dict[str, tuple[str, ...]] = {
    "thermal": ("temperature_c", "battery_pct"),
    "vibration": ("temperature_c", "vibration_mm_s", "battery_pct"),
    "environmental": ("temperature_c", "humidity_pct", "pressure_hpa", "battery_pct"),
    "power": ("temperature_c", "power_w"),
}
ALL_MEASUREMENTS = (
    "temperature_c",
    "humidity_pct",
    "pressure_hpa",
    "vibration_mm_s",
    "power_w",
    "battery_pct",
)
# Rule thresholds the planted anomalies are built around (also written to the manifest).
OVERHEAT_C = {"thermal": 85.0, "vibration": 80.0, "environmental": 50.0, "power": 90.0}
VIBRATION_SPIKE_MM_S = 20.0
LOW_BATTERY_PCT = 15.0
TREND_READINGS = 12
TREND_MIN_RISE_C = 9.0
LOW_BATTERY_READINGS = 10
SILENCE_S = 180.0
VIB_HEAT_WITHIN_S = 60.0
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z: in the future for any sane reference
UNKNOWN_SCHEMA_ID = 2_146_000_000  # never assigned by a registry in practice
INVALID_SEQ_BASE = 1_000_000_000  # seq of injected invalid readings, clear of real sequences
SCHEMA_DIR = Path("schemas/avro/telemetry")
MALFORMED_KINDS: dict[str, str] = {
    "bad_magic": "BAD_MAGIC",
    "too_short": "TOO_SHORT",
    "unknown_schema_id": "UNKNOWN_SCHEMA_ID",
    "corrupt_body": "CORRUPT_BODY",
    "nan_value": "INVALID_VALUE",
    "far_future": "FUTURE_EVENT_TIME",
    # poison pills (schemas/avro/telemetry/limits.json): well-formed Avro a sink would fail on
    "nul_in_id": "INVALID_VALUE",  # a NUL byte in device_id (PostgreSQL text cannot hold it)
    "empty_id": "INVALID_VALUE",  # device_id ""
    "long_id": "INVALID_VALUE",  # site_id far over its length limit
    "absurd_value": "INVALID_VALUE",  # finite but impossible: humidity 1e300, battery -5
    "oversized": "OVERSIZED",  # a record near Kafka's 1 MB limit: dead-lettered without its payload
}
OVERSIZED_RECORD_BYTES = 960_000  # under the producer's default message.max.bytes (1,000,000)
# Through the edge (`--via mqtt`) the devices publish the payload contract of schemas/mqtt/: these are
# the kinds of bad payload, with the reason the bridge dead-letters them for, except far_future, which
# is a well-formed reading the bridge forwards and the jobs dead-letter.
EDGE_MALFORMED_KINDS: dict[str, str] = {
    "not_json": "NOT_JSON",
    "missing_field": "MISSING_FIELD",
    "bad_field": "BAD_FIELD",
    "identity_mismatch": "IDENTITY_MISMATCH",
    "oversized": "PAYLOAD_TOO_LARGE",
    "bad_avro": "BAD_AVRO",
    "far_future": "FUTURE_EVENT_TIME",
}
JOB_REJECTED_EDGE_KINDS = frozenset({"far_future"})
VIA = ("kafka", "mqtt")
ANOMALY_KINDS = ("vibration_then_heat", "low_battery", "overheating", "temperature_trend", "silent")


class Category(StrEnum):
    VALID = "valid"
    OUT_OF_ORDER = "out_of_order"
    LATE = "late"
    DUPLICATE = "duplicate"
    MALFORMED = "malformed"


def parse_time_ms(text: str) -> int:
    """ISO 8601 (a trailing Z allowed; naive means UTC) -> epoch milliseconds."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class SimulationSpec:
    """What to simulate; fractions are of the distinct readings, `malformed` is per malformed kind."""

    devices: int = 12
    sites: int = 3
    readings_per_device: int = 60
    interval_s: float = 10.0
    seed: int = 42
    start_ms: int = parse_time_ms(DEFAULT_START)
    topic: str | None = None
    anomalies: bool = True
    overheat_run: int = 5
    out_of_order: float = 0.0
    out_of_order_max_s: float | None = None  # None: the watermark delay
    late: float = 0.0
    late_margin_s: float = 120.0
    duplicates: float = 0.0
    malformed: int = 0
    v1_fraction: float = 0.0
    v3_fraction: float = 0.0  # of the readings not written with v1: new firmware reporting uptime_s
    watermark_delay_s: float | None = None  # None: config.job.watermark_delay_s
    auto_register: bool = True
    transactional_id: str | None = None
    progress_every: int = 10_000
    rate: float | None = None  # records/s to produce at; None: as fast as the broker takes them
    via: str = "kafka"  # "mqtt": the devices publish through the broker and the bridge
    offline_devices: int = 0  # devices that go offline once, buffer, then send their backlog
    offline_s: float = 600.0  # how long each of them is offline (simulated time)
    reconnect_storms: int = 0  # (mqtt) times every device disconnects and reconnects at once


@dataclass
class ProducedRecord:
    """One Kafka record as produced; `row` is the flat row the decoder must return (None if malformed)."""

    index: int
    key: str
    value: bytes
    timestamp_ms: int
    category: Category
    device_id: str
    seq: int
    event_time: int
    schema_version: int | None
    row: dict[str, Any] | None
    reason: str | None = None
    malformed_kind: str | None = None
    lateness_ms: int = 0
    partition: int | None = None
    offset: int | None = None
    send_ms: int = 0  # the simulated time the device sent it (the order records are produced in)
    rejected_at: str | None = None  # malformed only: "edge" (the bridge) or "job" (the Flink jobs)
    backlog: bool = False  # sent late because the device was offline and buffered it


@dataclass
class Manifest:
    """Exact account of a run; `records` stays in memory (too big for the JSON file)."""

    data: dict[str, Any]
    records: list[ProducedRecord] = field(repr=False, default_factory=list)
    elapsed_s: float = field(default=0.0, compare=False)  # not in `data`: the file stays reproducible

    def to_json(self) -> str:
        return json.dumps(self.data, indent=2, sort_keys=False, allow_nan=False)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n")


@dataclass(frozen=True)
class _Device:
    index: int
    device_id: str
    site_id: str
    device_type: str
    firmware: str
    phase_ms: int
    temp_base: float
    temp_amp: float
    temp_drift_per_day: float
    noise: float
    vib_base: float
    power_rated: float
    battery_start: float | None
    battery_drain: float
    rssi_base: int | None
    location: dict[str, Any]


@dataclass
class _Reading:
    device: _Device
    seq: int
    event_time: int
    values: dict[str, float | None]
    status: str
    rssi: int | None
    protected: bool = False  # part of a planted anomaly: never made late
    version: int = 2
    index: int = 0


@dataclass
class _Plan:
    kind: str
    device: _Device
    start: int  # first slot
    length: int  # slots
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Pending:
    send_time: int
    tie: int
    key: str
    value: bytes
    timestamp_ms: int
    category: Category
    device_id: str
    seq: int
    event_time: int
    schema_version: int | None
    row: dict[str, Any] | None
    reason: str | None = None
    malformed_kind: str | None = None
    rejected_at: str | None = None
    backlog: bool = False
