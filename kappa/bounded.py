"""Bounded runs read fixed end offsets, and their consumer groups end at those offsets.

Why: a bounded job (`--bounded`: tests, the demo, replays' reference sources) is meant to read each
partition to its end and finish. Flink's Kafka source commits a group's offsets when a checkpoint
completes, asynchronously on its fetcher thread; when the job finishes, the offsets read after the last
periodic checkpoint were measured never to reach Kafka (20/60, 6/60 and 30/30 on three partitions), so
the group showed lag forever after a finished run. (The final checkpoint's commit is queued on a fetcher
that the finishing reader closes: flink-connector-kafka's KafkaSourceFetcherManager.commitOffsets.)

So the runner, not the source, decides and records the ends: each Kafka source whose SQL asks for
`'scan.bounded.mode' = 'latest-offset'` gets the read_committed end offsets captured now as
`specific-offsets` (the same ends Flink would resolve at start, but known to the runner), and once the
job has FINISHED the runner commits exactly those offsets for the source's group. A run that fails
commits nothing. A group never moves back: a live job sharing it may be further on.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from kappa.config import Config

_LATEST_END = re.compile(r"'scan\.bounded\.mode'\s*=\s*'latest-offset'")
_KAFKA_SOURCE = re.compile(r"'connector'\s*=\s*'kafka'")
_TOPIC = re.compile(r"'topic'\s*=\s*'([^']+)'")
_GROUP = re.compile(r"'properties\.group\.id'\s*=\s*'([^']+)'")
_SPECIFIC_ENDS = re.compile(r"'scan\.bounded\.specific-offsets'\s*=\s*'([^']+)'")


@dataclass(frozen=True)
class BoundedRead:
    """One Kafka source of a bounded run: its group reads `topic` up to `ends` (partition -> offset)."""

    group: str
    topic: str
    ends: dict[int, int]


def pin_ends(config: Config, statement: str) -> tuple[str, BoundedRead | None]:
    """`statement` with its latest-offset bound replaced by the end offsets of its topic now.

    A source already bounded by specific offsets (a replay's range) is kept as it is, and its ends
    are recorded all the same."""
    topic, group = _TOPIC.search(statement), _GROUP.search(statement)
    if not (topic and group and _KAFKA_SOURCE.search(statement)):
        return statement, None
    from kappa.replay.offsets import capture_range, format_offsets, parse_offsets

    specific = _SPECIFIC_ENDS.search(statement)
    if specific:
        return statement, BoundedRead(group.group(1), topic.group(1), parse_offsets(specific.group(1)))
    if not _LATEST_END.search(statement):
        return statement, None
    ends = capture_range(config, topic.group(1)).end
    pinned = _LATEST_END.sub(
        "'scan.bounded.mode' = 'specific-offsets',\n"
        f"  'scan.bounded.specific-offsets' = '{format_offsets(ends)}'", statement)
    return pinned, BoundedRead(group.group(1), topic.group(1), ends)


def commit(config: Config, reads: list[BoundedRead]) -> None:
    """Commit each read's ends for its group (only forward: never below what the group has committed)."""
    from confluent_kafka import TopicPartition

    from kappa import kafka_clients

    for read in reads:
        consumer = kafka_clients.consumer(config, read.group, **{"enable.auto.commit": False})
        try:
            committed = consumer.committed([TopicPartition(read.topic, p) for p in read.ends], timeout=30)
            current = {tp.partition: tp.offset for tp in committed}
            forward = [TopicPartition(read.topic, p, end) for p, end in sorted(read.ends.items())
                       if end > current.get(p, -1)]
            if forward:
                consumer.commit(offsets=forward, asynchronous=False)
        finally:
            consumer.close()


def _record_path(config: Config, job_id: str) -> Path:
    return config.data_dir / "run" / "bounded" / f"{job_id}.json"


def save(config: Config, job_id: str, reads: list[BoundedRead]) -> None:
    """Keep a detached (cluster) run's ends until whoever waits for it sees it FINISHED."""
    if not reads:
        return
    path = _record_path(config, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(read) for read in reads]))


def commit_saved(config: Config, job_id: str) -> bool:
    """Commit a FINISHED cluster run's saved ends (once); False when it saved none."""
    path = _record_path(config, job_id)
    if not path.exists():
        return False
    reads = [BoundedRead(r["group"], r["topic"], {int(p): int(o) for p, o in r["ends"].items()})
             for r in json.loads(path.read_text())]
    commit(config, reads)
    path.unlink()
    return True
