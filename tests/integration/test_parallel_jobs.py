"""Both jobs at parallelism 2 on 2 TaskManagers of the standalone cluster, over a 6-partition topic:
the outputs equal the independent Python computation, as at parallelism 1 (test_aggregate_job.py,
test_alerts_job.py run the same checks on one subtask).

What parallelism could break, and what checks it here: records keyed by device land on other subtasks
than their source's (the windows, de-duplication, MATCH_RECOGNIZE and the silence detector are keyed by
device); each source subtask reads 3 of the 6 partitions and the watermark downstream is the minimum
over both subtasks' per-partition watermarks; the late rule is per partition (lateness.sql). The
simulated faults (out-of-order, late, duplicate, malformed) are the aggregate test's; the alerting
job gets every planted anomaly kind. Both jobs run at once (4 slots: 2 per TaskManager) to save time.

Those runs are bounded (idleness off). A live run at parallelism 2 must not be held back by an idle
partition (an empty one of the 6) nor by a source subtask with no partition at all (the 1-partition
device metadata topic): the last test checks its windows close.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from kappa import expected, jobrunner, outputs, waiting
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.simulate import Manifest, SimulationSpec, simulate
from kappa.stack.postgres import connect
from tests.integration.aggregate_support import assert_matches_python, faulty_spec, to_reading
from tests.integration.alerts_support import alert_rows, assert_alerts_match_planted, planted_anomalies
from tests.integration.cluster_parallel import subtask_placement, taskmanagers, vertex_parallelism
from tests.integration.scratch import Names, fresh_topic, versioned_outputs

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

PARTITIONS = 6
PARALLELISM = 2


@pytest.fixture(scope="module")
def two_taskmanagers(migrated: Config) -> Iterator[Config]:
    with taskmanagers(migrated, 2):
        yield migrated


def _six_partition_telemetry(config: Config, tag: str) -> tuple[str, Manifest]:
    """A topic of its own with 6 partitions, and simulated telemetry (faults and planted anomalies) in it: 16
    devices, whose keys reach all 6 partitions with this seed (12 left one empty)."""
    topic = fresh_topic(config, Names("parallel", tag).topic, PARTITIONS)
    manifest = simulate(config, faulty_spec(topic, seed=23, devices=16, readings=40), produce=True,
                        log=lambda _: None)
    assert len(manifest.data["partitions"]) == PARTITIONS, manifest.data["partitions"]
    return topic, manifest


def test_both_jobs_at_parallelism_2_on_2_taskmanagers_match_python(two_taskmanagers: Config) -> None:
    config = two_taskmanagers
    tag = uuid.uuid4().hex[:6]
    topic, manifest = _six_partition_telemetry(config, tag)
    planted_anomalies(manifest)
    aggregate_suffix = versioned_outputs(config, Names("par-agg", tag).suffix)
    alerts_suffix = versioned_outputs(config, Names("par-alerts", tag).suffix, "alerts")
    runs = {"aggregate": aggregate_suffix, "alerts": alerts_suffix}
    # lake=False: Iceberg's files committer runs as one subtask by design (and its writer is chained to
    # it), so the archive would hide whether every other operator ran on 2; the archive is checked by
    # test_aggregate_job and the TaskManager-kill test
    with ThreadPoolExecutor(len(runs)) as pool:  # each `flink run` client plans its job for a while: overlap them
        submitted = {job: pool.submit(jobrunner.submit, config, job, JobOptions(
            bounded=True, output_suffix=suffix, parallelism=PARALLELISM, lake=False,
            extra={"telemetry_topic": topic}))
            for job, suffix in runs.items()}
        jobs = {job: future.result() for job, future in submitted.items()}
    for job_id in jobs.values():
        assert jobrunner.wait_for_state(config, job_id, {"FINISHED"}, timeout_s=600) == "FINISHED"

    for job, job_id in jobs.items():
        parallelism = vertex_parallelism(config, job_id)
        assert set(parallelism.values()) == {PARALLELISM}, (job, parallelism)
        placement = subtask_placement(config, job_id)
        assert all(len(tms) == PARALLELISM for tms in placement.values()), (job, placement)

    assert_matches_python(config, aggregate_suffix, manifest, topic)
    with connect(config) as conn:
        assert_alerts_match_planted(alert_rows(conn, alerts_suffix), manifest)


def test_live_job_at_parallelism_2_is_not_held_back_by_idle_partitions(two_taskmanagers: Config) -> None:
    """Live (unbounded, idleness on): telemetry in 5 of 6 partitions, and an empty 1-partition device metadata
    topic, whose second source subtask has no partition. Every window the busy partitions' watermark has
    passed is written, and equals Python's; then the job is cancelled."""
    config = two_taskmanagers
    tag = uuid.uuid4().hex[:6]
    topic = fresh_topic(config, Names("parallel-live", tag).topic, PARTITIONS)
    suffix = versioned_outputs(config, Names("par-live", tag).suffix)
    manifest = simulate(config, SimulationSpec(devices=8, sites=3, readings_per_device=30, seed=23, topic=topic,
                                               anomalies=False), produce=True, log=lambda _: None)
    busy = {r.partition for r in manifest.records}
    assert len(busy) < PARTITIONS, "every partition has data: no idle one"  # seed 23, 8 devices: 5 of 6
    # the watermark the busy partitions allow: each partition's newest event time less the delay, the least
    newest = {p: max(r.event_time for r in manifest.records if r.partition == p) for p in busy}
    bound_ms = min(newest.values()) - config.job.watermark_delay_s * 1000
    want = {key: row for key, row in expected.device_windows_1m([to_reading(r) for r in manifest.records]).items()
            if key[1] + 60_000 <= bound_ms}
    assert want
    options = JobOptions(output_suffix=suffix, parallelism=PARALLELISM, lake=False,
                         extra={"telemetry_topic": topic, "devices_topic": f"device-metadata-parallel-{tag}"})
    job_id = jobrunner.submit(config, "aggregate", options)
    try:
        actual: dict = {}

        def written() -> bool:
            with connect(config) as conn:
                actual.clear()
                actual.update(outputs.device_windows(conn, suffix))
            if want.keys() <= actual.keys():
                return True
            assert jobrunner.job_state(config, job_id) == "RUNNING"
            return False

        waiting.wait_until(  # a liveness bound: idleness releases the watermark after 10 s
            written, timeout_s=300, interval_s=1, what="the windows", on_timeout=lambda _: AssertionError(
                f"{len(want.keys() - actual.keys())} of {len(want)} windows not written"))
    finally:
        jobrunner.cancel(config, job_id)
        jobrunner.wait_for_state(config, job_id, {"CANCELED"}, timeout_s=120)
    for key, row in want.items():
        for column, value in row.items():
            assert expected.close(actual[key][column], value), (key, column, actual[key][column], value)
