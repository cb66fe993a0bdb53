"""What a replay reads: offset ranges per partition, captured from Kafka, and the Kafka source options
that read exactly them."""

from __future__ import annotations

import contextlib
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaException, TopicPartition

from kappa import kafka_clients
from kappa.config import Config
from kappa.replay import ReplayError

_OFFSET_ITEM = re.compile(r"^partition:(\d+),offset:(\d+)$")


def format_offsets(offsets: Mapping[int, int]) -> str:
    """{0: 5, 1: 7} -> 'partition:0,offset:5;partition:1,offset:7' (the Kafka connector's format)."""
    return ";".join(f"partition:{p},offset:{offsets[p]}" for p in sorted(offsets))


def parse_offsets(text: str) -> dict[int, int]:
    result: dict[int, int] = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        match = _OFFSET_ITEM.match(item.replace(" ", ""))
        if not match:
            raise ValueError(f"bad offsets item {item!r}: want partition:N,offset:M")
        result[int(match.group(1))] = int(match.group(2))
    return result


def startup_options(start: Mapping[int, int]) -> str:
    """Extra WITH options for the Kafka source: start exactly at `start` of each partition (unbounded)."""
    return (",\n  'scan.startup.mode' = 'specific-offsets',"
            f"\n  'scan.startup.specific-offsets' = '{format_offsets(start)}'")


def source_options(start: Mapping[int, int], end: Mapping[int, int]) -> str:
    """Extra WITH options for the Kafka source: read exactly [start, end) of each partition."""
    return (startup_options(start) + ",\n  'scan.bounded.mode' = 'specific-offsets',"
            f"\n  'scan.bounded.specific-offsets' = '{format_offsets(end)}'")


def parse_time_ms(text: str) -> int:
    """ISO timestamp (naive = UTC) -> epoch milliseconds."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ReplayError(f"bad timestamp {text!r}: use ISO 8601, e.g. 2026-01-01T00:00:00Z") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class OffsetRange:
    """What a replay reads: [start, end) per partition of one topic."""

    topic: str
    start: dict[int, int]
    end: dict[int, int]
    from_spec: str = "earliest"
    to_spec: str | None = None

    @property
    def total(self) -> int:
        return sum(max(0, self.end[p] - self.start.get(p, 0)) for p in self.end)


def caught_up(rng: OffsetRange, committed: Mapping[int, int]) -> bool:
    """Every partition's committed offset has reached the captured end (an empty partition has)."""
    return all(committed.get(p, rng.start.get(p, 0)) >= end for p, end in rng.end.items())


def _consumer(config: Config, group: str = "kappa-replay-probe") -> Consumer:
    return kafka_clients.consumer(config, group, **{"enable.auto.commit": False, "isolation.level": "read_committed"})


def capture_range(config: Config, topic: str, from_spec: str = "earliest", to_spec: str | None = None) -> OffsetRange:
    """The offsets a replay will read, fixed now: from earliest (or the first offset at/after a
    time) to the end offsets now (or the first offset at/after `to_spec`, if earlier)."""
    consumer = _consumer(config)
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise ReplayError(f"topic {topic!r} not found on {config.kafka.bootstrap}")
        partitions = sorted(metadata.partitions)
        marks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
        start = {p: low for p, (low, _) in marks.items()}
        end = {p: high for p, (_, high) in marks.items()}

        def at(ms: int) -> dict[int, int]:
            found = consumer.offsets_for_times([TopicPartition(topic, p, ms) for p in partitions], timeout=10)
            return {tp.partition: (tp.offset if tp.offset >= 0 else end[tp.partition]) for tp in found}

        if from_spec != "earliest":
            start = {p: max(start[p], o) for p, o in at(parse_time_ms(from_spec)).items()}
        if to_spec:
            end = {p: min(end[p], o) for p, o in at(parse_time_ms(to_spec)).items()}
        end = {p: max(end[p], start[p]) for p in partitions}
        return OffsetRange(topic, start, end, from_spec, to_spec)
    except KafkaException as exc:
        raise ReplayError(f"Kafka at {config.kafka.bootstrap}: {exc}") from exc
    finally:
        consumer.close()


def committed_offsets(config: Config, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """Offsets the job's consumer group committed (Flink commits them at each checkpoint)."""
    consumer = _consumer(config, group)
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=5)
        return {tp.partition: tp.offset for tp in found if tp.offset >= 0}
    except KafkaException:
        return {}
    finally:
        consumer.close()


def forget_group(config: Config, group: str) -> None:
    """Delete a consumer group's committed offsets: a re-run of a failed version must not see the old
    run's offsets as its own progress (with --follow they decide when the version has caught up)."""
    admin = kafka_clients.admin(config)
    for future in admin.delete_consumer_groups([group], request_timeout=10).values():
        with contextlib.suppress(KafkaException):  # no such group: nothing to forget
            future.result()


def delete_topics(config: Config, topics: list[str]) -> list[str]:
    """Delete those of `topics` that exist; returns the ones deleted."""
    admin = kafka_clients.admin(config)
    existing = set(admin.list_topics(timeout=10).topics)
    present = [t for t in topics if t in existing]
    for _, future in (admin.delete_topics(present, operation_timeout=30).items() if present else []):
        future.result()
    return present


def delete_subjects(config: Config, topics: list[str]) -> list[str]:
    """Delete, permanently, the schema-registry subjects (`<topic>-key`, `<topic>-value`) of `topics`
    that exist: a replay's Avro sinks register them on first write (avro-confluent), and a dropped
    version must not leave them behind. Returns the subjects deleted."""
    from kappa.registry import ADMIN
    from kappa.registry import session as registry_session

    session = registry_session(config, ADMIN)  # deletes: the admin role; verifies the registry's certificate
    url = config.registry.url
    existing = set(session.get(f"{url}/subjects", timeout=10).json())
    gone = []
    for subject in (f"{t}-{part}" for t in topics for part in ("key", "value")):
        if subject not in existing:
            continue
        quoted = urllib.parse.quote(subject, safe="")
        for params in ({}, {"permanent": "true"}):  # soft first: the registry refuses a permanent delete before
            session.delete(f"{url}/subjects/{quoted}", params=params, timeout=10).raise_for_status()
        gone.append(subject)
    return gone
