"""Reading what a job committed to a Kafka topic, as a downstream read_committed consumer would."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from kappa import kafka_clients
from kappa.config import Config
from kappa.registry import READ, client_conf
from tests.integration.scratch import fresh_topic


def committed_messages(config: Config, topic: str, idle_polls: int = 8) -> list[tuple[bytes | None, bytes | None]]:
    """(key, value) of every committed record of `topic`, from the start; stops after the topic has
    been quiet for `idle_polls` half-second polls."""
    consumer = kafka_clients.consumer(config, uuid.uuid4().hex,
        **{"isolation.level": "read_committed", "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        records: list[tuple[bytes | None, bytes | None]] = []
        idle = 0
        while idle < idle_polls:
            message = consumer.poll(0.5)
            if message is None:
                idle += 1
                continue
            idle = 0
            if not message.error():
                records.append((message.key(), message.value()))
        return records
    finally:
        consumer.close()


def end_offsets(config: Config, topic: str) -> dict[int, int]:
    consumer = kafka_clients.consumer(config, f"test-{uuid.uuid4().hex}")
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in metadata.partitions}
    finally:
        consumer.close()


def copy_new_records(config: Config, source: str, since: dict[int, int], target: str,
                     keep: Callable[[bytes | None], bool] = lambda _key: True) -> int:
    """What was appended to `source` since `since` (and passes `keep` by key), copied to a new topic
    `target` partition by partition with its key, bytes and record timestamp, so a bounded job reads
    exactly one run's records of a shared topic such as the one the bridge writes to."""
    fresh_topic(config, target, len(since))
    ends = end_offsets(config, source)
    consumer = kafka_clients.consumer(config, f"test-{uuid.uuid4().hex}", None, **{"enable.auto.commit": False})
    producer = kafka_clients.producer(config, None, **{"enable.idempotence": True, "linger.ms": 20})
    copied = 0
    try:
        consumer.assign([TopicPartition(source, p, since.get(p, 0)) for p in ends if ends[p] > since.get(p, 0)])
        remaining = {p: ends[p] - since.get(p, 0) for p in ends if ends[p] > since.get(p, 0)}
        while any(remaining.values()):
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            partition = message.partition() or 0
            if (message.offset() or 0) < ends[partition]:
                remaining[partition] -= 1
                if keep(message.key()):
                    producer.produce(target, key=message.key(), value=message.value(), partition=partition,
                                     timestamp=message.timestamp()[1])
                    copied += 1
            producer.poll(0)
        assert producer.flush(60) == 0
        return copied
    finally:
        consumer.close()


def latest_windows(config: Config, topic: str) -> dict[tuple[str, int], dict[str, Any]]:
    """(device, window start ms) -> the last committed record of that key in the aggregation job's
    upsert topic (JSON key {device_id, window_start}, Avro value), as a consumer of its changelog keeps."""
    deserialize = AvroDeserializer(SchemaRegistryClient(client_conf(config, READ)))
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for key, value in committed_messages(config, topic):
        fields = json.loads(key or b"{}")
        start = datetime.fromisoformat(fields["window_start"]).replace(tzinfo=UTC)
        record = deserialize(value, SerializationContext(topic, MessageField.VALUE))
        latest[(fields["device_id"], int(start.timestamp() * 1000))] = record
    return latest
