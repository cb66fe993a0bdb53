"""Reading back what the bridge wrote, for the demo's accounting: how many records a topic holds, and
the edge dead letters by reason (decoded with the DeadLetter schema, as any consumer would)."""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections import Counter

import fastavro
from confluent_kafka import TopicPartition

from kappa import kafka_clients, waiting
from kappa.config import Config

HEADER_SIZE = 5


def record_count(config: Config, topic: str) -> int:
    """Records in `topic` (sum of its partitions' end offsets minus their start offsets)."""
    consumer = kafka_clients.consumer(config, f"kappa-audit-{uuid.uuid4().hex}")
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return 0
        total = 0
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def wait_for_counts(config: Config, wanted: dict[str, int], timeout_s: float) -> dict[str, int]:
    """Poll until every topic holds at least its wanted count (or the time is up); returns the counts."""
    counts: dict[str, int] = {}

    def enough() -> bool:
        counts.update({topic: record_count(config, topic) for topic in wanted})
        return all(counts[t] >= n for t, n in wanted.items())

    with contextlib.suppress(waiting.WaitTimeout):  # the caller compares the counts it gets
        waiting.wait_until(enough, timeout_s=timeout_s, what="the wanted record counts")
    return counts


def edge_dead_letter_reasons(config: Config) -> Counter[str]:
    """Reasons of every record in the edge dead-letter topic."""
    topic = config.kafka.edge_dead_letter_topic
    schema = fastavro.parse_schema(json.loads(
        (config.root / "schemas" / "avro" / "dead_letters" / "v1.avsc").read_text()))
    consumer = kafka_clients.consumer(config, f"kappa-audit-{uuid.uuid4().hex}")
    reasons: Counter[str] = Counter()
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return reasons
        ends = {}
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high > low:
                ends[partition] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        positions = dict.fromkeys(ends, -1)
        deadline = waiting.Deadline(30)
        while any(positions[p] < ends[p] - 1 for p in ends) and not deadline.passed:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            positions[message.partition() or 0] = message.offset() or 0
            value = message.value() or b""
            record = fastavro.schemaless_reader(io.BytesIO(value[HEADER_SIZE:]), schema, schema)
            assert isinstance(record, dict)
            reasons[str(record["reason"])] += 1
        return reasons
    finally:
        consumer.close()
