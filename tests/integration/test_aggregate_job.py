"""The aggregation job on the real stack (Kafka, registry, PostgreSQL) in a local MiniCluster, with
out-of-order, late, duplicate, malformed and mixed-schema input, compared with Python."""

from __future__ import annotations

import pytest

from kappa import jobrunner, outputs
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.stack.postgres import connect
from tests.integration.aggregate_support import assert_lake_matches, assert_matches_python, prepare
from tests.integration.kafka_support import committed_messages, latest_windows

pytestmark = pytest.mark.integration


def test_aggregate_job_matches_python_and_accounts_for_every_record(migrated: Config) -> None:
    topic, suffix, manifest = prepare(migrated, "local")
    options = JobOptions(bounded=True, output_suffix=suffix, extra={"telemetry_topic": topic})
    jobrunner.run_local(migrated, "aggregate", options, wait=True)
    books = assert_matches_python(migrated, suffix, manifest, topic)
    # every re-sent copy is dropped as a duplicate, unless the copy itself arrived late (then it is
    # counted late); the total is exact either way (checked above)
    assert 0 < books.duplicates <= manifest.data["counts"]["duplicate"]

    # the aggregates topic is an upsert topic keyed by (device, window start): its last record per key
    # is the table's row (whether a window was written once or updated depends on how fast this bounded
    # run read; test_late_updates.py shows the updates at device pace)
    aggregates = f"{migrated.kafka.aggregates_topic}{suffix}"
    latest = latest_windows(migrated, aggregates)
    dead = committed_messages(migrated, f"{migrated.kafka.dead_letter_topic}{suffix}")
    with connect(migrated) as conn:
        device_rows = outputs.device_windows(conn, suffix)
    assert latest.keys() == device_rows.keys()
    assert all(latest[key]["reading_count"] == row["reading_count"] for key, row in device_rows.items())
    assert len(dead) == manifest.data["counts"]["malformed"]
    # the Iceberg archive: every decodable record once, and the same windows as PostgreSQL
    assert assert_lake_matches(migrated, suffix, manifest) == books.total - books.dead_letters
