"""The bridge's fast Avro writer writes exactly the bytes confluent-kafka's AvroSerializer writes
(same latest version, same schema id, same body), for telemetry and dead letters (a mock registry)."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest

from kappa.bridge.avrowriter import LatestSchemaWriter
from kappa.bridge.deadletters import dead_letter
from kappa.bridge.payload import Reason, Rejected, json_to_record
from kappa.config import load_config
from kappa.schemas import default_root

with warnings.catch_warnings(record=True):
    from confluent_kafka.schema_registry import Schema
    from confluent_kafka.schema_registry._sync.mock_schema_registry_client import MockSchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

pytestmark = pytest.mark.unit

ROOT = default_root(load_config(profile="test").root)
LATEST = {"auto.register.schemas": False, "use.latest.version": True}


def schema_text(relative: str) -> str:
    return (ROOT / relative).read_text()


@pytest.fixture()
def registry() -> MockSchemaRegistryClient:
    client = MockSchemaRegistryClient({"url": "mock://avrowriter"})
    # first, so the telemetry ids are not 1 and 2
    client.register_schema("edge-dlq-value", Schema(schema_text("dead_letters/v1.avsc"), "AVRO"))
    for version in ("v1", "v2"):
        client.register_schema("telemetry-value", Schema(schema_text(f"telemetry/{version}.avsc"), "AVRO"))
    return client


def pair(client: MockSchemaRegistryClient, topic: str, schema_file: str) -> tuple[LatestSchemaWriter, Any]:
    serializer = AvroSerializer(client, schema_text(schema_file), conf=LATEST)
    ctx = SerializationContext(topic, MessageField.VALUE)
    return LatestSchemaWriter(client, topic, serializer), lambda record: serializer(record, ctx)


READINGS: list[dict[str, Any]] = [
    {"site_id": "s", "device_type": "thermal", "seq": 0, "event_time": 1, "status": "OK", "firmware_version": "1"},
    {"site_id": "site-é", "device_type": "environmental", "seq": 2**62, "event_time": "2026-01-01T00:00:00.250+02:00",
     "status": "MAINTENANCE", "firmware_version": "9.9.9", "temperature_c": -273.15, "humidity_pct": 100,
     "pressure_hpa": 1013.25, "vibration_mm_s": 0.001, "power_w": -5e11, "battery_pct": 0, "signal_rssi_dbm": -200,
     "location": {"lat": -90, "lon": 180.0, "alt_m": 8848.86}},
    {"site_id": "a", "device_type": "power", "seq": 7, "event_time": 1_767_225_600_000, "status": "FAULT",
     "firmware_version": "2", "location": {"lat": 1.5, "lon": 2.5}, "signal_rssi_dbm": 0},
]


@pytest.mark.parametrize("doc", READINGS)
def test_telemetry_bytes_equal_avro_serializer(registry: MockSchemaRegistryClient, doc: dict[str, Any]) -> None:
    fast, reference = pair(registry, "telemetry", "telemetry/v2.avsc")
    record = json_to_record(json.dumps(doc).encode(), "dev-1")
    value = fast(record)
    assert value == reference(record)
    assert int.from_bytes(value[1:5], "big") == registry.get_latest_version("telemetry-value").schema_id


def test_dead_letter_bytes_equal_avro_serializer(registry: MockSchemaRegistryClient) -> None:
    fast, reference = pair(registry, "edge-dlq", "dead_letters/v1.avsc")
    for device in ("dev-1", None):
        record = dead_letter("devices/x/telemetry", device, b"\x00\xffraw", Rejected(Reason.BAD_AVRO, "é"), now_ms=9)
        assert fast(record) == reference(record)


def test_a_newly_registered_version_is_used_like_the_serializer_uses_it(registry: MockSchemaRegistryClient) -> None:
    fast, reference = pair(registry, "telemetry", "telemetry/v2.avsc")
    record = json_to_record(json.dumps(READINGS[2]).encode(), "dev-1")
    before = fast(record)
    v3 = json.loads(schema_text("telemetry/v2.avsc"))
    v3["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    registry.register_schema("telemetry-value", Schema(json.dumps(v3), "AVRO"))
    after = fast(record)
    assert after[1:5] != before[1:5] and after == reference(record)


def test_a_record_that_does_not_fit_raises_like_the_serializer(registry: MockSchemaRegistryClient) -> None:
    fast, reference = pair(registry, "telemetry", "telemetry/v2.avsc")
    record = json_to_record(json.dumps(READINGS[0]).encode(), "dev-1")
    record["seq"] = "not a long"
    for write in (fast, reference):
        with pytest.raises((ValueError, TypeError)):
            write(record)
