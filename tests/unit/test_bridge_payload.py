"""The bridge's payload contract without any service: JSON -> telemetry record, every rejection
reason, Avro pass-through, dead-letter records (a mock registry stands in for the real one)."""

from __future__ import annotations

import io
import json
import warnings
from typing import Any

import fastavro
import jsonschema
import pytest

from kappa.bridge.codec import Codec
from kappa.bridge.deadletters import dead_letter
from kappa.bridge.payload import Reason, Rejected, device_from_topic, event_time_ms, json_to_record
from kappa.config import Config, load_config
from kappa.schemas import default_root

with warnings.catch_warnings(record=True):
    from confluent_kafka.schema_registry import Schema
    from confluent_kafka.schema_registry._sync.mock_schema_registry_client import MockSchemaRegistryClient

pytestmark = pytest.mark.unit

DEVICE = "dev-007"


def reading(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "device_id": DEVICE, "site_id": "site-1", "device_type": "environmental", "seq": 42,
        "event_time": 1_700_000_000_123, "status": "OK", "firmware_version": "1.5.0",
        "temperature_c": 21.5, "humidity_pct": 40, "pressure_hpa": 1013.2, "battery_pct": 88.0,
        "signal_rssi_dbm": -67, "location": {"lat": 48.1, "lon": 11.6},
    }
    for key, value in changes.items():
        if value is _DROP:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


_DROP = object()


def raw(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def reason_of(payload: bytes, device: str = DEVICE) -> Reason:
    with pytest.raises(Rejected) as caught:
        json_to_record(payload, device)
    return caught.value.reason


def test_json_reading_becomes_the_v2_record_keyed_by_the_topic() -> None:
    record = json_to_record(raw(reading(device_id=_DROP)), DEVICE)
    assert record["device_id"] == DEVICE  # from the topic: the payload may omit it
    assert record["seq"] == 42 and record["event_time"] == 1_700_000_000_123
    assert record["humidity_pct"] == 40.0 and isinstance(record["humidity_pct"], float)
    assert record["vibration_mm_s"] is None and record["power_w"] is None
    assert record["location"] == {"lat": 48.1, "lon": 11.6, "alt_m": None}


def test_iso_event_time_needs_an_offset() -> None:
    assert event_time_ms("2023-11-14T22:13:20.123Z") == 1_700_000_000_123
    assert event_time_ms("2023-11-15T00:13:20.123+02:00") == 1_700_000_000_123
    assert reason_of(raw(reading(event_time="2023-11-14T22:13:20"))) is Reason.BAD_FIELD


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe not utf-8", Reason.NOT_JSON),
        (b"{not json", Reason.NOT_JSON),
        (b"[1, 2]", Reason.NOT_JSON),
        (b'{"seq": NaN}', Reason.NOT_JSON),
        (raw(reading(seq=_DROP)), Reason.MISSING_FIELD),
        (raw(reading(site_id=None)), Reason.MISSING_FIELD),
        (raw(reading(location={"lat": 1.0})), Reason.MISSING_FIELD),
        (raw(reading(seq="42")), Reason.BAD_FIELD),
        (raw(reading(seq=True)), Reason.BAD_FIELD),
        (raw(reading(seq=-1)), Reason.BAD_FIELD),
        (raw(reading(event_time=1.5e12)), Reason.BAD_FIELD),
        (raw(reading(event_time=-5)), Reason.BAD_FIELD),
        (raw(reading(status="BROKEN")), Reason.BAD_FIELD),
        (raw(reading(device_type="toaster")), Reason.BAD_FIELD),
        (raw(reading(humidity_pct=140)), Reason.BAD_FIELD),
        (raw(reading(battery_pct="full")), Reason.BAD_FIELD),
        (raw(reading(signal_rssi_dbm=-67.5)), Reason.BAD_FIELD),
        (raw(reading(location={"lat": 91, "lon": 0})), Reason.BAD_FIELD),
        (raw(reading(firmware_version="")), Reason.BAD_FIELD),
        (raw(reading(device_id="dev-008")), Reason.IDENTITY_MISMATCH),
    ],
)
def test_each_bad_payload_has_its_reason(payload: bytes, reason: Reason) -> None:
    assert reason_of(payload) is reason


def test_identity_is_checked_before_the_fields() -> None:
    """A payload claiming another device is an identity problem even when it is also malformed."""
    assert reason_of(raw(reading(device_id="dev-008", seq="x"))) is Reason.IDENTITY_MISMATCH


