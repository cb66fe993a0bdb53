"""kappa.bounded without Kafka: which statements it pins, what it records, and the saved ends of a
detached run (the pinning itself, against a real topic, is in tests/integration/test_metrics.py)."""

from __future__ import annotations

import pytest

from kappa import bounded
from kappa.config import load_config

pytestmark = pytest.mark.unit

REPLAY_SOURCE = """CREATE TABLE telemetry_raw (payload BYTES) WITH (
  'connector' = 'kafka',
  'topic' = 'telemetry',
  'properties.group.id' = 'kappa-aggregate_v2',
  'scan.startup.mode' = 'specific-offsets',
  'scan.startup.specific-offsets' = 'partition:0,offset:0;partition:1,offset:3',
  'scan.bounded.mode' = 'specific-offsets',
  'scan.bounded.specific-offsets' = 'partition:0,offset:10;partition:1,offset:12'
)"""

SINK = """CREATE TABLE aggregates_out (id STRING) WITH (
  'connector' = 'kafka',
  'topic' = 'aggregates',
  'format' = 'json'
)"""


def test_a_source_bounded_by_specific_offsets_is_kept_and_its_ends_recorded() -> None:
    config = load_config(profile="test")
    statement, read = bounded.pin_ends(config, REPLAY_SOURCE)
    assert statement == REPLAY_SOURCE
    assert read == bounded.BoundedRead("kappa-aggregate_v2", "telemetry", {0: 10, 1: 12})


def test_statements_that_are_no_bounded_kafka_source_are_left_alone() -> None:
    config = load_config(profile="test")
    unbounded = REPLAY_SOURCE.split(",\n  'scan.bounded.mode'")[0] + "\n)"
    for statement in (SINK, unbounded, "CREATE VIEW v AS SELECT 1"):
        assert bounded.pin_ends(config, statement) == (statement, None)


def test_a_detached_runs_ends_are_saved_until_it_finishes(tmp_path, monkeypatch) -> None:
    config = load_config(profile="test", environ={"KAPPA_PROFILE": "test", "KAPPA_PATHS__DATA_DIR": str(tmp_path)})
    committed: list[list[bounded.BoundedRead]] = []
    monkeypatch.setattr(bounded, "commit", lambda _config, reads: committed.append(reads))
    reads = [bounded.BoundedRead("kappa-aggregate", "telemetry", {0: 5, 2: 7})]
    bounded.save(config, "abc123", reads)
    assert bounded.commit_saved(config, "abc123") is True
    assert committed == [reads]  # partition numbers survive JSON's string keys
    assert bounded.commit_saved(config, "abc123") is False  # once
    bounded.save(config, "nothing", [])
    assert bounded.commit_saved(config, "nothing") is False
