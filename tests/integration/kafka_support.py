"""Reading what a job committed to a Kafka topic, as a downstream read_committed consumer would."""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, TopicPartition

from kappa.config import Config


def committed_messages(config: Config, topic: str, idle_polls: int = 8) -> list[tuple[bytes | None, bytes | None]]:
    """(key, value) of every committed record of `topic`, from the start; stops after the topic has
    been quiet for `idle_polls` half-second polls."""
    consumer = Consumer({"bootstrap.servers": config.kafka.bootstrap, "group.id": uuid.uuid4().hex,
                         "isolation.level": "read_committed", "enable.auto.commit": False})
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
