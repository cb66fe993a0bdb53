"""A job cancelled at once must not break the Kafka clients of every later job on the same JobManager.

Kafka's SASL/SCRAM client registers its security provider JVM-wide (`Security.addProvider`, once per
JVM): whichever job's class loader loaded the Kafka client first owns it for the life of the JVM. With
the Kafka connector in `pipeline.jars`, a job cancelled before its first SCRAM handshake left a provider
whose class loader was closed before it had loaded the class the handshake needs, and every later job's
source enumerator failed with `NoClassDefFoundError: ...ScramSaslClient$1` (seen in two full test runs:
a smoke job cancelled 1 s after it started, on a JobManager freshly restarted by the HA test). The
connector is therefore on the class path of every Flink JVM (deploy/flink-lib/pom.xml), loaded once
by a class loader that is never closed.

This test restarts the session's cluster (fresh JVMs), cancels a job as soon as it runs, then runs a
bounded job to its end and compares its windows with Python's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from kappa import jobrunner, smoke, waiting
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.stack import manager
from kappa.stack.postgres import connect
from tests.integration.test_smoke_job import _assert_equal, _windows

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


@pytest.fixture
def fresh_cluster(migrated: Config) -> Iterator[Config]:
    """JVMs in which no job has loaded a Kafka client yet: the session's cluster as the stack started it
    if no job has run on it (this module runs first), else restarted."""
    if jobrunner.list_jobs(migrated):
        manager.service(migrated, "flink").kill9()  # fresh JVMs are the point: no graceful stop
        manager.up(migrated, only=["flink"], say=lambda m: print(m, flush=True))
    yield migrated


def test_a_job_cancelled_at_once_leaves_later_jobs_kafka_clients_working(fresh_cluster: Config) -> None:
    config = fresh_cluster
    topic, table = f"smoke-classload-{uuid.uuid4().hex[:6]}", "smoke_counts_classload"
    with connect(config) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (LIKE smoke_counts INCLUDING ALL)")
    rows = smoke.readings(500, seed=41)
    smoke.produce(config, rows, topic)

    # the first job of these JVMs: cancelled as soon as it runs, before its clients finish a handshake
    first = jobrunner.submit(config, "smoke", JobOptions(output_suffix="_classload", extra={"smoke_topic": topic}))
    waiting.wait_until(lambda: jobrunner.job_state(config, first) in {"RUNNING", "FAILED", "FINISHED"},
                       timeout_s=120, interval_s=0.05, what="the first job running")
    jobrunner.cancel(config, first)
    assert jobrunner.wait_for_state(config, first, {"CANCELED"}, timeout_s=120) == "CANCELED"

    # a later job reads and writes through Kafka with SCRAM, to its end
    with connect(config) as conn:
        conn.execute(f"TRUNCATE {table}")
    second = jobrunner.submit(config, "smoke", JobOptions(bounded=True, output_suffix="_classload",
                                                           extra={"smoke_topic": topic}))
    # a failed job raises JobError with its root exception; one that keeps restarting, on the timeout
    assert jobrunner.wait_for_state(config, second, {"FINISHED"}, timeout_s=300) == "FINISHED"
    _assert_equal(_windows(config, table), smoke.expected_windows(rows))
