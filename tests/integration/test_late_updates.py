"""Late readings are a function of the log, and late data corrects its windows (issue 12, item 4).

One stream is produced at device pace (sent a little at a time, each part once the live, unbounded
job has read the previous ones), then read again as a bounded catch-up over the same offsets into
other outputs. Both runs must route exactly the readings late that Python's partition rule calls late
(kappa.expected.late_flags), and end with the same windows, equal to Python's over every other
reading. With an allowed lateness of 37.5 minutes, the stream holds both kinds of lateness:

- a device offline for 30 minutes (event time) that then sends its backlog: its windows hold all its
  readings, updated after they had fired;
- readings sent 30-45 minutes behind: those within the allowed lateness update windows that had fired,
  the others are routed late, counted, and accounted for.

(One stream for both: each case costs a live run and a catch-up, about 100 s on the test machine.)

The live run's last windows fire when one reading per partition far ahead in event time (a device of
its own, left out of the comparison) moves the watermark past them, as later data would. Idleness is
off in the live run (a long idle timeout), the one documented way its late set may differ.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import time
import uuid
from collections import Counter
from typing import Any

import fastavro
import pytest
from confluent_kafka import TopicPartition

from kappa import expected, jobrunner, kafka_clients, outputs, waiting
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.simulate import Category, Manifest, ProducedRecord, SimulationSpec, simulate
from kappa.simulate.encoding import _frame, _parsed_schema
from kappa.stack.postgres import connect
from tests.integration.aggregate_support import READING_CATEGORIES, expected_late, to_reading
from tests.integration.kafka_support import committed_messages
from tests.integration.scratch import Names, fresh_topic, run_bounded, versioned_outputs

pytestmark = pytest.mark.integration

SENTINEL = "sentinel-p"
AHEAD_MS = 3 * 3_600_000  # past every window + the largest allowed lateness used here


@dataclasses.dataclass(frozen=True)
class Case:
    spec: SimulationSpec
    allowed_lateness_s: int
    chunk_s: int  # simulated send time per chunk of the live run


# 300 readings every 10 s (3000 s); late readings are sent 1805-2705 s behind (watermark delay + margin +
# up to half the margin), astride the allowed lateness of 2250 s; the backlog is at most ~1810 s behind.
CASE = Case(SimulationSpec(devices=6, sites=2, readings_per_device=300, seed=9, late=0.01, late_margin_s=1800,
                           out_of_order=0.05, duplicates=0.03, malformed=0, v1_fraction=0.0, anomalies=False,
                           offline_devices=1, offline_s=1800), 2250, 600)


def _with_lateness(config: Config, seconds: int) -> Config:
    return config.model_copy(update={"job": config.job.model_copy(update={"allowed_lateness_s": seconds})})


def _sentinels(config: Config, topic: str, records: list[ProducedRecord]) -> int:
    """One valid reading per partition AHEAD_MS after the data, each by a device of its own."""
    template = next(r for r in records if r.category is Category.VALID)
    parsed = _parsed_schema(config.root, 2)
    value = fastavro.schemaless_reader(io.BytesIO(template.value[5:]), parsed, parsed)
    assert isinstance(value, dict)
    at = max(r.event_time for r in records if r.row is not None) + AHEAD_MS
    producer = kafka_clients.producer(config, None, **{"enable.idempotence": True})
    for partition in range(config.kafka.partitions):
        record = {**value, "device_id": f"{SENTINEL}{partition}", "seq": 1, "event_time": at}
        producer.produce(topic, key=record["device_id"].encode(), partition=partition, timestamp=at,
                         value=_frame(int.from_bytes(template.value[1:5], "big"), parsed, record))
    assert producer.flush(30) == 0
    return config.kafka.partitions


def _books(config: Config, topic: str, suffix: str) -> tuple[Counter, outputs.Accounting]:
    late = Counter(outputs.late_keys(config, f"{topic}-late{suffix}"))
    with connect(config) as conn:
        return late, outputs.accounting(conn, suffix, late=late.total())


def _read_up_to_end(config: Config, topic: str, group: str) -> None:
    """Wait until the job's consumer group has committed (at a checkpoint) every offset of `topic`."""
    consumer = kafka_clients.consumer(config, group, None, **{"enable.auto.commit": False})
    try:
        partitions = [TopicPartition(topic, p) for p in range(config.kafka.partitions)]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
        waiting.wait_until(
            lambda: all(tp.offset >= ends[tp.partition] for tp in consumer.committed(partitions, timeout=10)
                        if ends[tp.partition] > 0), timeout_s=120, what="the live job's reads",
            on_timeout=lambda _: AssertionError(f"the live job did not read {topic} up to {ends}"))
    finally:
        consumer.close()


