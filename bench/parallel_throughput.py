"""Aggregation job throughput on the standalone cluster at parallelism 2 (2 TaskManagers) against 1, same run.

The real job (jobs/aggregate.py: decode, late split, de-duplication, metadata join, windows, PostgreSQL
and exactly-once Kafka sinks; the Iceberg archive is left out, bench/lake_sink_cost.py measures it) runs
bounded on a 6-partition topic at each parallelism,
interleaved so drift in the machine's load hits both. A run's time is its processing time by the
JobManager's clock: from the first telemetry source subtask RUNNING to the last subtask FINISHED (REST
subtask times), so the client's planning, scheduling and deployment are excluded (on this shared machine
they varied from 5 to 40 s, more than the processing itself). The final checkpoint of a finishing job
is included. Prints both rates and the ratio. Needs a second TaskManager: started here (and stopped)
unless the cluster has one.

    .venv/bin/python bench/parallel_throughput.py [--readings 100000] [--repeats 2]

On 2 cores, expect a ratio below 2: both TaskManagers share the 2 cores with the JobManager, Kafka,
PostgreSQL and the client, so a second subtask adds threads, not CPU; the keyed exchanges between the
TaskManagers serialize every record over the loopback; each subtask has its own sinks (JDBC batches,
Kafka transactions). The load average is printed: another process's load skews a run.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid

import requests
from confluent_kafka.admin import NewTopic

from kappa import jobrunner, outputs, waiting
from kappa.config import Config, get_config
from kappa.db import migrate
from kappa.flinkenv import JobOptions
from kappa.kafka_clients import admin
from kappa.simulate import SimulationSpec, simulate
from kappa.stack import manager
from kappa.stack.flink import FlinkService
from kappa.stack.postgres import connect

PARTITIONS = 6


def produce_input(config: Config, readings: int, tag: str) -> tuple[str, int]:
    """A 6-partition topic of simulated readings (no faults); returns it and how many readings it holds."""
    topic = f"bench-parallel-{tag}"
    client = admin(config)  # kept referenced until the answer: a collected client aborts the request
    client.create_topics([NewTopic(topic, PARTITIONS, config.kafka.replication_factor)])[topic].result(30)
    devices = 120
    spec = SimulationSpec(devices=devices, sites=6, readings_per_device=readings // devices, seed=7, topic=topic,
                          anomalies=False, v1_fraction=0.2)
    manifest = simulate(config, spec, produce=True, log=lambda _: None)
    return topic, len(manifest.records)


def processing_s(config: Config, job_id: str) -> float:
    """First telemetry source subtask RUNNING -> last subtask FINISHED, in seconds."""
    started, finished = [], []
    for vertex in jobrunner.job_details(config, job_id)["vertices"]:
        url = f"{config.flink.rest_url}/jobs/{job_id}/vertices/{vertex['id']}/subtasktimes"
        response = requests.get(url, timeout=10)
        response.raise_for_status()
        for subtask in response.json()["subtasks"]:
            finished.append(int(subtask["timestamps"]["FINISHED"]))
            if vertex["name"].startswith("Source: telemetry_raw"):
                started.append(int(subtask["timestamps"]["RUNNING"]))
    assert started, "no telemetry source vertex"
    return (max(finished) - min(started)) / 1000


def run_job(config: Config, topic: str, parallelism: int) -> float:
    """Processing seconds of one bounded run of the aggregation job."""
    suffix = f"_bench_par_{uuid.uuid4().hex[:6]}"
    with connect(config) as conn:
        outputs.create_versioned_tables(conn, suffix)
    options = JobOptions(bounded=True, output_suffix=suffix, parallelism=parallelism, lake=False,
                         extra={"telemetry_topic": topic})
    job_id = jobrunner.submit(config, "aggregate", options)
    jobrunner.wait_for_state(config, job_id, {"FINISHED"}, timeout_s=1800)
    return processing_s(config, job_id)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2, help="runs per parallelism (the fastest counts)")
    args = parser.parse_args()
    config = get_config()
    started = manager.up(config, only=["postgres", "kafka", "registry", "flink"])
    flink = manager.service(config, "flink")
    assert isinstance(flink, FlinkService)
    added = None
    try:
        if flink.registered_taskmanagers() < 2:
            added = config.flink.taskmanagers
            flink.start_taskmanager(added)
            waiting.wait_until(lambda: flink.registered_taskmanagers() >= 2, timeout_s=120, what="a second TaskManager",
                               on_timeout=lambda _: SystemExit("the second TaskManager did not register"))
        with connect(config) as conn:
            migrate(conn)
        print(f"producing {args.readings} readings on {PARTITIONS} partitions ...", flush=True)
        topic, readings = produce_input(config, args.readings, uuid.uuid4().hex[:6])
        times: dict[int, float] = {}
        for _ in range(args.repeats):
            for parallelism in (1, 2):  # interleaved, so drift in the machine's load hits both
                elapsed = run_job(config, topic, parallelism)
                load = os.getloadavg()[0]
                print(f"  parallelism {parallelism}: {elapsed:6.1f} s processing  (load average {load:.1f})",
                      flush=True)
                times[parallelism] = min(elapsed, times.get(parallelism, elapsed))
        rates = {p: readings / times[p] for p in (1, 2)}
        print(f"parallelism 1 (1 slot)               : {rates[1]:>9,.0f} readings/s (fastest run)")
        print(f"parallelism 2 (2 TaskManagers)       : {rates[2]:>9,.0f} readings/s")
        print(f"ratio 2 / 1                          : {rates[2] / rates[1]:.2f}")
    finally:
        if added is not None:
            flink.taskmanager_process(added).stop()
        for svc in reversed(started):
            svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
