"""`kappa replay run --follow` on the real stack: the classic Kappa handover with no seam.

A first batch of readings is in the topic when the replay starts (its end offsets E are captured);
the version's job on the cluster reads from the first offset, reports caught up at E and keeps
running. A second batch, produced after E, continues the first one's event times, so the windows
open at E hold readings from both sides. The version's tables must end up equal to Python's windows
over both batches: one job with one state, so the windows at E are whole (a second job started at E,
as the bounded replay's follow-on job is, would replace them with their part after E)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable

import pytest

from kappa import expected, jobrunner, kafka_clients, outputs, waiting
from kappa.config import Config
from kappa.replay import ReplayError, offsets, promote, runner, versions
from kappa.simulate import ProducedRecord, simulate
from kappa.simulate.encoding import _frame, _parsed_schema
from kappa.stack import kafka_setup
from kappa.stack.postgres import connect
from tests.integration.aggregate_support import READING_CATEGORIES, faulty_spec, to_reading

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

SEAM_MS = 150_000  # E falls 2.5 minutes into the data: mid 1-minute window and mid 5-minute window
TAIL_AHEAD_MS = 3_600_000  # the tail reading's event time after the data: every earlier window fires
# The job's tables converge within seconds of the tail; generous, as the machine is shared.
CONVERGE_TIMEOUT_S = 180.0


def _produce(config: Config, topic: str, records: Iterable[ProducedRecord]) -> None:
    """The simulator's records (bytes, key, event-time timestamp) into `topic`, in send order."""
    kafka_setup.ensure_topics(config, [topic])  # auto-create is off
    producer = kafka_clients.producer(config, **{"enable.idempotence": True, "acks": "all",
                         "partitioner": "murmur2_random"})
    for record in records:
        producer.produce(topic, key=record.key.encode(), value=record.value, timestamp=record.timestamp_ms)
    assert producer.flush(30) == 0


def _produce_tail(config: Config, topic: str, partitions: list[int], event_ms: int, schema_id: int) -> None:
    """One valid reading of a 'tail' device far ahead in event time into EVERY partition: the job's
    watermark is the minimum over the partitions (and comes from the readings' own event times, which an
    undecodable record cannot move), so each must pass the data for all its windows to fire. The tail
    readings' own windows stay open, so they are in no table and are not counted as aggregated."""
    producer = kafka_clients.producer(config, **{"enable.idempotence": True, "acks": "all"})
    parsed = _parsed_schema(config.root, 2)
    for partition in partitions:
        reading = {"device_id": f"tail-{partition}", "site_id": "tail", "device_type": "thermal", "seq": 0,
                   "event_time": event_ms, "status": "OK", "firmware_version": "1.0.0"}
        producer.produce(topic, key=reading["device_id"].encode(), value=_frame(schema_id, parsed, reading),
                         partition=partition)
    assert producer.flush(30) == 0


def _mismatches(config: Config, suffix: str, readings: list[expected.Reading], total: int) -> list[str]:
    """What still differs between the version's tables and Python's windows (empty: equal)."""
    want, want_sites = expected.device_windows_1m(readings), expected.site_windows_5m(readings)
    with connect(config) as conn:
        actual, actual_sites = outputs.device_windows(conn, suffix), outputs.site_windows(conn, suffix)
        books = outputs.accounting(conn, suffix)
    problems = []
    for name, mine, theirs in (("device", actual, want), ("site", actual_sites, want_sites)):
        if mine.keys() != theirs.keys():
            problems.append(f"{name} windows: {len(theirs.keys() - mine.keys())} missing, "
                            f"{len(mine.keys() - theirs.keys())} unexpected")
            continue
        problems += [f"{name} {key} {column}: {mine[key][column]} != {value}"
                     for key, row in theirs.items() for column, value in row.items()
                     if not expected.close(mine[key][column], value)]
    if books.total != total:
        problems.append(f"accounting {books} != {total} records")
    return problems


def _wait_until_equal(config: Config, suffix: str, readings: list[expected.Reading], total: int) -> None:
    problems: list = []

    def equal() -> bool:
        problems[:] = _mismatches(config, suffix, readings, total)
        return not problems

    waiting.wait_until(equal, timeout_s=CONVERGE_TIMEOUT_S, interval_s=2.0, what="the outputs to match",
                       on_timeout=lambda _: AssertionError(problems[:10]))


