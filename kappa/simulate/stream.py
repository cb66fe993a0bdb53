"""The send order: readings with injected faults (late, out of order, duplicates, malformed),
categorised by their actual lateness in the global send order."""

from __future__ import annotations

import json
import random
from typing import Any

from kappa.config import Config
from kappa.simulate.edge import edge_malformed, json_payload
from kappa.simulate.encoding import _avro_record, _flat_row, _frame, _parsed_schema
from kappa.simulate.fleet import _describe_anomaly, _fleet, _interval_ms, _plan_anomalies, _readings
from kappa.simulate.model import (
    ALL_MEASUREMENTS,
    FAR_FUTURE_MS,
    INVALID_SEQ_BASE,
    MALFORMED_KINDS,
    OVERSIZED_RECORD_BYTES,
    UNKNOWN_SCHEMA_ID,
    VIA,
    Category,
    ProducedRecord,
    SimulationSpec,
    _Device,
    _Pending,
    _Reading,
)


def _build(
    config: Config, spec: SimulationSpec, schema_ids: dict[int, int]
) -> tuple[list[ProducedRecord], dict[str, Any]]:
    if spec.devices < 1 or spec.readings_per_device < 1 or spec.sites < 1:
        raise ValueError("devices, sites and readings_per_device must be >= 1")
    if spec.overheat_run < 1:
        raise ValueError("overheat_run must be >= 1")
    for name in ("out_of_order", "late", "duplicates", "v1_fraction", "v3_fraction"):
        if not 0.0 <= getattr(spec, name) <= 1.0:
            raise ValueError(f"{name} must be a fraction in [0, 1]")
    if spec.v1_fraction + spec.v3_fraction > 1.0:
        raise ValueError("v1_fraction + v3_fraction must not exceed 1")
    if spec.via not in VIA:
        raise ValueError(f"via must be one of {', '.join(VIA)}")
    if not 0 <= spec.offline_devices <= spec.devices or spec.offline_s <= 0:
        raise ValueError("offline_devices must be in [0, devices] and offline_s > 0")
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
    if spec.v3_fraction:  # an rng of its own: without v3 the run stays what it was
        newer = [r.index for r in readings if r.version == 2]
        v3_rng = random.Random(f"{spec.seed}:v3")
        for i in v3_rng.sample(newer, min(len(newer), round(spec.v3_fraction * n))):
            readings[i].version = 3
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

    backlog = _offline_backlog(spec, devices, plans, readings, fault_rng, interval_ms)
    parsed = {v: _parsed_schema(config.root, v) for v in sorted({1, 2, *(r.version for r in readings)})}
    pending: list[_Pending] = []
    send_of: dict[int, int] = {}
    for r in readings:
        rec = _avro_record(r, r.version)
        sid = schema_ids[r.version]
        # through the edge, a device sends JSON (old firmware: its v1 Avro record, new firmware its v3 one; the
        # bridge forwards both byte for byte)
        value = (json_payload(rec) if spec.via == "mqtt" and r.version == 2
                 else _frame(sid, parsed[r.version], rec))
        if r.index in backlog:
            send, tie = backlog[r.index], 1
        elif r.index in late_idx:
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
                value,
                r.event_time,
                Category.VALID,
                r.device.device_id,
                r.seq,
                r.event_time,
                r.version,
                _flat_row(rec, sid),
                backlog=r.index in backlog,
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
    if spec.via == "mqtt":
        pending.extend(edge_malformed(spec, devices, _templates(readings), parsed[2], fault_rng, first_t, last_t,
                                      config.mqtt.max_payload_bytes))
    else:
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
                send_ms=p.send_time,
                rejected_at=p.rejected_at,
                backlog=p.backlog,
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
        "requested": {"late": len(late_idx), "out_of_order": len(ooo_idx), "duplicate": len(dup_idx),
                      "backlog": len(backlog)},
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
    templates = _templates(readings)
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
            elif kind == "far_future":  # the Kafka timestamp stays at the send position (brokers cap the future)
                rec["event_time"] = event_time = FAR_FUTURE_MS + i * 1000
                value = _frame(schema_ids[2], parsed_v2, rec)
            else:
                value = _frame(schema_ids[2], parsed_v2, _poison_pill(kind, i, rec))
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
                    rejected_at="job",
                )
            )
    return out


def _poison_pill(kind: str, i: int, rec: dict[str, Any]) -> dict[str, Any]:
    """A well-formed record outside schemas/avro/telemetry/limits.json (see MALFORMED_KINDS)."""
    if kind == "nul_in_id":
        rec["device_id"] = rec["device_id"] + "\x00x"
    elif kind == "empty_id":
        rec["device_id"] = ""
    elif kind == "long_id":
        rec["site_id"] = "s" * 4096
    elif kind == "absurd_value":
        rec["humidity_pct" if i % 2 == 0 else "battery_pct"] = 1e300 if i % 2 == 0 else -5.0
    else:  # oversized: the body padded through firmware_version to OVERSIZED_RECORD_BYTES
        rec["firmware_version"] = "f" * OVERSIZED_RECORD_BYTES
    return rec


def _templates(readings: list[_Reading]) -> dict[str, _Reading]:
    """Each device's first reading: malformed records copy its values."""
    templates: dict[str, _Reading] = {}
    for r in readings:
        templates.setdefault(r.device.device_id, r)
    return templates


def _offline_backlog(spec: SimulationSpec, devices: list[_Device], plans: list[Any], readings: list[_Reading],
                     rng: random.Random, interval_ms: int) -> dict[int, int]:
    """Reading index -> send time, for the readings of devices that went offline and buffered them.

    Each of `offline_devices` devices (never one with a planted anomaly, whose alerts tests expect on
    time) is offline once for `offline_s` somewhere in the run; what it read meanwhile is sent, in
    order, when it comes back, which makes most of it late for the jobs."""
    if not spec.offline_devices:
        return {}
    planted = {p.device.device_id for p in plans}
    candidates = [d for d in devices if d.device_id not in planted]
    if len(candidates) < spec.offline_devices:
        raise ValueError(f"only {len(candidates)} devices have no planted anomaly; "
                         f"offline_devices must not exceed that")
    first_t, last_t = readings[0].event_time, readings[-1].event_time
    offline_ms = round(spec.offline_s * 1000)
    if last_t - first_t < offline_ms + 2 * interval_ms:
        raise ValueError("offline_s must be shorter than the simulated time span")
    sends: dict[int, int] = {}
    for dev in rng.sample(candidates, spec.offline_devices):
        start = rng.randint(first_t + interval_ms, last_t - offline_ms - interval_ms)
        back = start + offline_ms
        buffered = [r for r in readings if r.device is dev and start <= r.event_time < back]
        for k, r in enumerate(buffered):
            sends[r.index] = back + k
    return sends


