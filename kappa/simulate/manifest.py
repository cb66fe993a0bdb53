"""The manifest: an exact account of what a run produced, planted and injected."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

from kappa.config import Config
from kappa.simulate.model import (
    EDGE_MALFORMED_KINDS,
    LOW_BATTERY_PCT,
    LOW_BATTERY_READINGS,
    MALFORMED_KINDS,
    OVERHEAT_C,
    SILENCE_S,
    TREND_MIN_RISE_C,
    TREND_READINGS,
    VIB_HEAT_WITHIN_S,
    VIBRATION_SPIKE_MM_S,
    Category,
    ProducedRecord,
    SimulationSpec,
    _iso,
)


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
        "via": spec.via,
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
            "malformed_by_kind": {k: sum(r.malformed_kind == k for r in records)
                                  for k in (EDGE_MALFORMED_KINDS if spec.via == "mqtt" else MALFORMED_KINDS)},
            # through the edge: what the bridge dead-letters (edge-dlq) and what reaches the jobs' dead letters
            "rejected_at_edge": sum(r.rejected_at == "edge" for r in records),
            "rejected_by_jobs": sum(r.rejected_at == "job" for r in records),
            "backlog": sum(r.backlog for r in records),
            "decodable": len(decodable),
            "schema_versions": {
                "v1": sum(r.schema_version == 1 for r in decodable),
                "v2": sum(r.schema_version == 2 for r in decodable),
                "v3": sum(r.schema_version == 3 for r in decodable),
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


