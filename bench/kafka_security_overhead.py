"""What SASL_SSL (SCRAM-SHA-512 + TLS) costs a Kafka producer and consumer against PLAINTEXT, same run.

The stack's broker (secure, as always) and a second, throw-away broker of the same build with a
PLAINTEXT listener (its own ports and data folder, removed at the end) get the same load: N records
of telemetry-sized values produced idempotently with acks=all, then read back from the start by a
read_committed consumer. Each side runs `--rounds` times, alternating; the best round of each counts.
Prints both rates and the ratios secure/plain (goal >= 0.8).

With `--job`, also the aggregation job's decode-to-windows pipeline (bench/aggregate_throughput.py's
Avro path, blackhole sinks, local MiniCluster) reading the same simulated readings from each broker;
its rate is marginal (two input sizes, start-up excluded).

    .venv/bin/python bench/kafka_security_overhead.py [--records 200000] [--rounds 2] [--job]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import uuid

from confluent_kafka import TopicPartition

from kappa import kafka_clients
from kappa.config import LOCAL_SECRETS_FILE, Config, get_config
from kappa.private_files import write_private
from kappa.stack import manager
from kappa.stack.kafka import KafkaService
from kappa.stack.kafka_setup import ensure_topics


def plaintext_twin(config: Config, port_offset: int) -> Config:
    """The same configuration with a PLAINTEXT broker on other ports and in another data folder."""
    data_dir = config.data_dir / "bench-plaintext"
    kafka = config.kafka.model_copy(update={"port": config.kafka.port + port_offset,
                                            "controller_port": config.kafka.controller_port + port_offset,
                                            "security_protocol": "PLAINTEXT"})
    paths = config.paths.model_copy(update={"data_dir": data_dir})
    secrets = config.data_dir / LOCAL_SECRETS_FILE  # the controller password is read from there
    write_private(data_dir / LOCAL_SECRETS_FILE, secrets.read_text())
    return config.model_copy(update={"kafka": kafka, "paths": paths})


def produce(config: Config, topic: str, records: int, value: bytes) -> float:
    producer = kafka_clients.producer(config, **{"enable.idempotence": True, "acks": "all", "linger.ms": 5})
    started = time.perf_counter()
    for i in range(records):
        while True:
            try:
                producer.produce(topic, key=f"dev-{i % 500:04d}".encode(), value=value)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError(f"{topic}: records left undelivered")
    return time.perf_counter() - started


def consume(config: Config, topic: str, records: int) -> float:
    consumer = kafka_clients.consumer(config, f"bench-{uuid.uuid4().hex}", **{
        "isolation.level": "read_committed", "enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    started = time.perf_counter()
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    seen = 0
    while seen < records:
        seen += sum(1 for m in consumer.consume(10_000, 1.0) if not m.error())
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed


def one_round(config: Config, records: int, value: bytes) -> tuple[float, float]:
    """(records/s produced, records/s consumed) on a fresh topic, deleted afterwards."""
    topic = f"bench-sec-{uuid.uuid4().hex[:8]}"
    ensure_topics(config, [topic])
    try:
        return records / produce(config, topic, records, value), records / consume(config, topic, records)
    finally:
        admin = kafka_clients.admin(config)  # held: a collected client fails its pending futures
        admin.delete_topics([topic])[topic].result(30)


def job_rates(configs: dict[str, Config], small: int, large: int) -> dict[str, float]:
    """Marginal readings/s of the aggregation pipeline per broker (fastest of two runs per size)."""
    from kappa.benchkit import aggregate_into_blackholes, time_bounded_run
    from kappa.simulate import SimulationSpec, simulate

    def run(cfg: Config, topic: str) -> float:
        return time_bounded_run(cfg, aggregate_into_blackholes(), topic, "bench-avro")

    topics: dict[tuple[str, int], str] = {}
    for name, cfg in configs.items():
        for size in (small, large):
            topic = f"bench-secjob-{size}-{uuid.uuid4().hex[:6]}"
            spec = SimulationSpec(devices=100, sites=5, readings_per_device=size // 100, seed=3, topic=topic,
                                  anomalies=False, v1_fraction=0.2)
            simulate(cfg, spec, produce=True, log=lambda _: None)
            topics[(name, size)] = topic
    run(configs["PLAINTEXT"], topics[("PLAINTEXT", small)])  # warm-up
    times: dict[tuple[str, int], float] = {}
    for _ in range(2):
        for size in (small, large):
            for name, cfg in configs.items():  # interleaved: machine load drifts hit both
                elapsed = run(cfg, topics[(name, size)])
                print(f"  job {name:<9} {size:>8} readings: {elapsed:6.1f} s", flush=True)
                times[(name, size)] = min(elapsed, times.get((name, size), elapsed))
    return {name: (large - small) / (times[(name, large)] - times[(name, small)]) for name in configs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--port-offset", type=int, default=7, help="PLAINTEXT broker: the stack's ports + this")
    parser.add_argument("--job", action="store_true", help="also the aggregation pipeline's rate")
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    config = get_config()
    if not config.kafka.secure:
        print("the configured cluster is PLAINTEXT: nothing to compare", file=sys.stderr)
        return 2
    started = manager.up(config, only=["postgres", "kafka", "registry"] if args.job else ["kafka"])
    plain_config = plaintext_twin(config, args.port_offset)
    plain = KafkaService(plain_config)
    value = os.urandom(280)  # about an Avro reading with its wire-format header
    best: dict[str, tuple[float, float]] = {"SASL_SSL": (0.0, 0.0), "PLAINTEXT": (0.0, 0.0)}
    try:
        plain.start()
        for _ in range(args.rounds):
            for name, cfg in (("PLAINTEXT", plain_config), ("SASL_SSL", config)):
                rates = one_round(cfg, args.records, value)
                best[name] = (max(best[name][0], rates[0]), max(best[name][1], rates[1]))
                print(f"  {name:<9} produce {rates[0]:>10,.0f}/s  consume {rates[1]:>10,.0f}/s", flush=True)
        jobs = job_rates({"PLAINTEXT": plain_config, "SASL_SSL": config}, args.small, args.large) if args.job else {}
    finally:
        plain.stop()
        shutil.rmtree(plain_config.data_dir, ignore_errors=True)
        for svc in reversed(started):
            svc.stop()
    (sp, sc), (pp, pc) = best["SASL_SSL"], best["PLAINTEXT"]
    print(f"{args.records} records of {len(value)} B, best of {args.rounds} rounds")
    print(f"produce  SASL_SSL {sp:,.0f}/s  PLAINTEXT {pp:,.0f}/s  ratio {sp / pp:.2f}")
    print(f"consume  SASL_SSL {sc:,.0f}/s  PLAINTEXT {pc:,.0f}/s  ratio {sc / pc:.2f}")
    if jobs:
        print(f"aggregation pipeline  SASL_SSL {jobs['SASL_SSL']:,.0f}/s  PLAINTEXT {jobs['PLAINTEXT']:,.0f}/s  "
              f"ratio {jobs['SASL_SSL'] / jobs['PLAINTEXT']:.2f}  (goal >= 0.8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
