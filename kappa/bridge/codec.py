"""Payload -> Kafka value through the project's schema registry.

JSON readings are serialized under the latest registered version of `<telemetry_topic>-value`
(`LatestSchemaWriter`: the bytes `AvroSerializer` writes, without its per-call overhead; never
auto-registered: the subjects are the repository's, registered by `kappa schema register`).
Avro payloads already in the Confluent wire format are decoded once with `AvroDeserializer` against
the telemetry reader schema (so they are known to be telemetry) and then forwarded byte for byte.
A registry that cannot be reached is not bad input: it raises `RegistryUnavailable` and the message
waits, unacknowledged.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from kappa.bridge.avrowriter import LatestSchemaWriter
from kappa.bridge.deadletters import dead_letter
from kappa.bridge.payload import (
    Reason,
    Rejected,
    check_size,
    is_avro_framed,
    json_to_record,
    validate_record,
)
from kappa.config import Config
from kappa.registry import READ, client_conf
from kappa.schemas import default_root

with warnings.catch_warnings(record=True):  # authlib prints a deprecation warning on import
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.schema_registry.error import SchemaRegistryError
    from confluent_kafka.serialization import MessageField, SerializationContext


class RegistryUnavailable(Exception):
    """The schema registry did not answer: retry later, do not dead-letter."""


def _schema_text(config: Config, relative: str) -> str:
    return (default_root(config.root) / Path(relative)).read_text()


def _latest_only() -> dict[str, Any]:
    return {"auto.register.schemas": False, "use.latest.version": True}


class Codec:
    """Turns one MQTT payload into the Kafka value for the telemetry topic, or a DeadLetter value."""

    def __init__(self, config: Config, client: SchemaRegistryClient | None = None) -> None:
        self.config = config
        self.client = client or SchemaRegistryClient(client_conf(config, READ))  # never registers
        self.telemetry_topic = config.kafka.telemetry_topic
        self.dlq_topic = config.kafka.edge_dead_letter_topic
        self._telemetry = LatestSchemaWriter(self.client, self.telemetry_topic, AvroSerializer(
            self.client, _schema_text(config, "telemetry/v2.avsc"), conf=_latest_only()))
        self._reader = AvroDeserializer(self.client, _schema_text(config, "telemetry/v2.avsc"))
        self._dead = LatestSchemaWriter(self.client, self.dlq_topic, AvroSerializer(
            self.client, _schema_text(config, "dead_letters/v1.avsc"), conf=_latest_only()))

    def check_subjects(self) -> None:
        """Fail early, with the fix, when the subjects the bridge writes under are not registered."""
        for topic in (self.telemetry_topic, self.dlq_topic):
            subject = f"{topic}-value"
            try:
                self.client.get_latest_version(subject)
            except SchemaRegistryError as exc:
                if exc.http_status_code == 404:
                    raise RuntimeError(
                        f"subject {subject} is not registered at {self.config.registry.url}; "
                        "run `kappa schema register` first"
                    ) from exc
                raise
            except Exception as exc:  # noqa: BLE001 - connection errors from requests/httpx
                raise RegistryUnavailable(f"schema registry at {self.config.registry.url}: {exc}") from exc

    def telemetry_value(self, raw: bytes, device_id: str) -> bytes:
        """The Confluent-framed telemetry value for `raw`, or Rejected with the reason."""
        check_size(raw, self.config.mqtt.max_payload_bytes)
        if is_avro_framed(raw):
            record = self._decode_avro(raw)
            validate_record(record, device_id)
            return raw
        record = json_to_record(raw, device_id)
        try:
            return self._telemetry(record)
        except SchemaRegistryError as exc:
            raise RegistryUnavailable(f"registry refused {self.telemetry_topic}-value: {exc}") from exc
        except (ValueError, TypeError) as exc:  # json_to_record checks types: only a schema drift lands here
            raise Rejected(Reason.BAD_FIELD, f"does not fit the registered schema: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - httpx/requests connection errors
            raise RegistryUnavailable(f"schema registry at {self.config.registry.url}: {exc}") from exc

    def _decode_avro(self, raw: bytes) -> dict[str, Any]:
        ctx = SerializationContext(self.telemetry_topic, MessageField.VALUE)
        try:
            decoded = self._reader(raw, ctx)
        except SchemaRegistryError as exc:
            if exc.http_status_code is not None and 400 <= exc.http_status_code < 500:
                raise Rejected(Reason.BAD_AVRO, f"schema id {int.from_bytes(raw[1:5], 'big')}: {exc}") from None
            raise RegistryUnavailable(str(exc)) from exc
        except (OSError, ConnectionError) as exc:
            raise RegistryUnavailable(str(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - fastavro/serde errors on truncated or foreign bodies
            if type(exc).__module__.startswith(("httpx", "requests", "urllib3")):
                raise RegistryUnavailable(str(exc)) from exc
            raise Rejected(Reason.BAD_AVRO, f"not a decodable telemetry record: {exc}") from None
        if not isinstance(decoded, dict):
            raise Rejected(Reason.BAD_AVRO, "not a telemetry record")
        return decoded

    def dead_letter_value(self, mqtt_topic: str, device_id: str | None, raw: bytes, rejected: Rejected) -> bytes:
        record = dead_letter(mqtt_topic, device_id, raw, rejected)
        try:
            return self._dead(record)
        except Exception as exc:  # noqa: BLE001 - the record is ours and valid: only the registry can fail
            raise RegistryUnavailable(f"cannot serialize a dead letter: {exc}") from exc