def test_topic_shapes() -> None:
    assert device_from_topic("devices/dev-1/telemetry", "devices") == "dev-1"
    assert device_from_topic("site/a/devices/dev-1/telemetry", "site/a/devices") == "dev-1"
    for topic in ("devices/dev-1/status", "devices//telemetry", "other/dev-1/telemetry", "devices/a/b/telemetry"):
        assert device_from_topic(topic, "devices") is None


def test_dead_letter_record_keeps_the_raw_bytes() -> None:
    record = dead_letter("devices/d/telemetry", "d", b"\x00junk", Rejected(Reason.NOT_JSON, "bad"), now_ms=5)
    assert record["payload"] == b"\x00junk" and record["key"] == b"d"
    assert (record["partition"], record["offset"], record["reason"], record["received_at"]) == (-1, -1, "NOT_JSON", 5)


# ---- through the registry's serializers (a mock registry) ---------------------------------------
@pytest.fixture()
def codec() -> Codec:
    config: Config = load_config(profile="test", environ={"KAPPA_MQTT__MAX_PAYLOAD_BYTES": "2048"})
    client = MockSchemaRegistryClient({"url": "mock://bridge-unit"})
    root = default_root(config.root)
    for version in ("v1", "v2"):
        client.register_schema("telemetry-value", Schema((root / f"telemetry/{version}.avsc").read_text(), "AVRO"))
    client.register_schema("edge-dlq-value", Schema((root / "dead_letters/v1.avsc").read_text(), "AVRO"))
    return Codec(config, client)


def decode(value: bytes, schema_file: str) -> dict[str, Any]:
    schema = fastavro.parse_schema(json.loads((default_root(load_config().root) / schema_file).read_text()))
    assert value[0] == 0
    return fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, schema)  # type: ignore[return-value]


def test_json_is_serialized_under_the_latest_registered_version(codec: Codec) -> None:
    value = codec.telemetry_value(raw(reading()), DEVICE)
    latest = codec.client.get_latest_version("telemetry-value")
    assert int.from_bytes(value[1:5], "big") == latest.schema_id
    record = decode(value, "telemetry/v2.avsc")
    assert record["device_id"] == DEVICE and record["seq"] == 42 and record["signal_rssi_dbm"] == -67


def test_avro_payload_is_forwarded_byte_for_byte(codec: Codec) -> None:
    framed = codec.telemetry_value(raw(reading()), DEVICE)
    assert codec.telemetry_value(framed, DEVICE) == framed
    with pytest.raises(Rejected) as other:
        codec.telemetry_value(framed, "dev-008")
    assert other.value.reason is Reason.IDENTITY_MISMATCH
    for broken in (framed[:12], b"\x00\x00\x00\x03\xe7" + framed[5:]):  # truncated; unknown schema id 999
        with pytest.raises(Rejected) as bad:
            codec.telemetry_value(broken, DEVICE)
        assert bad.value.reason is Reason.BAD_AVRO


def test_oversized_payload(codec: Codec) -> None:
    with pytest.raises(Rejected) as caught:
        codec.telemetry_value(raw(reading(firmware_version="x" * 3000)), DEVICE)
    assert caught.value.reason is Reason.PAYLOAD_TOO_LARGE


def test_dead_letter_value_decodes_with_the_dead_letter_schema(codec: Codec) -> None:
    value = codec.dead_letter_value("devices/d/telemetry", "d", b"{oops", Rejected(Reason.NOT_JSON, "bad json"))
    record = decode(value, "dead_letters/v1.avsc")
    assert (record["reason"], record["payload"], record["topic"]) == ("NOT_JSON", b"{oops", "devices/d/telemetry")


def test_documented_json_schema_agrees_with_the_converter() -> None:
    """schemas/mqtt/telemetry.schema.json is the contract devices read: its examples convert, and it
    refuses what the converter refuses (for the kinds a JSON Schema can express)."""
    path = default_root(load_config().root).parent / "mqtt" / "telemetry.schema.json"
    schema = json.loads(path.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for example in schema["examples"]:
        validator.validate(example)
        json_to_record(raw(example), example.get("device_id", DEVICE))
    for bad in (reading(seq=_DROP), reading(seq="42"), reading(humidity_pct=140), reading(status="BROKEN"),
                reading(event_time="2023-11-14T22:13:20"), reading(location={"lat": 91, "lon": 0})):
        assert not validator.is_valid(bad)
        with pytest.raises(Rejected):
            json_to_record(raw(bad), DEVICE)
