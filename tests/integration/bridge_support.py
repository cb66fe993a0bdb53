"""What the bridge tests share: devices with their own broker credentials, publishers, and reading
back what reached Kafka (decoded with the registry, as any consumer would)."""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from kappa import waiting
from kappa.config import Config
from kappa.stack.mosquitto import client as broker_client
from tests.integration.kafka_support import committed_messages

with warnings.catch_warnings(record=True):
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

from kappa.registry import READ, client_conf  # noqa: E402


def provision(config: Config, count: int, prefix: str | None = None) -> dict[str, str]:
    """`count` new devices registered with `kappa devices import --secrets-file` (device id -> password):
    the registry renders the broker's password/ACL files and reloads it."""
    from kappa.cli import main
    from kappa.config import read_env_file

    prefix = prefix or f"t{uuid.uuid4().hex[:6]}"
    folder = config.data_dir / "test-devices"
    folder.mkdir(parents=True, exist_ok=True)
    csv_file, secrets_file = folder / f"{prefix}.csv", folder / f"{prefix}.secrets"
    rows = [f"{prefix}-{i:03d},site-a,thermal" for i in range(count)]
    csv_file.write_text("device_id,site_id,device_type\n" + "\n".join(rows) + "\n")
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the passwords
        assert main(["--profile", config.profile, "devices", "import", str(csv_file),
                     "--secrets-file", str(secrets_file)]) == 0
    time.sleep(0.5)  # the broker re-reads its files on SIGHUP, asynchronously
    return read_env_file(secrets_file)


def reading(device_id: str | None, seq: int, base_ms: int = 1_767_225_600_000, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"site_id": "site-a", "device_type": "thermal", "seq": seq,
                           "event_time": base_ms + seq * 1000, "status": "OK", "firmware_version": "1.0.0",
                           "temperature_c": 20.0 + (seq % 17) * 0.5, "battery_pct": 90.0}
    if device_id is not None:
        doc["device_id"] = device_id
    doc.update(changes)
    return doc


class Device:
    """One device's MQTT connection (its own credentials, QoS 1)."""

    def __init__(self, config: Config, device_id: str, password: str) -> None:
        self.device_id = device_id
        self.topic = config.mqtt.device_topic(device_id)
        self.client = broker_client(config, device_id, password, client_id=device_id)
        self.client.max_queued_messages_set(0)
        connected = threading.Event()
        self.client.on_connect = lambda *_: connected.set()
        self.client.connect(config.mqtt.host, config.mqtt.port, keepalive=30)
        self.client.loop_start()
        if not connected.wait(20):
            raise AssertionError(f"{device_id} could not connect")
        self.infos: list[mqtt.MQTTMessageInfo] = []

    def publish(self, payload: bytes | dict[str, Any], topic: str | None = None) -> None:
        raw = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        self.infos.append(self.client.publish(topic or self.topic, raw, qos=1))

    def wait_acked(self, timeout_s: float = 120.0) -> None:
        """Every publish stored by the broker (its PUBACK to the device came back)."""
        deadline = waiting.Deadline(timeout_s)
        for info in self.infos:
            info.wait_for_publish(max(0.1, deadline.remaining))
            assert info.is_published(), f"{self.device_id}: the broker did not acknowledge a publish"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class TopicReader:
    """Decodes what is in a topic with the registry; keeps reading from where it stopped."""

    def __init__(self, config: Config) -> None:
        self.config = config
        registry = SchemaRegistryClient(client_conf(config, READ))
        self.deserializer = AvroDeserializer(registry)

    def records(self, topic: str, keep: Callable[[bytes | None], bool],
                idle_polls: int = 4) -> list[tuple[bytes, dict]]:
        ctx = SerializationContext(topic, MessageField.VALUE)
        return [(key, self.deserializer(value, ctx))  # type: ignore[misc]
                for key, value in committed_messages(self.config, topic, idle_polls) if keep(key)]


def wait_until(check: Callable[[], bool], what: str, timeout_s: float) -> None:
    waiting.wait_until(check, timeout_s=timeout_s, interval_s=1.0, what=what,
                       on_timeout=lambda _: AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}"))
