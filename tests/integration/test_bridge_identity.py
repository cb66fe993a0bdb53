"""The bridge on the real stack: the Kafka key is the topic's device, and every kind of bad payload
lands in the edge dead-letter topic with its reason and raw bytes, never in the telemetry topic."""

from __future__ import annotations

import json
import time
import warnings

import pytest

from kappa.config import Config
from tests.integration.bridge_support import Device, TopicReader, provision, reading, wait_until

with warnings.catch_warnings(record=True):
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

from kappa.registry import READ, client_conf  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bridge(migrated: Config) -> Config:
    """The stack's own bridge service, reading the device registry of the migrated database."""
    return migrated


def test_bad_payloads_are_dead_lettered_with_reason_and_raw_bytes(bridge: Config) -> None:
    config = bridge
    devices = provision(config, 2)
    (a, password), (b, _) = devices.items()
    registry = SchemaRegistryClient(client_conf(config, READ))
    serializer = AvroSerializer(registry, None, conf={"auto.register.schemas": False, "use.latest.version": True})
    avro_good = serializer(reading(a, 2), SerializationContext(config.kafka.telemetry_topic, MessageField.VALUE))
    avro_other = serializer(reading(b, 3), SerializationContext(config.kafka.telemetry_topic, MessageField.VALUE))
    assert avro_good is not None and avro_other is not None
    bad: dict[str, bytes] = {
        "NOT_JSON": b"temperature=21.5",
        "MISSING_FIELD": json.dumps({k: v for k, v in reading(a, 10).items() if k != "event_time"}).encode(),
        "BAD_FIELD": json.dumps(reading(a, 11, humidity_pct="wet")).encode(),
        "PAYLOAD_TOO_LARGE": json.dumps(reading(a, 12, note="x" * config.mqtt.max_payload_bytes)).encode(),
        "IDENTITY_MISMATCH": json.dumps(reading(b, 13)).encode(),
        "BAD_AVRO": avro_good[:9],
    }
    device = Device(config, a, password)
    try:
        device.publish(reading(a, 1))  # JSON, payload names its own device
        device.publish(avro_good)  # Avro, Confluent wire format, forwarded as-is
        device.publish(reading(None, 4))  # JSON without device_id: the topic's is used
        for payload in bad.values():
            device.publish(payload)
        device.publish(avro_other)  # an Avro record naming device b, sent by a
        device.wait_acked()
    finally:
        device.close()

    reader = TopicReader(config)
    dead: list[tuple[bytes, dict]] = []

    def all_dead_letters() -> bool:
        dead[:] = reader.records(config.kafka.edge_dead_letter_topic, lambda key: key == a.encode())
        return len(dead) >= len(bad) + 1

    wait_until(all_dead_letters, "the dead letters", 60)
    by_payload = {record["payload"]: record for _, record in dead}
    for reason, payload in {**bad, "IDENTITY_MISMATCH (avro)": avro_other}.items():
        record = by_payload[payload]  # the exact bytes the device sent
        assert record["reason"] == reason.split()[0], record["error"]
        assert record["topic"] == config.mqtt.device_topic(a)
        assert (record["partition"], record["offset"], record["key"]) == (-1, -1, a.encode())
        assert record["error"]
    assert len(dead) == len(bad) + 1

    telemetry = reader.records(config.kafka.telemetry_topic, lambda key: key in (a.encode(), b.encode()))
    assert sorted((key, record["device_id"], record["seq"]) for key, record in telemetry) == [
        (a.encode(), a, 1), (a.encode(), a, 2), (a.encode(), a, 4)]  # nothing of the rejected ones


def test_publishing_under_another_devices_topic_reaches_nothing(bridge: Config) -> None:
    """The broker's ACL drops it (an MQTT 3.1.1 publisher still gets its PUBACK), so neither Kafka
    topic sees it."""
    devices = provision(bridge, 2)
    (a, password), (b, _) = devices.items()
    device = Device(bridge, a, password)
    try:
        device.publish(reading(b, 99), topic=bridge.mqtt.device_topic(b))
        device.publish(reading(a, 100))  # a marker: once it is in Kafka, the earlier one would be too
        device.wait_acked()
    finally:
        device.close()
    reader = TopicReader(bridge)
    ours = (a.encode(), b.encode())
    wait_until(lambda: len(reader.records(bridge.kafka.telemetry_topic, lambda k: k in ours)) >= 1, "the marker", 60)
    telemetry = reader.records(bridge.kafka.telemetry_topic, lambda k: k in ours)
    assert [(key, record["seq"]) for key, record in telemetry] == [(a.encode(), 100)]
    assert reader.records(bridge.kafka.edge_dead_letter_topic, lambda k: k in ours) == []


def test_a_device_the_registry_no_longer_lists_is_dead_lettered(bridge: Config) -> None:
    """Decommissioned in the table while the broker still knows its password (files not yet
    re-rendered): the bridge's own check catches it as UNKNOWN_DEVICE once its cache refreshes."""
    from kappa.stack.postgres import connect

    (device_id, password), = provision(bridge, 1).items()
    device = Device(bridge, device_id, password)
    try:
        with connect(bridge) as conn:
            conn.execute("UPDATE devices SET status = 'decommissioned' WHERE device_id = %s", (device_id,))
        time.sleep(6)  # longer than the bridge's refresh period of the active devices (5 s)
        payload = json.dumps(reading(device_id, 1)).encode()
        device.publish(payload)
        device.wait_acked()
    finally:
        device.close()
    reader = TopicReader(bridge)
    mine = device_id.encode()
    wait_until(lambda: bool(reader.records(bridge.kafka.edge_dead_letter_topic, lambda k: k == mine)),
               "the dead letter", 60)
    [(_, record)] = reader.records(bridge.kafka.edge_dead_letter_topic, lambda k: k == mine)
    assert (record["reason"], record["payload"]) == ("UNKNOWN_DEVICE", payload)
    assert reader.records(bridge.kafka.telemetry_topic, lambda k: k == mine) == []
