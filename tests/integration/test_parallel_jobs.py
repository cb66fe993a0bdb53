"""Both jobs at parallelism 2 on 2 TaskManagers of the standalone cluster, over a 6-partition topic:
the outputs equal the independent Python computation, as at parallelism 1 (test_aggregate_job.py,
test_alerts_job.py run the same checks on one subtask).

What parallelism could break, and what checks it here: records keyed by device land on other subtasks
than their source's (the windows, de-duplication, MATCH_RECOGNIZE and the silence detector are keyed by
device); each source subtask reads 3 of the 6 partitions and the watermark downstream is the minimum
over both subtasks' per-partition watermarks; the late rule is per partition (lateness.sql). The
simulated faults (out-of-order, late, duplicate, malformed) are the aggregate test's; the alerting
job gets every planted anomaly kind. Both jobs run at once (4 slots: 2 per TaskManager) to save time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import NewTopic

from kappa import jobrunner, outputs
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.kafka_clients import admin
from kappa.simulate import Manifest, simulate
from kappa.stack.postgres import connect
from tests.integration.aggregate_support import assert_matches_python, faulty_spec
from tests.integration.alerts_support import alert_rows, assert_alerts_match_planted, planted_anomalies
from tests.integration.cluster_parallel import subtask_placement, taskmanagers, vertex_parallelism

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
    topic = f"telemetry-parallel-{tag}"
    client = admin(config)  # kept referenced until the answer: a collected client aborts the request
    client.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    manifest = simulate(config, faulty_spec(topic, seed=23, devices=16, readings=40), produce=True,
                        log=lambda _: None)
    assert len(manifest.data["partitions"]) == PARTITIONS, manifest.data["partitions"]
    return topic, manifest


def test_both_jobs_at_parallelism_2_on_2_taskmanagers_match_python(two_taskmanagers: Config) -> None:
    config = two_taskmanagers
    tag = uuid.uuid4().hex[:6]
    topic, manifest = _six_partition_telemetry(config, tag)
    planted_anomalies(manifest)
    aggregate_suffix, alerts_suffix = f"_par_agg_{tag}", f"_par_alerts_{tag}"
    with connect(config) as conn:
        outputs.create_versioned_tables(conn, aggregate_suffix)
        outputs.create_versioned_tables(conn, alerts_suffix, "alerts")
    jobs = {
        job: jobrunner.submit(config, job, JobOptions(bounded=True, output_suffix=suffix, parallelism=PARALLELISM,
                                                      extra={"telemetry_topic": topic}))
        for job, suffix in (("aggregate", aggregate_suffix), ("alerts", alerts_suffix))
    }
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
