"""Rejected payloads as DeadLetter records (schemas/avro/dead_letters/v1.avsc) for the edge topic.

The schema was made for Kafka records; for an MQTT message `topic` is the MQTT topic, `partition`
and `offset` are -1 (there is none yet), `kafka_timestamp` is null, `key` is the device id from the
topic and `payload` the exact bytes the device sent, so the message can be inspected and replayed.
"""

from __future__ import annotations

import time
from typing import Any

from kappa.bridge.payload import Rejected

NO_PARTITION = -1
NO_OFFSET = -1


def dead_letter(mqtt_topic: str, device_id: str | None, raw: bytes, rejected: Rejected,
                now_ms: int | None = None) -> dict[str, Any]:
    """The DeadLetter record (a dict for AvroSerializer) for one rejected MQTT message."""
    return {
        "topic": mqtt_topic,
        "partition": NO_PARTITION,
        "offset": NO_OFFSET,
        "kafka_timestamp": None,
        "reason": str(rejected.reason),
        "error": rejected.error,
        "key": device_id.encode() if device_id is not None else None,
        "payload": raw,
        "received_at": now_ms if now_ms is not None else int(time.time() * 1000),
    }