def _live_run(config: Config, topic: str, suffix: str, case: Case) -> Manifest:
    """The job unbounded while the readings arrive at device pace: simulated into a staging topic, then
    sent to `topic` (same partitions, same order, hence same offsets) one `case.chunk_s` of simulated
    send time at a time, each once the job has read and checkpointed everything before it. Returns
    once every record is accounted for in the job's outputs, and cancels the job."""
    manifest = simulate(config, dataclasses.replace(case.spec, topic=f"{topic}-staging"), produce=True,
                        log=lambda _: None)
    options = JobOptions(output_suffix=suffix, lake=False,
                         extra={"telemetry_topic": topic, "source_idle_timeout_s": "3600"})
    began = time.monotonic()
    client = jobrunner.run_local(config, "aggregate", options, wait=False).get_job_client()
    print(f"  live job submitted: {time.monotonic() - began:.0f} s", flush=True)
    try:
        producer = kafka_clients.producer(config, None, **{"enable.idempotence": True})
        group = f"{config.job.group_prefix}-aggregate{suffix}"
        records = sorted(manifest.records, key=lambda r: r.index)  # the send order
        for _, chunk in itertools.groupby(records, key=lambda r: r.send_ms // (case.chunk_s * 1000)):
            for record in chunk:
                producer.produce(topic, key=record.key.encode(), value=record.value, partition=record.partition or 0,
                                 timestamp=record.timestamp_ms)
            assert producer.flush(30) == 0
            _read_up_to_end(config, topic, group)
            print(f"  chunk read: {time.monotonic() - began:.0f} s", flush=True)
        _sentinels(config, topic, manifest.records)
        total = manifest.data["counts"]["total"]  # the sentinels stay in open windows: not accounted yet
        waiting.wait_until(lambda: _books(config, topic, suffix)[1].total == total, timeout_s=300, interval_s=2,
                           what="the books", on_timeout=lambda _: AssertionError(
                               f"live run never accounted for {total}: {_books(config, topic, suffix)}"))
        print(f"  live run accounted for: {time.monotonic() - began:.0f} s", flush=True)
        return manifest
    finally:
        client.cancel().result()


def _windows(config: Config, suffix: str, data_end_ms: int) -> tuple[dict, dict]:
    with connect(config) as conn:
        devices = {k: v for k, v in outputs.device_windows(conn, suffix).items() if not k[0].startswith(SENTINEL)}
        sites = {k: v for k, v in outputs.site_windows(conn, suffix).items() if k[1] <= data_end_ms}
    return devices, sites


def _assert_rows(actual: dict, want: dict[Any, dict[str, Any]]) -> None:
    missing, extra = sorted(want.keys() - actual.keys()), sorted(actual.keys() - want.keys())
    assert not missing and not extra, (missing[:3], extra[:3])
    for key, row in want.items():
        for column, value in row.items():
            assert expected.close(actual[key][column], value), (key, column, actual[key][column], value)


def test_device_pace_and_catch_up_give_the_same_late_set_and_windows(migrated: Config) -> None:
    config = _with_lateness(migrated, CASE.allowed_lateness_s)
    tag = uuid.uuid4().hex[:6]
    topic = Names("late", tag).topic
    live = versioned_outputs(config, Names("late-live", tag).suffix)
    catch_up = versioned_outputs(config, Names("late-catchup", tag).suffix)
    for name in (topic, f"{topic}-staging"):
        fresh_topic(config, name)

    began = time.monotonic()
    manifest = _live_run(config, topic, live, CASE)
    print(f"live run at device pace: {time.monotonic() - began:.0f} s", flush=True)
    run_bounded(config, "aggregate", topic, catch_up)
    print(f"catch-up: {time.monotonic() - began:.0f} s", flush=True)

    readings = [r for r in manifest.records if r.category in READING_CATEGORIES]
    want_late = expected_late(config, readings)
    copies = Counter((r.device_id, r.seq) for r in readings)
    kept = [to_reading(r) for r in readings if want_late[(r.device_id, r.seq)] < copies[(r.device_id, r.seq)]]
    data_end = max(r.event_time for r in readings)
    total = manifest.data["counts"]["total"]
    for suffix, sentinels in ((live, 0), (catch_up, config.kafka.partitions)):
        late, books = _books(config, topic, suffix)
        assert late == want_late, (suffix, sorted((late - want_late) + (want_late - late))[:5])
        assert books.total == total + sentinels, (suffix, books)  # the catch-up also fires the sentinels' windows
        devices, sites = _windows(config, suffix, data_end)
        _assert_rows(devices, expected.device_windows_1m(kept))
        _assert_rows(sites, expected.site_windows_5m(kept))

    delay_ms = config.job.watermark_delay_s * 1000
    behind = {(r.device_id, r.seq) for r in readings
              if r.lateness_ms > delay_ms and not want_late[(r.device_id, r.seq)]}
    # sent after their window fired: the live upsert topic carries the window, then its update
    updates = committed_messages(config, f"{config.kafka.aggregates_topic}{live}")
    assert len(updates) > len(_windows(config, live, data_end)[0]), "the live topic carries updated windows"
    backlog = [r for r in readings if r.backlog]
    assert backlog and not any(want_late[(r.device_id, r.seq)] for r in backlog), "the backlog is within the lateness"
    assert max(r.lateness_ms for r in backlog) > 25 * 60_000
    planted = [r for r in readings if r.category is Category.LATE and not r.backlog]
    assert any(want_late[(r.device_id, r.seq)] for r in planted), "some readings beyond the allowed lateness"
    assert any((r.device_id, r.seq) in behind for r in planted), "some planted late readings within it (window updates)"
    # late by the partition rule implies at least that far behind in the global send order too
    late_after_ms = (config.job.watermark_delay_s + config.job.allowed_lateness_s) * 1000
    assert all(r.lateness_ms >= late_after_ms for r in readings if want_late[(r.device_id, r.seq)])