def test_follow_replay_catches_up_keeps_running_and_leaves_no_seam(migrated: Config) -> None:
    tag = uuid.uuid4().hex[:6]
    topic, version = f"telemetry-follow-{tag}", f"w{tag}"
    suffix = "_" + version
    # late=0 and out-of-order readings strictly inside the watermark delay: no reading is late in any
    # run. The simulator produces into a staging topic (registering the schemas); this test sends its
    # records on in two batches, so the data is the same as one continuous run's.
    delay_s = migrated.job.watermark_delay_s
    spec = dataclasses.replace(faulty_spec(f"{topic}-src", seed=31, devices=6, readings=36), late=0.0,
                               out_of_order_max_s=delay_s - 1.0)
    manifest = simulate(migrated, spec, produce=True, log=lambda _: None)
    records = sorted(manifest.records, key=lambda r: r.index)
    seam_ms = spec.start_ms + SEAM_MS
    cut = next(i for i, r in enumerate(records) if r.row is not None and r.event_time >= seam_ms)
    first, second = records[:cut], records[cut:]
    _produce(migrated, topic, first)
    rng = offsets.capture_range(migrated, topic)
    assert rng.total == len(first)

    # the windows holding readings from both sides of E: what a second job started at E gets wrong
    readings = [to_reading(r) for r in records if r.category in READING_CATEGORIES]
    before = expected.device_windows_1m([to_reading(r) for r in first if r.category in READING_CATEGORIES])
    after = expected.device_windows_1m(readings)
    seam = {key for key in before if after[key]["reading_count"] > before[key]["reading_count"]}
    assert len(seam) >= spec.devices // 2, seam  # the data exercises the seam

    lines: list[str] = []
    job_id: str | None = None
    try:
        # no partition is ever declared idle here (it would be while the topic is quiet between the
        # batches): then the watermark is the minimum over all partitions and the result does not
        # depend on the order in which the batch's partitions are fetched
        done = runner.run_replay(migrated, "aggregate", version, rng, cluster=True, follow=True, interval_s=1,
                                 extra={"source_idle_timeout_s": "3600"}, log=lines.append)
        job_id = done.job_id
        assert done.state == "following" and job_id is not None and done.follows, done
        assert any(line == f"submitted as Flink job {job_id}" for line in lines), lines
        assert any("p0:" in line for line in lines[2:]) and "caught up" in lines[-1], lines
        assert jobrunner.job_state(migrated, job_id) == "RUNNING"  # left running as the version's live job

        with connect(migrated) as conn:
            listed = versions.get_version(conn, "aggregate", version)
            assert (listed.state, listed.job_id, listed.end) == ("following", job_id, rng.end)
            with pytest.raises(ReplayError, match="RUNNING"):
                promote.drop(migrated, conn, "aggregate", version)  # its job writes into these tables

        _produce(migrated, topic, second)  # after E, continuing the first batch's event times
        last_ms = max(r.timestamp_ms for r in records)
        _produce_tail(migrated, topic, sorted(rng.end), last_ms + TAIL_AHEAD_MS, manifest.data["schema_ids"]["v2"])
        _wait_until_equal(migrated, suffix, readings, total=manifest.data["counts"]["total"])

        with connect(migrated) as conn:
            actual = outputs.device_windows(conn, suffix)
        for key in seam:  # whole: every reading of both batches, none replaced by a partial row
            assert actual[key]["reading_count"] == after[key]["reading_count"], key
        assert jobrunner.job_state(migrated, job_id) == "RUNNING"
        with connect(migrated) as conn:  # the explicit way to drop a following version: cancel its job
            gone = promote.drop(migrated, conn, "aggregate", version, cancel_job=True)
        assert f"job {job_id} (cancelled)" in gone and f"table device_agg_1m{suffix}" in gone, gone
        assert jobrunner.job_state(migrated, job_id) == "CANCELED"
    finally:  # whatever failed above: no job left running, no version left behind
        if job_id is not None and jobrunner.job_state(migrated, job_id) not in ("CANCELED", "FAILED", "FINISHED"):
            jobrunner.cancel(migrated, job_id)
            jobrunner.wait_for_state(migrated, job_id, {"CANCELED"}, timeout_s=120)
        with connect(migrated) as conn:
            if version in {v.version for v in versions.versions(conn, "aggregate")}:
                promote.drop(migrated, conn, "aggregate", version)
