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

from kappa import waiting

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
    return all_committed_offsets(admin, [group], timeout_s)[group]


def all_committed_offsets(admin: AdminClient, groups: list[str],
                          timeout_s: float = 10.0) -> dict[str, dict[tuple[str, int], int]]:
    """Committed offsets of many groups: one request per group (the API takes one), all in flight at once."""
    futures = {group: admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                                        request_timeout=timeout_s)[group] for group in groups}
    result = {}
    for group, future in futures.items():
        answer = future.result(timeout=timeout_s)
        result[group] = {(tp.topic, tp.partition): tp.offset for tp in answer.topic_partitions or []
                         if tp.error is None}
    return result


Position = tuple[str, int, int]  # topic, partition, offset
ROUND_S = 0.5  # how long one round of fetches waits for the partitions that have no record yet
CACHE_SIZE = 4096


class LagReader:
    """Reads committed and end offsets, and the first uncommitted record of each lagging partition.

    A scrape must stay short, so the first uncommitted records of all lagging partitions are fetched
    together (one assign, one poll loop of at most ROUND_S per round; a partition read by several
    groups at different offsets takes one round per offset), and found event times are cached: the
    record at an offset never changes.
    """

    def __init__(self, admin: AdminClient, consumer: Consumer, prefix: str, event_time_of: EventTimeOf,
                 clock: Callable[[], float] = time.time) -> None:
        self._admin = admin
        self._consumer = consumer  # assign()-only: it never joins or commits to any group
        self._prefix = prefix
        self._event_time_of = event_time_of
        self._clock = clock
        self._cache: dict[Position, float | None] = {}
        self._no_record: dict[Position, int] = {}  # position -> end offset when only a marker followed it

    def _fetch_round(self, wanted: list[Position]) -> dict[Position, float | None]:
        """Event time of the first record at or after each position (one position per partition);
        a position with no record after it (only a transactional commit marker) is left out."""
        self._consumer.assign([TopicPartition(t, p, o) for t, p, o in wanted])
        pending = {(t, p): o for t, p, o in wanted}
        found: dict[Position, float | None] = {}
        deadline = waiting.Deadline(ROUND_S)
        while pending and not deadline.passed:
            message = self._consumer.poll(deadline.remaining)
            if message is None or message.error():
                continue
            topic, partition = message.topic() or "", message.partition() or 0
            start = pending.pop((topic, partition), None)
            if start is None:
                continue
            _, timestamp_ms = message.timestamp()
            found[(topic, partition, start)] = self._event_time_of(message.value(), timestamp_ms)
        self._consumer.unassign()
        return found

    def _event_times(self, positions: set[Position]) -> dict[Position, float | None]:
        """Event times of the given positions; a missing key means no record follows it."""
        result = {pos: self._cache[pos] for pos in positions if pos in self._cache}
        todo = sorted(positions - result.keys())
        while todo:
            round_: list[Position] = []
            later: list[Position] = []
            seen: set[tuple[str, int]] = set()
            for pos in todo:
                (later if pos[:2] in seen else round_).append(pos)
                seen.add(pos[:2])
            found = self._fetch_round(round_)
            result.update(found)
            if len(self._cache) > CACHE_SIZE:
                self._cache.clear()
            self._cache.update(found)
            todo = later
        return result

    def measure(self) -> list[PartitionLag]:
        rows = []
        ends: dict[tuple[str, int], int] = {}
        committed = all_committed_offsets(self._admin, job_groups(self._admin, self._prefix))
        for group, offsets in sorted(committed.items()):
            for (topic, partition), offset in sorted(offsets.items()):
                if (topic, partition) not in ends:
                    _, ends[(topic, partition)] = self._consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=5)
                rows.append((group, topic, partition, offset, ends[(topic, partition)]))
        # A position where only a commit marker followed stays so while the end offset has not moved.
        lagging = {(t, p, max(o, 0)) for _, t, p, o, end in rows
                   if end > max(o, 0) and self._no_record.get((t, p, max(o, 0))) != end}
        event_times = self._event_times(lagging)
        if len(self._no_record) > CACHE_SIZE:
            self._no_record.clear()
        self._no_record.update({pos: ends[pos[:2]] for pos in lagging if pos not in event_times})
        now = self._clock()
        lags = []
        for group, topic, partition, offset, end in rows:
            start = max(offset, 0)
            event_lag = 0.0
            if end > start:
                position = (topic, partition, start)
                if position not in event_times:  # only a commit marker after it: nothing to read
                    end = start
                elif (event_time := event_times[position]) is not None:
                    event_lag = max(now - event_time, 0.0)
            lags.append(PartitionLag(group, topic, partition, offset, end, event_lag))
        return lags
