"""What the simulated devices publish through the edge (`--via mqtt`): JSON readings in the payload
contract of schemas/mqtt/, and one batch of each kind of bad payload the bridge must dead-letter."""

from __future__ import annotations

import json
import random
from typing import Any

from kappa.simulate.encoding import _avro_record, _frame
from kappa.simulate.model import (
    ALL_MEASUREMENTS,
    EDGE_MALFORMED_KINDS,
    FAR_FUTURE_MS,
    INVALID_SEQ_BASE,
    JOB_REJECTED_EDGE_KINDS,
    UNKNOWN_SCHEMA_ID,
    Category,
    SimulationSpec,
    _Device,
    _Pending,
    _Reading,
)


def json_payload(record: dict[str, Any]) -> bytes:
    """A telemetry record (Avro field names) as the JSON a device publishes; floats round-trip exactly."""
    return json.dumps(record, separators=(",", ":"), allow_nan=False).encode()


def edge_malformed(
    spec: SimulationSpec,
    devices: list[_Device],
    templates: dict[str, _Reading],
    parsed_v2: Any,
    rng: random.Random,
    first_t: int,
    last_t: int,
    max_payload_bytes: int,
) -> list[_Pending]:
    """`spec.malformed` payloads of each edge kind, each published under a real device's own topic."""
    out: list[_Pending] = []
    counter = 0
    for kind, reason in EDGE_MALFORMED_KINDS.items():
        for _ in range(spec.malformed):
            dev = devices[rng.randrange(len(devices))]
            send = rng.randint(first_t, last_t)
            template = templates.get(dev.device_id)
            base = _Reading(dev, INVALID_SEQ_BASE + counter, send,
                            dict(template.values) if template else dict.fromkeys(ALL_MEASUREMENTS), "OK",
                            template.rssi if template else None)
            counter += 1
            rec = _avro_record(base, 2)
            event_time = send
            if kind == "not_json":
                value = f"temperature_c={rec.get('temperature_c')};seq={base.seq}".encode()
            elif kind == "missing_field":
                value = json_payload({k: v for k, v in rec.items() if k != "seq"})
            elif kind == "bad_field":
                value = json_payload({**rec, "seq": str(base.seq)})
            elif kind == "identity_mismatch":
                other = devices[(dev.index + 1) % len(devices)] if len(devices) > 1 else dev
                value = json_payload({**rec, "device_id": other.device_id + ("" if other is not dev else "-x")})
            elif kind == "oversized":
                value = json_payload({**rec, "note": "x" * max_payload_bytes})
            elif kind == "bad_avro":
                value = _frame(UNKNOWN_SCHEMA_ID, parsed_v2, rec)
            else:  # far_future: well formed, so the bridge forwards it; the jobs dead-letter it
                rec["event_time"] = event_time = FAR_FUTURE_MS + counter * 1000
                value = json_payload(rec)
            out.append(_Pending(send, 1, dev.device_id, value, send, Category.MALFORMED, dev.device_id, base.seq,
                                event_time, None, None, reason, kind,
                                rejected_at="job" if kind in JOB_REJECTED_EDGE_KINDS else "edge"))
    return out
