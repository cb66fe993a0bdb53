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

import argparse
import io
import json
import math
import random
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import fastavro
import requests

from kappa.config import Config
from kappa.registry import credentials
from kappa.schemas import read_schema

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
}
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
    watermark_delay_s: float | None = None  # None: config.job.watermark_delay_s
    auto_register: bool = True
    transactional_id: str | None = None
    progress_every: int = 10_000
    rate: float | None = None  # records/s to produce at; None: as fast as the broker takes them


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


# ----------------------------------------------------------------------------- fleet and signals


def _fleet(spec: SimulationSpec, rng: random.Random) -> list[_Device]:
    interval_ms = _interval_ms(spec)
    sites = [
        (f"site-{s:02d}", rng.uniform(45.0, 55.0), rng.uniform(0.0, 15.0), rng.uniform(20.0, 600.0))
        for s in range(spec.sites)
    ]
    devices = []
    for i in range(spec.devices):
        dtype = DEVICE_TYPES[i % len(DEVICE_TYPES)]
        site_id, lat, lon, alt = sites[rng.randrange(len(sites))]
        temp_base = {"thermal": 55.0, "vibration": 40.0, "environmental": 21.0, "power": 45.0}[dtype]
        has_battery = dtype != "power"
        battery_start = round(rng.uniform(55.0, 100.0), 2) if has_battery else None
        devices.append(
            _Device(
                index=i,
                device_id=f"dev-{i:05d}",
                site_id=site_id,
                device_type=dtype,
                firmware=rng.choice(("1.4.2", "1.5.0", "2.0.1")),
                phase_ms=rng.randrange(interval_ms),
                temp_base=temp_base + rng.uniform(-3.0, 3.0),
                temp_amp=rng.uniform(2.0, 5.0) if dtype == "environmental" else rng.uniform(1.0, 3.0),
                temp_drift_per_day=rng.uniform(-0.5, 0.5),
                noise=rng.uniform(0.1, 0.4),
                vib_base=rng.uniform(1.5, 4.0),
                power_rated=rng.uniform(800.0, 2500.0),
                battery_start=battery_start,
                battery_drain=rng.uniform(0.0, 20.0 / max(spec.readings_per_device, 1)),
                rssi_base=None if dtype == "power" else rng.randint(-95, -55),
                location={
                    "lat": round(lat + rng.uniform(-0.002, 0.002), 6),
                    "lon": round(lon + rng.uniform(-0.002, 0.002), 6),
                    "alt_m": None if dtype == "power" else round(alt + rng.uniform(0.0, 15.0), 1),
                },
            )
        )
    return devices


def _interval_ms(spec: SimulationSpec) -> int:
    return max(1, round(spec.interval_s * 1000))


def _normal_values(dev: _Device, t: int, k: int, start_ms: int, rng: random.Random, pressure: float) -> dict:
    hours = (t / 3_600_000.0) % 24.0
    daily = math.sin(2 * math.pi * (hours - 9.0) / 24.0)  # peaks mid-afternoon
    load = 0.5 + 0.5 * daily
    days = (t - start_ms) / 86_400_000.0
    values: dict[str, float | None] = dict.fromkeys(ALL_MEASUREMENTS)
    temp = dev.temp_base + dev.temp_amp * daily + dev.temp_drift_per_day * days + rng.gauss(0.0, dev.noise)
    values["temperature_c"] = round(temp, 2)
    if dev.device_type == "environmental":
        values["humidity_pct"] = round(min(99.0, max(5.0, 50.0 - 15.0 * daily + rng.gauss(0.0, 1.5))), 1)
        values["pressure_hpa"] = round(pressure, 1)
    if dev.device_type == "vibration":
        values["vibration_mm_s"] = round(dev.vib_base * (0.8 + 0.3 * load) + abs(rng.gauss(0.0, 0.2)), 3)
    if dev.device_type == "power":
        values["power_w"] = round(
            dev.power_rated * (0.5 + 0.4 * load) + rng.gauss(0.0, dev.power_rated * 0.02), 1
        )
    if dev.battery_start is not None:
        values["battery_pct"] = round(max(20.0, dev.battery_start - dev.battery_drain * k), 2)
    return values


