"""The device payload contract (schemas/mqtt/README.md): JSON readings -> telemetry v2 records.

Everything here is pure (no broker, no registry) so each rejection reason is unit-tested. The
identity rule lives here too: the device id comes from the MQTT topic the broker authorised the
device to publish on, never from the payload; a payload naming another device is rejected.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from enum import StrEnum
from typing import Any

from udfs.limits import limits


class Reason(StrEnum):
    """Dead-letter reason codes of the bridge (the DeadLetter schema's `reason` is a plain string)."""

    NOT_JSON = "NOT_JSON"  # not UTF-8, not JSON, or not a JSON object
    MISSING_FIELD = "MISSING_FIELD"  # a required field is absent or null
    BAD_FIELD = "BAD_FIELD"  # a field has the wrong type or is out of range
    BAD_AVRO = "BAD_AVRO"  # Confluent-framed, but no such schema id or not decodable as telemetry
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"  # over mqtt.max_payload_bytes
    UNKNOWN_DEVICE = "UNKNOWN_DEVICE"  # not an active device of the registry
    IDENTITY_MISMATCH = "IDENTITY_MISMATCH"  # payload device_id differs from the topic's


class Rejected(Exception):
    """A payload the bridge will not forward: goes to the edge dead-letter topic with `reason`."""

    def __init__(self, reason: Reason, error: str) -> None:
        super().__init__(f"{reason}: {error}")
        self.reason = reason
        self.error = error


DEVICE_TYPES = ("thermal", "vibration", "environmental", "power", "unknown")
STATUSES = ("OK", "WARN", "FAULT", "MAINTENANCE")
REQUIRED = ("site_id", "device_type", "seq", "event_time", "status", "firmware_version")
# Optional doubles and their physically possible range: schemas/avro/telemetry/limits.json, which the
# jobs' decoders apply too (a reading that passes here is never dead-lettered there for its range).
_RANGES = limits().ranges
MEASUREMENTS: dict[str, tuple[float, float]] = {
    name: _RANGES[name]
    for name in ("temperature_c", "humidity_pct", "pressure_hpa", "vibration_mm_s", "power_w", "battery_pct")
}
RSSI_RANGE = (int(_RANGES["signal_rssi_dbm"][0]), int(_RANGES["signal_rssi_dbm"][1]))
LONG_MAX = 2**63 - 1
AVRO_MAGIC = 0


def device_from_topic(topic: str, prefix: str) -> str | None:
    """`<prefix>/<device_id>/telemetry` -> device_id; None for any other shape."""
    parts = topic.split("/")
    head = prefix.split("/")
    if len(parts) != len(head) + 2 or parts[: len(head)] != head or parts[-1] != "telemetry" or not parts[-2]:
        return None
    return parts[-2]


def is_avro_framed(raw: bytes) -> bool:
    """Confluent wire format starts with a zero byte; JSON text never does."""
    return len(raw) > 0 and raw[0] == AVRO_MAGIC


def check_size(raw: bytes, max_bytes: int) -> None:
    if len(raw) > max_bytes:
        raise Rejected(Reason.PAYLOAD_TOO_LARGE, f"payload is {len(raw)} bytes, the limit is {max_bytes}")


def check_identity(payload_device: Any, topic_device: str) -> None:
    if payload_device is not None and payload_device != topic_device:
        raise Rejected(
            Reason.IDENTITY_MISMATCH,
            f"payload device_id {payload_device!r} differs from the topic's device {topic_device!r}",
        )


def parse_json(raw: bytes) -> dict[str, Any]:
    """The JSON object of a payload, or NOT_JSON (NaN/Infinity literals are refused too)."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Rejected(Reason.NOT_JSON, f"not a JSON document: {exc}") from None
    if not isinstance(value, dict):
        raise Rejected(Reason.NOT_JSON, f"a JSON {type(value).__name__} instead of an object")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_to_record(raw: bytes, topic_device: str) -> dict[str, Any]:
    """A JSON reading -> the telemetry v2 record (a dict AvroSerializer accepts), keyed by the topic."""
    doc = parse_json(raw)
    check_identity(doc.get("device_id"), topic_device)
    missing = [name for name in REQUIRED if doc.get(name) is None]
    if missing:
        raise Rejected(Reason.MISSING_FIELD, f"required field(s) missing or null: {', '.join(missing)}")
    record: dict[str, Any] = {
        "device_id": topic_device,
        "site_id": _string(doc, "site_id"),
        "device_type": _choice(doc, "device_type", DEVICE_TYPES),
        "seq": _integer(doc, "seq", 0, LONG_MAX),
        "event_time": event_time_ms(doc["event_time"]),
        "status": _choice(doc, "status", STATUSES),
        "firmware_version": _string(doc, "firmware_version"),
    }
    for name, (low, high) in MEASUREMENTS.items():
        record[name] = _optional_number(doc, name, low, high)
    rssi = doc.get("signal_rssi_dbm")
    record["signal_rssi_dbm"] = None if rssi is None else _integer(doc, "signal_rssi_dbm", *RSSI_RANGE)
    record["location"] = _location(doc.get("location"))
    return record


def validate_record(record: dict[str, Any], topic_device: str) -> None:
    """The checks JSON readings get, applied to a decoded Avro record (identity and ranges)."""
    check_identity(record.get("device_id"), topic_device)
    event_time = record.get("event_time")
    if isinstance(event_time, datetime):
        event_time = int(event_time.timestamp() * 1000)
    if not isinstance(event_time, int) or event_time <= 0:
        raise Rejected(Reason.BAD_FIELD, f"event_time {event_time!r} is not a positive epoch-ms time")
    if record.get("seq") is None or record["seq"] < 0:
        raise Rejected(Reason.BAD_FIELD, f"seq {record.get('seq')!r} is negative")
    for name, (low, high) in MEASUREMENTS.items():
        _optional_number(record, name, low, high)
    _location(record.get("location"))


def event_time_ms(value: Any) -> int:
    """Epoch milliseconds (an integer), or an ISO-8601 string with an explicit offset ('Z', '+02:00')."""
    if isinstance(value, bool):
        raise Rejected(Reason.BAD_FIELD, "event_time is a boolean")
    if isinstance(value, int):
        if not 0 < value <= LONG_MAX:
            raise Rejected(Reason.BAD_FIELD, f"event_time {value} is not a positive epoch-ms time")
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise Rejected(Reason.BAD_FIELD, f"event_time {value!r} is not ISO-8601") from None
        if parsed.tzinfo is None:
            raise Rejected(Reason.BAD_FIELD, f"event_time {value!r} has no UTC offset (add 'Z' or '+hh:mm')")
        millis = round(parsed.timestamp() * 1000)
        if millis <= 0:
            raise Rejected(Reason.BAD_FIELD, f"event_time {value!r} is not after 1970")
        return millis
    raise Rejected(Reason.BAD_FIELD, f"event_time must be epoch ms or ISO-8601, not {type(value).__name__}")


def _string(doc: dict[str, Any], name: str) -> str:
    value = doc[name]
    if not isinstance(value, str) or not value:
        raise Rejected(Reason.BAD_FIELD, f"{name} must be a non-empty string, not {value!r}")
    problem = limits().string_problem(name, value)  # NUL bytes, length limits: as the jobs check them
    if problem:
        raise Rejected(Reason.BAD_FIELD, problem)
    return value


def _choice(doc: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = doc[name]
    if value not in allowed:
        raise Rejected(Reason.BAD_FIELD, f"{name} {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _integer(doc: dict[str, Any], name: str, low: int, high: int) -> int:
    value = doc[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise Rejected(Reason.BAD_FIELD, f"{name} must be an integer, not {value!r}")
    if not low <= value <= high:
        raise Rejected(Reason.BAD_FIELD, f"{name} {value} is outside [{low}, {high}]")
    return value


def _number(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected(Reason.BAD_FIELD, f"{name} must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise Rejected(Reason.BAD_FIELD, f"{name} {value} is outside [{low:g}, {high:g}]")
    return number


def _optional_number(doc: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = doc.get(name)
    return None if value is None else _number(value, name, low, high)


def _location(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Rejected(Reason.BAD_FIELD, f"location must be an object with lat/lon, not {value!r}")
    for name in ("lat", "lon"):
        if value.get(name) is None:
            raise Rejected(Reason.MISSING_FIELD, f"location.{name} is missing")
    alt = value.get("alt_m")
    return {
        "lat": _number(value["lat"], "location.lat", *_RANGES["location_lat"]),
        "lon": _number(value["lon"], "location.lon", *_RANGES["location_lon"]),
        "alt_m": None if alt is None else _number(alt, "location.alt_m", *_RANGES["location_alt_m"]),
    }
