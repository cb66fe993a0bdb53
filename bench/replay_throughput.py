"""Replay rate (the aggregation job re-run over a captured offset range into a versioned output)
against a plain Kafka consumer reading the same range, same run.

The replay's rate is marginal (two input sizes, extra records / extra time) so job start-up is
excluded; the plain consumer (confluent-kafka, read_committed, values only counted) reads exactly
the same offset ranges. Prints both rates and the ratio. Versions it creates are dropped again.

    .venv/bin/python bench/replay_throughput.py [--small 40000] [--large 200000]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

from confluent_kafka import TopicPartition

from kappa import kafka_clients
from kappa.config import Config, get_config
from kappa.db import migrate
from kappa.replay import offsets, promote, runner
from kappa.simulate import SimulationSpec, simulate
from kappa.stack import manager
from kappa.stack.postgres import connect


def plain_read(config: Config, rng: offsets.OffsetRange) -> float:
    """Seconds for a plain consumer to read every record of the range."""
    consumer = kafka_clients.consumer(config, f"bench-{uuid.uuid4().hex}",
        **{"isolation.level": "read_committed", "enable.auto.commit": False})
    started = time.perf_counter()
    consumer.assign([TopicPartition(rng.topic, p, rng.start.get(p, 0)) for p in rng.end])
    remaining = {p for p in rng.end if rng.end[p] > rng.start.get(p, 0)}
    while remaining:
        for message in consumer.consume(10_000, 1.0):
            if message.error():
                continue
            if message.offset() + 1 >= rng.end[message.partition()]:
                remaining.discard(message.partition())
        positions = consumer.position([TopicPartition(rng.topic, p) for p in list(remaining)])
        remaining -= {tp.partition for tp in positions if tp.offset >= rng.end[tp.partition]}
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=40_000)
    parser.add_argument("--large", type=int, default=200_000)
    args = parser.parse_args()
    config = get_config()
    # the object store: a replay writes the archive's Iceberg branches too, as `kappa replay run` does
    started = manager.up(config, only=["postgres", "kafka", "registry", "objectstore"])
    versions: list[str] = []
    try:
        with connect(config) as conn:
            migrate(conn)
        ranges = {}
        for size in (args.small, args.large):
            topic = f"bench-replay-{size}-{uuid.uuid4().hex[:6]}"
            devices = 100
            spec = SimulationSpec(devices=devices, readings_per_device=size // devices, seed=2, topic=topic,
                                  anomalies=False, v1_fraction=0.2)
            simulate(config, spec, produce=True, log=lambda _: None)
            ranges[size] = offsets.capture_range(config, topic)
        replay_s, plain_s = {}, {}
        warm = f"bench{uuid.uuid4().hex[:6]}"  # warm-up: JVM start, class loading
        versions.append(warm)
        runner.run_replay(config, "aggregate", warm, ranges[args.small], log=lambda _: None)
        for size, rng in ranges.items():
            version = f"bench{uuid.uuid4().hex[:6]}"
            versions.append(version)
            t0 = time.perf_counter()
            runner.run_replay(config, "aggregate", version, rng, log=lambda _: None)
            replay_s[size] = time.perf_counter() - t0
            plain_s[size] = plain_read(config, rng)
            print(f"  {rng.total:>8} records: replay {replay_s[size]:6.1f} s, plain consumer {plain_s[size]:5.2f} s",
                  flush=True)
        extra = ranges[args.large].total - ranges[args.small].total
        replay_rate = extra / (replay_s[args.large] - replay_s[args.small])
        plain_rate = ranges[args.large].total / plain_s[args.large]
        print(f"replay (aggregate job, marginal, start-up excluded): {replay_rate:>10,.0f} records/s")
        print(f"plain consumer over the same range:                  {plain_rate:>10,.0f} records/s")
        print(f"ratio replay / plain consumer: {replay_rate / plain_rate:.3f}")
    finally:
        with connect(config) as conn:
            for version in versions:
                promote.drop(config, conn, "aggregate", version)
        for svc in reversed(started):
            svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
