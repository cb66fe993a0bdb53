"""Exactly-once under failure: the aggregation job runs on the standalone cluster, its TaskManager is
killed with SIGKILL mid-stream, and after recovery from the last checkpoint the PostgreSQL tables
still equal the independent Python computation and a read_committed consumer of the aggregates
(upsert) topic sees each version of a window once: a window's versions have strictly growing reading
counts (each late firing adds a reading), and the last one is the table's row. The Iceberg archive
(committed on checkpoints) holds every decodable record once and the same windows."""

from __future__ import annotations

import pytest

from kappa import jobrunner
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.simulate import simulate
from tests.integration.aggregate_support import (
    assert_lake_matches,
    assert_matches_python,
    assert_topic_versions_exactly_once,
    faulty_spec,
)
from tests.integration.cluster_support import run_with_taskmanager_kill
from tests.integration.scratch import Names, versioned_outputs

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.slow]


def test_taskmanager_kill9_mid_stream_loses_and_duplicates_nothing(migrated: Config,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # While the TaskManager is away each restart fails at once (no slots): on a loaded 2-core machine its
    # return took longer than 5 failures x restart_delay_s, and the job failed for good. The submitting
    # client reads the config from its environment: allow more restarts for this job only.
    monkeypatch.setenv("KAPPA_JOB__RESTART_MAX_FAILURES", "30")
    names = Names.new("fault")
    topic, suffix = names.topic, versioned_outputs(migrated, names.suffix)
    manifest = simulate(migrated, faulty_spec(topic, seed=5, devices=60, readings=1000), produce=True,
                        log=lambda _: None)
    # Bounded: the job reads up to the end offsets captured at its start, and finishes by itself.
    options = JobOptions(bounded=True, output_suffix=suffix, extra={"telemetry_topic": topic})
    job_id = run_with_taskmanager_kill(migrated, "aggregate", options)
    restarts = jobrunner.job_details(migrated, job_id).get("vertices", [])
    assert restarts, "job details unavailable"

    books = assert_matches_python(migrated, suffix, manifest, topic)
    print(f"after the fault: {books}", flush=True)
    assert_topic_versions_exactly_once(migrated, suffix)
    # Iceberg: every decodable record exactly once (by Kafka position), windows equal device_agg_1m
    assert assert_lake_matches(migrated, suffix, manifest) == books.total - books.dead_letters
