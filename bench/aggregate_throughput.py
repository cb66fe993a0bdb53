"""Sustained rate of the aggregation job's Avro path against Flink's native JSON format, same run.

Both paths run the same SQL after decoding (late split, de-duplication, 1-minute device and
5-minute site windows with allowed lateness, duplicate counts; the Avro path also its dead-letter branch) into blackhole
sinks, in a local MiniCluster, over the same readings: Avro in
the Confluent wire format (decoded by the project's Java function, with dead-letter checks) versus
JSON read by Flink's `json` format. Start-up is excluded by timing each path at two input sizes and
dividing the extra records by the extra time (marginal rate). Prints both rates and the ratio.

    .venv/bin/python bench/aggregate_throughput.py [--small 40000] [--large 200000]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jobs import aggregate
from kappa import kafka_clients
from kappa.benchkit import AGGREGATE_VIEWS, aggregate_into_blackholes, time_bounded_run
from kappa.config import get_config
from kappa.pipeline import Stage, blackholes
from kappa.simulate import SimulationSpec, simulate
from kappa.stack import manager
from kappa.stack.kafka_setup import recreate_topic

BENCH_SQL = Path(__file__).resolve().parent / "sql"
JSON_FIELDS = ("device_id", "site_id", "device_type", "seq", "event_time", "status", "firmware_version",
               "temperature_c", "humidity_pct", "pressure_hpa", "vibration_mm_s", "power_w", "battery_pct",
               "signal_rssi_dbm")


def produce_inputs(config, records: int, tag: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The same readings twice: Avro (simulator, via the registry) and JSON."""
    avro_topic, json_topic = f"bench-avro-{tag}", f"bench-json-{tag}"
    for topic in (avro_topic, json_topic):
        recreate_topic(config, topic)
    devices = 100
    spec = SimulationSpec(devices=devices, sites=5, readings_per_device=records // devices, seed=3,
                          topic=avro_topic, anomalies=False, v1_fraction=0.2)
    manifest = simulate(config, spec, produce=True, log=lambda _: None)
    producer = kafka_clients.producer(config, **{"linger.ms": 50})
    for record in manifest.records:
        row = {name: record.row.get(name) for name in JSON_FIELDS} if record.row else {}
        producer.produce(json_topic, key=record.key.encode(), value=json.dumps(row).encode(),
                         timestamp=record.timestamp_ms)
        producer.poll(0)
    producer.flush(60)
    return avro_topic, json_topic


def run_path(config, path: str, topic: str) -> float:  # type: ignore[no-untyped-def]
    """Wall time of one bounded run: the job's own logic (kappa.pipeline resolves it from the SQL headers)
    between a swapped source and blackhole sinks; the Avro path keeps the job's dead-letter branch,
    which decodes too."""
    if path == "avro":
        return time_bounded_run(config, aggregate_into_blackholes(), topic, "bench-avro")
    pipeline = aggregate.PIPELINE.with_source(Stage("json", (BENCH_SQL / "json_source.sql",)))
    return time_bounded_run(config, pipeline.with_sinks(blackholes(*AGGREGATE_VIEWS)), topic, "bench-json")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=40_000)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=2, help="runs per path and size (the fastest counts)")
    args = parser.parse_args()
    config = get_config()
    started = manager.up(config, only=["postgres", "kafka", "registry"])
    try:
        print(f"producing inputs ({args.small} and {args.large} readings, Avro and JSON) ...", flush=True)
        topics = {size: produce_inputs(config, size, str(size)) for size in (args.small, args.large)}
        run_path(config, "json", topics[args.small][1])  # warm-up: JVM, class loading, caches
        times: dict[tuple[str, int], float] = {}
        for _ in range(args.repeats):
            for size in (args.small, args.large):
                for path in ("json", "avro"):  # interleaved, so drift in machine load hits both
                    elapsed = run_path(config, path, topics[size][0 if path == "avro" else 1])
                    print(f"  {path:<4} {size:>8} readings: {elapsed:6.1f} s", flush=True)
                    times[(path, size)] = min(elapsed, times.get((path, size), elapsed))
        rates = {path: (args.large - args.small) / (times[(path, args.large)] - times[(path, args.small)])
                 for path in ("json", "avro")}
        print(f"JSON (Flink json format) : {rates['json']:>10,.0f} readings/s (marginal, start-up excluded)")
        print(f"Avro (Confluent + Java)  : {rates['avro']:>10,.0f} readings/s")
        print(f"ratio Avro / JSON        : {rates['avro'] / rates['json']:.2f}  (goal >= 0.90)")
    finally:
        for svc in reversed(started):
            svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