# ----------------------------------------------------------------------------- anomalies


def _anomaly_length(kind: str, spec: SimulationSpec) -> int:
    return {
        "overheating": spec.overheat_run,
        "temperature_trend": TREND_READINGS,
        "vibration_then_heat": 3,
        "low_battery": LOW_BATTERY_READINGS,
        "silent": max(3, math.ceil(SILENCE_S * 1000 / _interval_ms(spec))),
    }[kind]


def _eligible(kind: str, dev: _Device) -> bool:
    if kind == "vibration_then_heat":
        return dev.device_type == "vibration"
    if kind == "low_battery":
        return dev.battery_start is not None
    return True


def _plan_anomalies(
    spec: SimulationSpec, devices: list[_Device], rng: random.Random
) -> tuple[list[_Plan], list]:
    plans: list[_Plan] = []
    skipped: list[dict[str, str]] = []
    if not spec.anomalies:
        return plans, skipped
    used: set[int] = set()
    for kind in ANOMALY_KINDS:
        length = _anomaly_length(kind, spec)
        candidates = [d for d in devices if d.index not in used and _eligible(kind, d)]
        if not candidates or spec.readings_per_device < length + 6:
            why = "no eligible unused device" if not candidates else "too few readings per device"
            skipped.append({"kind": kind, "why": why})
            continue
        dev = rng.choice(candidates)
        used.add(dev.index)
        start = rng.randint(3, spec.readings_per_device - length - 3)
        plans.append(_Plan(kind, dev, start, length))
    return plans, skipped


def _apply_anomaly(plan: _Plan, slot: int, reading: _Reading, rng: random.Random) -> None:
    """Override a normal reading inside a planted anomaly (slot is relative to plan.start)."""
    values, dtype = reading.values, plan.device.device_type
    reading.protected = True
    if plan.kind == "overheating":
        values["temperature_c"] = round(OVERHEAT_C[dtype] + rng.uniform(2.0, 8.0), 2)
        reading.status = "FAULT"
    elif plan.kind == "temperature_trend":
        if slot == 0:
            base = values["temperature_c"] or 0.0
            step = rng.uniform(0.9, 1.3)  # rise over the run >= TREND_MIN_RISE_C
            # keep the whole ramp below the overheating threshold so only the trend rule fires
            base = min(base, OVERHEAT_C[dtype] - 2.0 - step * (plan.length - 1))
            plan.params.update(base=base, step=step)
        values["temperature_c"] = round(plan.params["base"] + plan.params["step"] * slot, 2)
        reading.status = "WARN" if slot >= plan.length // 2 else "OK"
    elif plan.kind == "vibration_then_heat":
        if slot == 0:
            values["vibration_mm_s"] = round(rng.uniform(25.0, 40.0), 3)
            reading.status = "WARN"
        elif slot == plan.length - 1:
            values["temperature_c"] = round(OVERHEAT_C[dtype] + rng.uniform(1.0, 5.0), 2)
            reading.status = "FAULT"
    elif plan.kind == "low_battery":
        values["battery_pct"] = round(max(3.0, 14.0 - 0.5 * slot - rng.uniform(0.0, 2.0)), 2)
        reading.status = "WARN"


