"""Data for the smoke pipeline: deterministic JSON readings produced to Kafka, and the expected windows.

The expectation is computed here in plain Python from exactly what was produced, so a test or the
demo can compare Flink's output row by row with an independent computation.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass

from kappa import kafka_clients
from kappa.config import Config

WINDOW_MS = 60_000
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: fixed, so runs are reproducible


@dataclass(frozen=True)
class Reading:
    device_id: str
    temperature: float
    ts: int


def readings(count: int, devices: int = 5, seed: int = 7, disorder_ms: int = 2_000) -> list[Reading]:
    """`count` readings, one per device every second, shuffled within `disorder_ms` of event time
    (less than the watermark delay, so none is late)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        ts = START_MS + (i // devices) * 1_000 + rng.randint(0, disorder_ms)
        out.append(Reading(f"dev-{i % devices:03d}", round(20 + rng.gauss(0, 3), 3), ts))
    return out


def expected_windows(rows: list[Reading]) -> dict[tuple[str, int], tuple[int, float]]:
    """(device, window start ms) -> (count, average temperature)."""
    groups: dict[tuple[str, int], list[float]] = defaultdict(list)
    for row in rows:
        groups[(row.device_id, row.ts - row.ts % WINDOW_MS)].append(row.temperature)
    return {key: (len(values), sum(values) / len(values)) for key, values in groups.items()}


def produce(config: Config, rows: list[Reading], topic: str | None = None) -> int:
    """Produce in one Kafka transaction (read_committed readers see all or nothing)."""
    from kappa.stack.kafka_setup import ensure_topics

    ensure_topics(config, [topic or config.kafka.smoke_topic])  # auto-create is off
    producer = kafka_clients.producer(config, **{
        "transactional.id": f"{config.job.group_prefix}-smoke-producer",
        "enable.idempotence": True,
        "linger.ms": 20,
    })
    producer.init_transactions(30)
    producer.begin_transaction()
    for row in rows:
        producer.produce(
            topic or config.kafka.smoke_topic,
            key=row.device_id.encode(),
            value=json.dumps({"device_id": row.device_id, "temperature": row.temperature, "ts": row.ts}).encode(),
            timestamp=row.ts,
        )
        producer.poll(0)
    producer.commit_transaction(60)
    return len(rows)
