"""Counters from inside the alerting job's keyed functions (Java, udfs/java) reach Prometheus's Pushgateway, on the
real stack: what the SQL cannot count (matches the cool-down suppressed, silences raised and
resolved), named in docs/metrics.md. A live local run reports through the same reporter options as
the cluster (kappa.stack.flink.reporter_settings), and each counter must reach exactly the number of
events planted in its input."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from kappa import jobrunner
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.stack.flink import reporter_settings
from tests.integration.scratch import Names, versioned_outputs
from tests.integration.test_alerts_job import T0, Fleet

pytestmark = pytest.mark.integration

PREFIX = "flink_taskmanager_job_task_operator_kappa_"
WAIT_S = 180  # upper bound for the counters to reach their values (a failure, not a measurement)


def _counters(config: Config, pipeline_name: str) -> dict[str, float]:
    """The kappa_* operator counters the Pushgateway holds for one job, summed over subtasks."""
    text = requests.get(f"{config.metrics.pushgateway_url}/metrics", timeout=10).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(PREFIX) and sample.labels.get("job_name") == pipeline_name:
                name = sample.name.removeprefix(PREFIX)
                found[name] = found.get(name, 0.0) + sample.value
    return found


def test_the_alerting_jobs_keyed_functions_count_what_the_sql_cannot(migrated: Config) -> None:
    names = Names.new("udf-metrics")
    suffix, topic = names.suffix, names.topic
    f = Fleet(names.tag)
    cool, hot = 60.0, 90.0
    # OVERHEATING (thermal: above 85.0 three times): one alert, then a second run 50 s later, inside
    # the 300 s cool-down: suppressed once
    temps = [cool] * 3 + [hot] * 3 + [cool] * 2 + [hot] * 3 + [cool] * 50
    f.series("oh", "thermal", temps, partition=0)
    # DEVICE_SILENT: 200 s without a reading (more than 180 s), then it speaks again: raised, resolved
    f.series("sl", "thermal", [cool] * 4, partition=0)
    f.series("sl", "thermal", [cool] * 35, start=T0 + 230_000, partition=0)
    # every reading in one partition: the others go idle (no data at all), so the watermark follows
    # this partition alone and the data ends with both devices speaking (no final silence)
    f.produce(migrated, topic)
    versioned_outputs(migrated, suffix, "alerts")

    want = {"alerts_suppressed": 1.0, "silences_raised": 1.0, "silences_resolved": 1.0}
    options = JobOptions(output_suffix=suffix, extra={"telemetry_topic": topic}, flink=reporter_settings(migrated))
    client = jobrunner.run_local(migrated, "alerts", options, wait=False).get_job_client()
    try:
        deadline = time.monotonic() + WAIT_S
        got = _counters(migrated, f"alerts{suffix}")
        while got != want and time.monotonic() < deadline:
            time.sleep(2)
            got = _counters(migrated, f"alerts{suffix}")
        assert got == want, f"counters on the Pushgateway: {got}, planted: {want}"
    finally:
        client.cancel().result()
