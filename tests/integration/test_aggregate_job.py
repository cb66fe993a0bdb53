"""The aggregation job on the real stack (Kafka, registry, PostgreSQL) in a local MiniCluster, with
out-of-order, late, duplicate, malformed and mixed-schema input, compared with Python."""

from __future__ import annotations

import pytest

from kappa import jobrunner
from kappa.config import Config
from kappa.flinkenv import JobOptions
from tests.integration.aggregate_support import assert_matches_python, prepare
from tests.integration.kafka_support import committed_messages

pytestmark = pytest.mark.integration


def test_aggregate_job_matches_python_and_accounts_for_every_record(migrated: Config) -> None:
    topic, suffix, manifest = prepare(migrated, "local")
    options = JobOptions(bounded=True, output_suffix=suffix, extra={"telemetry_topic": topic})
    jobrunner.run_local(migrated, "aggregate", options, wait=True)
    books = assert_matches_python(migrated, suffix, manifest, topic)
    # every re-sent copy is dropped as a duplicate, unless the copy itself arrived late (then it is
    # counted late); the total is exact either way (checked above)
    assert 0 < books.duplicates <= manifest.data["counts"]["duplicate"]

    windows = committed_messages(migrated, f"{migrated.kafka.aggregates_topic}{suffix}")
    dead = committed_messages(migrated, f"{migrated.kafka.dead_letter_topic}{suffix}")
    from kappa import outputs
    from kappa.stack.postgres import connect

    with connect(migrated) as conn:
        device_rows = outputs.device_windows(conn, suffix)
    assert len(windows) == len(device_rows), "each window once in the exactly-once aggregates topic"
    assert sorted(k.decode() for k, _ in windows) == sorted(d for d, _ in device_rows)
    assert len(dead) == manifest.data["counts"]["malformed"]