def _describe_anomaly(plan: _Plan, readings: list[_Reading], spec: SimulationSpec) -> dict[str, Any]:
    dev = plan.device
    base: dict[str, Any] = {
        "kind": plan.kind,
        "device_id": dev.device_id,
        "device_type": dev.device_type,
        "site_id": dev.site_id,
    }
    if plan.kind == "silent":
        before = max((r for r in readings if r.seq < plan.params["first_missing_seq"]), key=lambda r: r.seq)
        after = min((r for r in readings if r.seq > plan.params["last_missing_seq"]), key=lambda r: r.seq)
        return base | {
            "first_event_time": before.event_time,
            "last_event_time": after.event_time,
            "gap_ms": after.event_time - before.event_time,
            "missing_readings": plan.length,
            "missing_seqs": [plan.params["first_missing_seq"], plan.params["last_missing_seq"]],
            "silence_threshold_s": SILENCE_S,
        }
    span = [r for r in readings if r.protected]
    first, last = span[0], span[-1]
    out: dict[str, Any] = base | {
        "first_event_time": first.event_time,
        "last_event_time": last.event_time,
        "first_seq": first.seq,
        "last_seq": last.seq,
        "readings": len(span),
    }
    if plan.kind == "overheating":
        out |= {
            "threshold_c": OVERHEAT_C[dev.device_type],
            "temperature_c": [r.values["temperature_c"] for r in span],
        }
    elif plan.kind == "temperature_trend":
        temps = [r.values["temperature_c"] or 0.0 for r in span]
        out |= {
            "temperature_c": temps,
            "rise_c": round(temps[-1] - temps[0], 2),
            "min_rise_c": TREND_MIN_RISE_C,
            "threshold_c": OVERHEAT_C[dev.device_type],
        }
    elif plan.kind == "vibration_then_heat":
        out |= {
            "vibration_event_time": first.event_time,
            "vibration_mm_s": first.values["vibration_mm_s"],
            "vibration_threshold_mm_s": VIBRATION_SPIKE_MM_S,
            "temperature_event_time": last.event_time,
            "temperature_c": last.values["temperature_c"],
            "temperature_threshold_c": OVERHEAT_C[dev.device_type],
            "within_s": VIB_HEAT_WITHIN_S,
        }
    elif plan.kind == "low_battery":
        out |= {"threshold_pct": LOW_BATTERY_PCT, "battery_pct": [r.values["battery_pct"] for r in span]}
    return out


# ----------------------------------------------------------------------------- readings


