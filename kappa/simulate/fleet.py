"""The simulated fleet: devices, their signals, planted anomalies and the readings they take."""

from __future__ import annotations

import math
import random
from typing import Any

from kappa.simulate.model import (
    ALL_MEASUREMENTS,
    ANOMALY_KINDS,
    DEVICE_TYPES,
    LOW_BATTERY_PCT,
    LOW_BATTERY_READINGS,
    OVERHEAT_C,
    SILENCE_S,
    TREND_MIN_RISE_C,
    TREND_READINGS,
    VIB_HEAT_WITHIN_S,
    VIBRATION_SPIKE_MM_S,
    SimulationSpec,
    _Device,
    _Plan,
    _Reading,
)

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


