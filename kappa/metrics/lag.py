"""Consumer-group lag of the jobs, per partition, in records and in seconds of event time.

Flink's Kafka source commits the offsets of each completed checkpoint to its group
(`<group_prefix>-<job><suffix>`), so the committed offset is where a restart would resume: lag in
records is the end offset minus it. Lag in seconds is measured on the event time of the next record
the job has not committed (now minus its event time), so a job 10,000 records behind on a quiet
fleet and one 10,000 records behind on a busy one read differently, as they should.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

EventTimeOf = Callable[[bytes | None, int], float]  # (payload, record timestamp ms) -> event time, s


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int  # next offset the group will read (-1: nothing committed yet)
    end: int  # high watermark
    event_lag_s: float  # now minus the event time of the first uncommitted record; 0 when caught up

    @property
    def records(self) -> int:
        start = self.committed if self.committed >= 0 else 0
        return max(self.end - start, 0)


def job_groups(admin: AdminClient, prefix: str, timeout_s: float = 10.0) -> list[str]:
    """The consumer groups of the project's jobs (their ids start with `<group_prefix>-`)."""
    listing = admin.list_consumer_groups(request_timeout=timeout_s).result(timeout=timeout_s)
    return sorted(g.group_id for g in listing.valid if g.group_id.startswith(prefix + "-"))


def committed_offsets(admin: AdminClient, group: str, timeout_s: float = 10.0) -> dict[tuple[str, int], int]:
    futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=timeout_s)
    result = futures[group].result(timeout=timeout_s)
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions or [] if tp.error is None}


class LagReader:
    """Reads committed and end offsets, and the first uncommitted record of each lagging partition."""

    def __init__(self, admin: AdminClient, consumer: Consumer, prefix: str, event_time_of: EventTimeOf,
                 clock: Callable[[], float] = time.time) -> None:
        self._admin = admin
        self._consumer = consumer  # assign()-only: it never joins or commits to any group
        self._prefix = prefix
        self._event_time_of = event_time_of
        self._clock = clock

    def _event_time_at(self, topic: str, partition: int, offset: int) -> float | None:
        self._consumer.assign([TopicPartition(topic, partition, offset)])
        message = self._consumer.poll(2.0)
        if message is None or message.error():
            return None
        _, timestamp_ms = message.timestamp()
        return self._event_time_of(message.value(), timestamp_ms)

    def measure(self) -> list[PartitionLag]:
        lags: list[PartitionLag] = []
        for group in job_groups(self._admin, self._prefix):
            for (topic, partition), offset in sorted(committed_offsets(self._admin, group).items()):
                _, end = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5)
                start = max(offset, 0)
                event_lag = 0.0
                if end > start:
                    event_time = self._event_time_at(topic, partition, start)
                    if event_time is not None:
                        event_lag = max(self._clock() - event_time, 0.0)
                lags.append(PartitionLag(group, topic, partition, offset, end, event_lag))
        return lags