def _readings(
    spec: SimulationSpec,
    devices: list[_Device],
    plans: list[_Plan],
    rng: random.Random,
    anomaly_rng: random.Random,
) -> dict[str, list[_Reading]]:
    """Per-device series; `rng` drives the normal signals so planting anomalies does not change them."""
    interval_ms = _interval_ms(spec)
    by_plan = {p.device.index: p for p in plans}
    out: dict[str, list[_Reading]] = {}
    for dev in devices:
        plan = by_plan.get(dev.index)
        seq0 = rng.randrange(1, 50_000)
        pressure = 1013.0 + rng.uniform(-8.0, 8.0)
        series: list[_Reading] = []
        for k in range(spec.readings_per_device):
            t = spec.start_ms + dev.phase_ms + k * interval_ms + rng.randrange(max(1, interval_ms // 10))
            pressure = 1013.0 + 0.98 * (pressure - 1013.0) + rng.gauss(0.0, 0.3)
            values = _normal_values(dev, t, k, spec.start_ms, rng, pressure)
            rssi = None if dev.rssi_base is None else int(round(dev.rssi_base + rng.gauss(0.0, 3.0)))
            reading = _Reading(dev, seq0 + k, t, values, "OK", rssi)
            if plan is not None and plan.start <= k < plan.start + plan.length:
                if plan.kind == "silent":  # lost: the sequence number is consumed, nothing is sent
                    plan.params.setdefault("first_missing_seq", seq0 + k)
                    plan.params["last_missing_seq"] = seq0 + k
                    continue
                _apply_anomaly(plan, k - plan.start, reading, anomaly_rng)
            if plan is not None and plan.kind == "silent" and k in (plan.start - 1, plan.start + plan.length):
                reading.protected = True  # the readings bounding the gap
            series.append(reading)
        out[dev.device_id] = series
    return out


# ----------------------------------------------------------------------------- encoding


def _parsed_schema(root: Path, version: int) -> Any:
    return fastavro.parse_schema(json.loads((root / SCHEMA_DIR / f"v{version}.avsc").read_text()))


def _avro_record(r: _Reading, version: int, event_time: int | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "device_id": r.device.device_id,
        "site_id": r.device.site_id,
        "device_type": r.device.device_type,
        "seq": r.seq,
        "event_time": r.event_time if event_time is None else event_time,
        "status": r.status,
        "firmware_version": r.device.firmware,
        **r.values,
    }
    if version >= 2:
        rec["signal_rssi_dbm"] = r.rssi
        rec["location"] = dict(r.device.location)
    return rec


def _flat_row(rec: dict[str, Any], schema_id: int) -> dict[str, Any]:
    row = {k: v for k, v in rec.items() if k != "location"}
    row.setdefault("signal_rssi_dbm", None)
    loc = rec.get("location") or {}
    for sub in ("lat", "lon", "alt_m"):
        row[f"location_{sub}"] = loc.get(sub)
    row["schema_id"] = schema_id
    return row


def _frame(schema_id: int, parsed: Any, rec: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(buf, parsed, rec)
    return buf.getvalue()


# ----------------------------------------------------------------------------- building the stream


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


def _build(
    config: Config, spec: SimulationSpec, schema_ids: dict[int, int]
) -> tuple[list[ProducedRecord], dict[str, Any]]:
    if spec.devices < 1 or spec.readings_per_device < 1 or spec.sites < 1:
        raise ValueError("devices, sites and readings_per_device must be >= 1")
    if spec.overheat_run < 1:
        raise ValueError("overheat_run must be >= 1")
    for name in ("out_of_order", "late", "duplicates", "v1_fraction"):
        if not 0.0 <= getattr(spec, name) <= 1.0:
            raise ValueError(f"{name} must be a fraction in [0, 1]")
    interval_ms = _interval_ms(spec)
    delay_ms = round(
        1000 * (config.job.watermark_delay_s if spec.watermark_delay_s is None else spec.watermark_delay_s)
    )
    ooo_max_ms = delay_ms if spec.out_of_order_max_s is None else round(spec.out_of_order_max_s * 1000)
    if ooo_max_ms > delay_ms or (spec.out_of_order > 0 and ooo_max_ms < 1):
        raise ValueError("out_of_order_max_s must be in (0, watermark delay]")
    margin_ms = round(spec.late_margin_s * 1000)
    fleet_rng = random.Random(f"{spec.seed}:fleet")
    anomaly_rng = random.Random(f"{spec.seed}:anomalies")
    fault_rng = random.Random(f"{spec.seed}:faults")
    signal_rng = random.Random(f"{spec.seed}:signals")

    devices = _fleet(spec, fleet_rng)
    plans, skipped = _plan_anomalies(spec, devices, anomaly_rng)
    per_device = _readings(spec, devices, plans, signal_rng, anomaly_rng)
    anomalies = [_describe_anomaly(p, per_device[p.device.device_id], spec) for p in plans]
    readings = sorted(
        (r for rs in per_device.values() for r in rs), key=lambda r: (r.event_time, r.device.index)
    )
    for i, r in enumerate(readings):
        r.index = i
    n = len(readings)
    first_t, last_t = readings[0].event_time, readings[-1].event_time

    for i in sorted(fault_rng.sample(range(n), round(spec.v1_fraction * n))):
        readings[i].version = 1
    late_shift = delay_ms + margin_ms
    late_candidates = [
        r.index
        for r in readings
        if not r.protected and r.event_time + late_shift + margin_ms // 2 + interval_ms <= last_t
    ]
    late_idx = set(fault_rng.sample(late_candidates, min(len(late_candidates), round(spec.late * n))))
    ooo_candidates = [r.index for r in readings if r.index not in late_idx]
    ooo_idx = set(fault_rng.sample(ooo_candidates, min(len(ooo_candidates), round(spec.out_of_order * n))))
    dup_candidates = [r.index for r in readings if r.index not in late_idx]
    dup_idx = sorted(fault_rng.sample(dup_candidates, min(len(dup_candidates), round(spec.duplicates * n))))

    parsed = {v: _parsed_schema(config.root, v) for v in (1, 2)}
    pending: list[_Pending] = []
    send_of: dict[int, int] = {}
    for r in readings:
        rec = _avro_record(r, r.version)
        sid = schema_ids[r.version]
        if r.index in late_idx:
            send, tie = r.event_time + late_shift + fault_rng.randrange(margin_ms // 2 + 1), 1
        elif r.index in ooo_idx:
            send, tie = r.event_time + fault_rng.randint(1, ooo_max_ms), 1
        else:
            send, tie = r.event_time, 0
        send_of[r.index] = send
        pending.append(
            _Pending(
                send,
                tie,
                r.device.device_id,
                _frame(sid, parsed[r.version], rec),
                r.event_time,
                Category.VALID,
                r.device.device_id,
                r.seq,
                r.event_time,
                r.version,
                _flat_row(rec, sid),
            )
        )
    for i in dup_idx:
        orig = pending[i]
        send = send_of[i] + fault_rng.randint(1, max(1, ooo_max_ms))
        pending.append(
            _Pending(
                send,
                1,
                orig.key,
                orig.value,
                orig.timestamp_ms,
                Category.DUPLICATE,
                orig.device_id,
                orig.seq,
                orig.event_time,
                orig.schema_version,
                dict(orig.row or {}),
            )
        )
    pending.extend(_malformed(spec, devices, readings, schema_ids, parsed[2], fault_rng, first_t, last_t))

    order = sorted(range(len(pending)), key=lambda j: (pending[j].send_time, pending[j].tie, j))
    records: list[ProducedRecord] = []
    max_seen = -(2**63)
    for index, j in enumerate(order):
        p = pending[j]
        lateness = 0
        category = p.category
        if p.category is not Category.MALFORMED:
            lateness = max(0, max_seen - p.event_time)
            max_seen = max(max_seen, p.event_time)
            if p.category is Category.VALID and lateness > delay_ms:
                category = Category.LATE
            elif p.category is Category.VALID and lateness > 0:
                category = Category.OUT_OF_ORDER
        records.append(
            ProducedRecord(
                index,
                p.key,
                p.value,
                p.timestamp_ms,
                category,
                p.device_id,
                p.seq,
                p.event_time,
                p.schema_version,
                p.row,
                p.reason,
                p.malformed_kind,
                lateness,
            )
        )
    context = {
        "devices": devices,
        "anomalies": anomalies,
        "skipped": skipped,
        "delay_ms": delay_ms,
        "ooo_max_ms": ooo_max_ms,
        "margin_ms": margin_ms,
        "first_t": first_t,
        "last_t": last_t,
        "requested": {"late": len(late_idx), "out_of_order": len(ooo_idx), "duplicate": len(dup_idx)},
    }
    return records, context


def _malformed(
    spec: SimulationSpec,
    devices: list[_Device],
    readings: list[_Reading],
    schema_ids: dict[int, int],
    parsed_v2: Any,
    rng: random.Random,
    first_t: int,
    last_t: int,
) -> list[_Pending]:
    """`spec.malformed` records of each kind; each must decode to its dead-letter reason."""
    out: list[_Pending] = []
    counter = 0
    templates: dict[str, _Reading] = {}
    for r in readings:
        templates.setdefault(r.device.device_id, r)
    for kind, reason in MALFORMED_KINDS.items():
        for i in range(spec.malformed):
            dev = devices[rng.randrange(len(devices))]
            send = rng.randint(first_t, last_t)
            template = templates.get(dev.device_id)
            base = _Reading(
                dev,
                INVALID_SEQ_BASE + counter,
                send,
                dict(template.values) if template else dict.fromkeys(ALL_MEASUREMENTS),
                "OK",
                template.rssi if template else None,
            )
            counter += 1
            rec = _avro_record(base, 2)
            event_time = send
            if kind == "bad_magic":  # a misconfigured device sending JSON
                value = json.dumps({k: v for k, v in rec.items() if k != "location"}).encode()
            elif kind == "too_short":
                value = b"\x00\x00\x00" if i % 2 == 0 else b"\x00"
            elif kind == "unknown_schema_id":
                value = _frame(UNKNOWN_SCHEMA_ID, parsed_v2, rec)
            elif kind == "corrupt_body":
                good = _frame(schema_ids[2], parsed_v2, rec)
                if i % 2 == 0:
                    value = good[: len(good) - rng.randint(1, min(8, len(good) - 6))]
                else:
                    value = good + bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
            elif kind == "nan_value":
                rec["temperature_c"] = float("nan")
                value = _frame(schema_ids[2], parsed_v2, rec)
            else:  # far_future: the Kafka timestamp stays at the send position (brokers cap the future)
                rec["event_time"] = event_time = FAR_FUTURE_MS + i * 1000
                value = _frame(schema_ids[2], parsed_v2, rec)
            out.append(
                _Pending(
                    send,
                    1,
                    dev.device_id,
                    value,
                    send,
                    Category.MALFORMED,
                    dev.device_id,
                    base.seq,
                    event_time,
                    None,
                    None,
                    reason,
                    kind,
                )
            )
    return out


# ----------------------------------------------------------------------------- manifest


def _manifest_data(
    config: Config,
    spec: SimulationSpec,
    topic: str,
    schema_ids: dict[int, int],
    records: list[ProducedRecord],
    ctx: dict[str, Any],
    produce: bool,
) -> dict[str, Any]:
    cats = Counter(r.category.value for r in records)
    per_device: dict[str, dict[str, Any]] = {}
    for dev in ctx["devices"]:
        per_device[dev.device_id] = {
            "device_type": dev.device_type,
            "site_id": dev.site_id,
            "firmware_version": dev.firmware,
            "produced": 0,
            "readings": 0,
            **{c.value: 0 for c in Category},
        }
    for r in records:
        d = per_device[r.device_id]
        d["produced"] += 1
        d[r.category.value] += 1
        if r.category in (Category.VALID, Category.OUT_OF_ORDER, Category.LATE):
            d["readings"] += 1
            d["first_seq"] = min(d.get("first_seq", r.seq), r.seq)
            d["last_seq"] = max(d.get("last_seq", r.seq), r.seq)
            d["first_event_time"] = min(d.get("first_event_time", r.event_time), r.event_time)
            d["last_event_time"] = max(d.get("last_event_time", r.event_time), r.event_time)
    decodable = [r for r in records if r.category is not Category.MALFORMED]
    late = [r.lateness_ms for r in records if r.category is Category.LATE]
    ooo = [r.lateness_ms for r in records if r.category is Category.OUT_OF_ORDER]
    partitions = Counter(str(r.partition) for r in records if r.partition is not None)
    return {
        "topic": topic,
        "subject": f"{topic}-value",
        "dry_run": not produce,
        "schema_ids": {f"v{v}": i for v, i in sorted(schema_ids.items())},
        "spec": asdict(spec),
        "start": _iso(spec.start_ms),
        "first_event_time": ctx["first_t"],
        "last_event_time": ctx["last_t"],
        "watermark_delay_ms": ctx["delay_ms"],
        "out_of_order_max_ms": ctx["ooo_max_ms"],
        "late_margin_ms": ctx["margin_ms"],
        "counts": {
            "total": len(records),
            "readings": cats["valid"] + cats["out_of_order"] + cats["late"],
            "valid": cats["valid"],
            "out_of_order": cats["out_of_order"],
            "late": cats["late"],
            "duplicate": cats["duplicate"],
            "malformed": cats["malformed"],
            "malformed_by_reason": dict(sorted(Counter(r.reason for r in records if r.reason).items())),
            "malformed_by_kind": {k: sum(r.malformed_kind == k for r in records) for k in MALFORMED_KINDS},
            "decodable": len(decodable),
            "schema_versions": {
                "v1": sum(r.schema_version == 1 for r in decodable),
                "v2": sum(r.schema_version == 2 for r in decodable),
            },
        },
        "requested_faults": ctx["requested"],
        "lateness_ms": {
            "out_of_order_max": max(ooo, default=0),
            "late_min": min(late, default=0),
        },
        "definitions": {
            "lateness": "max event time sent before the record minus its own event time (global send order)",
            "valid": "lateness 0",
            "out_of_order": "0 < lateness <= watermark_delay_ms",
            "late": "lateness > watermark_delay_ms (injected with >= watermark delay + late margin)",
            "duplicate": "identical bytes of an earlier record (same device_id and seq), sent later",
            "readings": "distinct (device_id, seq): valid + out_of_order + late",
            "decodable": "all but malformed: readings + duplicates",
        },
        "thresholds": {
            "overheat_c": OVERHEAT_C,
            "overheat_run": spec.overheat_run,
            "vibration_spike_mm_s": VIBRATION_SPIKE_MM_S,
            "vibration_then_heat_within_s": VIB_HEAT_WITHIN_S,
            "low_battery_pct": LOW_BATTERY_PCT,
            "low_battery_readings": LOW_BATTERY_READINGS,
            "trend_readings": TREND_READINGS,
            "trend_min_rise_c": TREND_MIN_RISE_C,
            "silence_s": SILENCE_S,
        },
        "anomalies": ctx["anomalies"],
        "skipped_anomalies": ctx["skipped"],
        "partitions": dict(sorted(partitions.items())),
        "per_device": per_device,
    }


# ----------------------------------------------------------------------------- registry and Kafka


def register_schema(url: str, subject: str, schema: str, *, auto: bool, auth: tuple[str, str] | None) -> int:
    """The id of `schema` under `subject`: registered if `auto`, else looked up (must exist)."""
    path = f"/subjects/{subject}/versions" if auto else f"/subjects/{subject}"
    response = requests.post(
        url.rstrip("/") + path,
        json={"schema": schema},
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        auth=auth,
        timeout=30,
    )
    if response.status_code != 200:
        action = "register" if auto else "look up"
        raise RuntimeError(
            f"cannot {action} schema under {subject}: {response.status_code} {response.text[:300]}"
        )
    return int(response.json()["id"])


def _produce(
    config: Config, spec: SimulationSpec, topic: str, records: list[ProducedRecord], log: Callable
) -> None:
    from confluent_kafka import KafkaException, Producer

    conf: dict[str, Any] = {
        "bootstrap.servers": config.kafka.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        "partitioner": "murmur2_random",  # same key -> partition mapping as Java clients
    }
    if spec.transactional_id:
        conf["transactional.id"] = spec.transactional_id
    producer = Producer(conf)
    errors: list[str] = []

    def delivered(record: ProducedRecord) -> Callable[[Any, Any], None]:
        def callback(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(f"record {record.index}: {err}")
            else:
                record.partition, record.offset = msg.partition(), msg.offset()

        return callback

    if spec.transactional_id:
        producer.init_transactions(30)
        producer.begin_transaction()
    started = time.monotonic()
    for i, rec in enumerate(records, 1):
        if spec.rate:  # pace: record i leaves no earlier than i / rate seconds after the start
            ahead = started + i / spec.rate - time.monotonic()
            if ahead > 0:
                producer.poll(0)
                time.sleep(ahead)
        while True:
            try:
                producer.produce(
                    topic,
                    key=rec.key.encode(),
                    value=rec.value,
                    timestamp=rec.timestamp_ms,
                    on_delivery=delivered(rec),
                )
                break
            except BufferError:
                producer.poll(0.2)
        producer.poll(0)
        if spec.transactional_id and i % 5000 == 0:
            producer.commit_transaction(60)
            producer.begin_transaction()
        if spec.progress_every and i % spec.progress_every == 0:
            log(f"simulate: produced {i}/{len(records)} records")
    try:
        if spec.transactional_id:
            producer.commit_transaction(60)
    except KafkaException as exc:
        raise RuntimeError(f"transaction commit failed: {exc}") from exc
    remaining = producer.flush(60)
    if remaining or errors:
        raise RuntimeError(f"{remaining} records undelivered, {len(errors)} failed: {errors[:5]}")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def simulate(
    config: Config, spec: SimulationSpec, produce: bool = True, log: Callable[[str], None] = _stderr
) -> Manifest:
    """Generate the run; with `produce`, register the schemas and send it to Kafka."""
    topic = spec.topic or config.kafka.telemetry_topic
    subject = f"{topic}-value"
    if produce:
        url, auth = config.registry.url, credentials(config)
        # the registry's canonical form, as `kappa schema register` sends it
        texts = {v: read_schema(config.root / SCHEMA_DIR / f"v{v}.avsc") for v in (1, 2)}
        versions = (1, 2) if spec.v1_fraction > 0 else (2,)
        schema_ids = {
            v: register_schema(url, subject, texts[v], auto=spec.auto_register, auth=auth) for v in versions
        }
    else:
        schema_ids = {1: 1, 2: 2}  # placeholders: a dry run talks to no registry
    started = time.monotonic()
    records, ctx = _build(config, spec, schema_ids)
    if produce:
        _produce(config, spec, topic, records, log)
    data = _manifest_data(config, spec, topic, schema_ids, records, ctx, produce)
    return Manifest(data, records, elapsed_s=round(time.monotonic() - started, 3))


# ----------------------------------------------------------------------------- CLI


def _duration_s(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def add_parser(subparsers: Any) -> None:
    """Register `kappa simulate`."""
    p = subparsers.add_parser(
        "simulate",
        help="produce deterministic simulated telemetry (with anomalies and faults) to Kafka",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = SimulationSpec()
    p.add_argument("--devices", type=int, default=d.devices)
    p.add_argument("--sites", type=int, default=d.sites)
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--readings-per-device", type=int, default=None, help=f"default {d.readings_per_device}"
    )
    size.add_argument("--duration", help="simulated time span, e.g. 30m, 2h (sets readings per device)")
    p.add_argument("--interval-s", type=float, default=d.interval_s)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--start", default=DEFAULT_START, help="event time of the first reading (ISO 8601, UTC)")
    p.add_argument("--topic", default=None, help="default: kafka.telemetry_topic")
    p.add_argument("--no-anomalies", action="store_true", help="do not plant anomalies")
    p.add_argument("--overheat-run", type=int, default=d.overheat_run)
    p.add_argument("--out-of-order", type=float, default=0.0, metavar="FRACTION")
    p.add_argument("--out-of-order-max-s", type=float, default=None, help="default: the watermark delay")
    p.add_argument("--late", type=float, default=0.0, metavar="FRACTION")
    p.add_argument("--late-margin-s", type=float, default=d.late_margin_s)
    p.add_argument("--duplicates", type=float, default=0.0, metavar="FRACTION")
    p.add_argument("--malformed", type=int, default=0, metavar="N", help="N records of each malformed kind")
    p.add_argument(
        "--v1-fraction", type=float, default=0.0, help="fraction of readings written with schema v1"
    )
    p.add_argument("--no-auto-register", action="store_true", help="schemas must already be registered")
    p.add_argument("--transactional-id", default=None, help="produce in Kafka transactions")
    p.add_argument("--progress-every", type=int, default=d.progress_every)
    p.add_argument("--rate", type=float, default=None, metavar="RECORDS_PER_S",
                   help="produce at this steady rate (default: as fast as the broker takes them)")
    p.add_argument("--manifest", type=Path, default=None, help="default: <data_dir>/simulate/manifest.json")
    p.add_argument("--dry-run", action="store_true", help="no registry, no Kafka: only the manifest")
    p.set_defaults(func=run)


def spec_from_args(args: argparse.Namespace) -> SimulationSpec:
    readings = args.readings_per_device or SimulationSpec.readings_per_device
    if args.duration:
        readings = max(1, math.ceil(_duration_s(args.duration) / args.interval_s))
    return SimulationSpec(
        devices=args.devices,
        sites=args.sites,
        readings_per_device=readings,
        interval_s=args.interval_s,
        seed=args.seed,
        start_ms=parse_time_ms(args.start),
        topic=args.topic,
        anomalies=not args.no_anomalies,
        overheat_run=args.overheat_run,
        out_of_order=args.out_of_order,
        out_of_order_max_s=args.out_of_order_max_s,
        late=args.late,
        late_margin_s=args.late_margin_s,
        duplicates=args.duplicates,
        malformed=args.malformed,
        v1_fraction=args.v1_fraction,
        auto_register=not args.no_auto_register,
        transactional_id=args.transactional_id,
        progress_every=args.progress_every,
        rate=args.rate,
    )


def run(args: argparse.Namespace, config: Config) -> int:
    """`kappa simulate`: run, write the manifest, print one summary line."""
    try:
        spec = spec_from_args(args)
        manifest = simulate(config, spec, produce=not args.dry_run)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"simulate: error: {exc}", file=sys.stderr)
        return 1
    path = args.manifest or config.data_dir / "simulate" / "manifest.json"
    manifest.write(path)
    c = manifest.data["counts"]
    where = "dry run" if args.dry_run else f"topic {manifest.data['topic']}"
    print(
        f"simulate: {c['total']} records ({where}): valid {c['valid']}, out_of_order {c['out_of_order']}, "
        f"late {c['late']}, duplicate {c['duplicate']}, malformed {c['malformed']}, "
        f"v1/v2 {c['schema_versions']['v1']}/{c['schema_versions']['v2']}, "
        f"anomalies {len(manifest.data['anomalies'])}; {manifest.elapsed_s:.1f}s; manifest {path}"
    )
    return 0
