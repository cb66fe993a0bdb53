"""Reference data topics (alert thresholds, device metadata): versioned changelogs that keep every
version for ever, written and read through the one Kafka client factory.

Each record is one version of one key, valid from the event time it carries (`valid_from_ms`). The
jobs read these topics as versioned tables (event-time temporal joins), so a replay of old readings
needs the versions that were in force then: the topics are created with cleanup.policy=delete and
retention.ms=-1 (compaction would keep only each key's latest version). One partition: the versions
of a key stay in the order they were written, and there are few of them.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import ConfigResource, NewTopic

from kappa import kafka_clients
from kappa.config import Config
from kappa.errors import KappaError

TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
_LOG = logging.getLogger("kappa.reference")


class ReferenceLogError(KappaError):
    """The reference topic could not be created, written or read."""


@dataclass(frozen=True)
class Record:
    """One version as stored: its record key, JSON value and offset."""

    key: str
    value: dict[str, Any]
    offset: int


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def parse_time_ms(text: str) -> int:
    """ISO-8601 (UTC when no zone), or 'epoch' for the beginning of time (0)."""
    if text.strip().lower() in ("epoch", "beginning"):
        return 0
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise KappaError(f"invalid time {text!r}: want ISO-8601, e.g. 2026-03-02T08:00:00Z, or 'epoch'") from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


def ensure_topic(config: Config, topic: str) -> None:
    """Create the topic with full retention unless it exists (an existing one is checked, not changed)."""
    admin = kafka_clients.admin(config, _LOG)
    try:
        if topic not in admin.list_topics(timeout=10).topics:
            new = NewTopic(topic, 1, config.kafka.replication_factor, config=TOPIC_CONFIG)
            future = admin.create_topics([new])[topic]
            try:
                future.result(30)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    except KafkaException as exc:
        raise ReferenceLogError(f"cannot create topic {topic} on {config.kafka.bootstrap}: {exc}") from None
    retention = topic_settings(config, topic)["retention.ms"]
    if retention != "-1":
        raise ReferenceLogError(f"topic {topic} has retention.ms={retention}: old versions would be deleted; "
                                "set retention.ms=-1 (and cleanup.policy=delete) on it")


def topic_settings(config: Config, topic: str) -> dict[str, str]:
    """The topic's configuration as the broker reports it (retention.ms, cleanup.policy, ...)."""
    admin = kafka_clients.admin(config, _LOG)  # kept referenced until the result is in
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    for attempt in range(50):  # a topic created a moment ago may not be known to the broker's metadata yet
        try:
            entries = admin.describe_configs([resource])[resource].result(30)
            return {name: str(entry.value) for name, entry in entries.items()}
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART or attempt == 49:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def publish(config: Config, topic: str, records: list[tuple[str, dict[str, Any]]]) -> None:
    """Write versions (key, value) in order; returns once all are acknowledged by every replica."""
    ensure_topic(config, topic)
    producer = kafka_clients.reliable_producer(config, _LOG, **{"message.timeout.ms": 30_000})
    failures: list[str] = []

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    for key, value in records:
        producer.produce(topic, key=key.encode(), value=json.dumps(value).encode(), on_delivery=delivered)
    if producer.flush(60) != 0 or failures:
        raise ReferenceLogError(f"writing to {topic} failed: {failures[:1] or 'flush timed out'}")


def read_all(config: Config, topic: str) -> list[Record]:
    """Every version in the topic, in offset order (an absent topic has none)."""
    admin = kafka_clients.admin(config, _LOG)
    if topic not in admin.list_topics(timeout=10).topics:
        return []
    consumer = kafka_clients.consumer(config, "kappa-reference-reader", _LOG,
                                      **{"enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        records: list[Record] = []
        if high == 0:
            return records
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        while not records or records[-1].offset < high - 1:
            msg = consumer.poll(10)
            if msg is None:
                raise ReferenceLogError(f"reading {topic} stalled before offset {high}")
            if msg.error():
                raise ReferenceLogError(f"reading {topic}: {msg.error()}")
            value, offset = msg.value(), msg.offset() or 0
            if value is not None:
                records.append(Record((msg.key() or b"").decode(), json.loads(value), offset))
            elif offset >= high - 1:
                break
        return records
    finally:
        consumer.close()
