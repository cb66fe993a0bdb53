"""Restoring the aggregation job from a savepoint on the cluster, with its Iceberg sinks (apache/iceberg#10892).

The live job archives a first part of the stream; savepoint A is taken while it runs; a second part is
archived (so the tables commit checkpoints after A's); the job stops with savepoint B. Restoring A
would skip those later checkpoints as already committed and lose their records: `submit` refuses it,
naming both checkpoints. Restoring B (the newest) is accepted, and after a third part the telemetry
table holds every decodable record of the three parts exactly once.
"""

from __future__ import annotations

import pytest

from kappa import jobrunner, lake, savepoints, waiting
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.simulate import Manifest, SimulationSpec, simulate
from kappa.simulate.model import parse_time_ms
from tests.integration.aggregate_support import READING_CATEGORIES
from tests.integration.scratch import Names, fresh_topic, versioned_outputs

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

HOUR_MS = 3_600_000


def _part(config: Config, topic: str, hour: int) -> Manifest:
    """A few minutes of clean readings starting `hour` hours into the simulated day."""
    spec = SimulationSpec(devices=4, sites=2, readings_per_device=12, seed=hour, topic=topic, malformed=0,
                          anomalies=False, v1_fraction=0.0, late=0.0, duplicates=0.0, out_of_order=0.0,
                          start_ms=parse_time_ms("2026-03-02T08:00:00Z") + hour * HOUR_MS)
    return simulate(config, spec, produce=True, log=lambda _: None)


def _archived(config: Config, suffix: str) -> list[tuple[int, int]]:
    table = lake.catalog(config).load_table(lake.TELEMETRY.identifier(config, suffix))
    rows = table.scan(selected_fields=("kafka_partition", "kafka_offset")).to_arrow()
    return list(zip(rows["kafka_partition"].to_pylist(), rows["kafka_offset"].to_pylist(), strict=True))


def _wait_archived(config: Config, suffix: str, manifests: list[Manifest]) -> None:
    want = sum(1 for m in manifests for r in m.records if r.category in READING_CATEGORIES)
    waiting.wait_until(lambda: len(_archived(config, suffix)) >= want or None, timeout_s=180, interval_s=2,
                       what=f"{want} readings in the Iceberg telemetry table", retry_on=(Exception,))


def test_an_older_savepoint_is_refused_and_the_newest_restores_exactly_once(migrated: Config) -> None:
    config = migrated
    names = Names.new("savepoint")
    topic = fresh_topic(config, names.topic)
    suffix = versioned_outputs(config, names.suffix)
    options = JobOptions(output_suffix=suffix, extra={"telemetry_topic": topic})
    parts = [_part(config, topic, 0)]
    job_id = jobrunner.submit(config, "aggregate", options)
    resumed = None
    try:
        _wait_archived(config, suffix, parts)
        older = jobrunner.trigger_savepoint(config, job_id)
        parts.append(_part(config, topic, 1))
        _wait_archived(config, suffix, parts)  # committed at checkpoints after the savepoint's
        newest = jobrunner.stop_with_savepoint(config, job_id)
        job_id = None

        restored = savepoints.checkpoint_id(savepoints.read_metadata(config, older))
        with pytest.raises(savepoints.SavepointTooOld, match=f"is checkpoint {restored} of job") as refused:
            jobrunner.submit(config, "aggregate", options, savepoint=older)
        assert "iceberg#10892" in str(refused.value) and "telemetry" in str(refused.value)

        resumed = jobrunner.submit(config, "aggregate", options, savepoint=newest)
        parts.append(_part(config, topic, 2))
        _wait_archived(config, suffix, parts)
        archived = _archived(config, suffix)
        produced = [(r.partition, r.offset) for m in parts for r in m.records if r.category in READING_CATEGORIES]
        assert sorted(archived) == sorted(produced), "every reading of the three parts archived exactly once"
        assert len(set(archived)) == len(archived)
    finally:
        for running in (job_id, resumed):
            if running:
                jobrunner.cancel(config, running)
