"""Cost of Flink's Prometheus (Pushgateway) reporter: the aggregation job with it on against off, same run.

The real job (jobs/aggregate.py, every sink) runs bounded in a local MiniCluster over the same
readings, alternately with `metrics.report_local_jobs` off and on (the reporter the cluster uses,
pushing every `metrics.scrape_interval_s` to the stack's Pushgateway). Start-up is excluded by timing
two input sizes and dividing the extra readings by the extra time (marginal rate). While a run with
the reporter is going, the Pushgateway is polled to prove the reporter really pushed.

    .venv/bin/python bench/reporter_overhead.py [--small 20000] [--large 100000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid

import requests

from kappa import jobrunner, kafka_clients, outputs, reference
from kappa.config import Config, get_config
from kappa.db import migrate
from kappa.flinkenv import JobOptions
from kappa.simulate import SimulationSpec, simulate
from kappa.stack import manager
from kappa.stack.postgres import connect

SERVICES = ["postgres", "kafka", "registry", "pushgateway"]


def produce(config: Config, readings: int) -> str:
    from confluent_kafka.admin import NewTopic

    topic = f"bench-reporter-{readings}-{uuid.uuid4().hex[:6]}"
    admin = kafka_clients.admin(config)  # held: a collected client fails its pending futures
    admin.create_topics([NewTopic(topic, config.kafka.partitions, 1)])[topic].result(30)
    devices = 100
    spec = SimulationSpec(devices=devices, sites=5, readings_per_device=readings // devices, seed=5, topic=topic,
                          anomalies=False)
    simulate(config, spec, produce=True, log=lambda _: None)
    return topic


class PushWatch:
    """Polls the Pushgateway while a run goes: did a local job's reporter push any metric group?"""

    def __init__(self, config: Config) -> None:
        self.url = f"{config.metrics.pushgateway_url}/api/v1/metrics"
        self.pushed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(1.0) and not self.pushed:
            try:
                groups = requests.get(self.url, timeout=5).json().get("data", [])
            except requests.RequestException:
                continue
            self.pushed = any(str(g.get("labels", {}).get("job", "")).startswith("kappa-flink-local") for g in groups)

    def __enter__(self) -> PushWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def run(config: Config, topic: str, reporter: bool) -> tuple[float, bool]:
    """Wall time of one bounded run into fresh versioned outputs, and whether the reporter pushed."""
    suffix = f"_bench_rep_{uuid.uuid4().hex[:6]}"
    with connect(config) as conn:
        outputs.create_versioned_tables(conn, suffix)
    metrics = config.metrics.model_copy(update={"report_local_jobs": reporter})
    run_config = config.model_copy(update={"metrics": metrics})
    options = JobOptions(bounded=True, output_suffix=suffix, extra={"telemetry_topic": topic})
    try:
        with PushWatch(config) as watch:
            started = time.perf_counter()
            jobrunner.run_local(run_config, "aggregate", options, wait=True)
            elapsed = time.perf_counter() - started
        return elapsed, watch.pushed
    finally:
        with connect(config) as conn:
            outputs.job_outputs("aggregate").drop_tables(conn, suffix)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--small", type=int, default=20_000, help="readings of the small input")
    parser.add_argument("--large", type=int, default=100_000, help="readings of the large input")
    parser.add_argument("--repeats", type=int, default=2, help="runs per setting and size (the fastest counts)")
    args = parser.parse_args()
    config = get_config()
    started = manager.up(config, only=SERVICES)
    try:
        with connect(config) as conn:
            migrate(conn)
            reference.seed(config, conn)  # the reference topics the jobs join, as `kappa demo` does
        print(f"producing {args.small} and {args.large} readings ...", flush=True)
        topics = {size: produce(config, size) for size in (args.small, args.large)}
        run(config, topics[args.small], False)  # warm-up: JVM, class loading, caches
        times: dict[tuple[bool, int], float] = {}
        for _ in range(args.repeats):
            for size in (args.small, args.large):
                for reporter in (False, True):  # interleaved, so drift in machine load hits both
                    elapsed, pushed = run(config, topics[size], reporter)
                    if reporter and not pushed:
                        print("error: the reporter pushed nothing to the Pushgateway; the comparison is void")
                        return 1
                    label = "on " if reporter else "off"
                    print(f"  reporter {label} {size:>8} readings: {elapsed:6.1f} s", flush=True)
                    times[(reporter, size)] = min(elapsed, times.get((reporter, size), elapsed))
        rates = {on: (args.large - args.small) / (times[(on, args.large)] - times[(on, args.small)])
                 for on in (False, True)}
        print(f"reporter off : {rates[False]:>10,.0f} readings/s (marginal, start-up excluded)")
        print(f"reporter on  : {rates[True]:>10,.0f} readings/s (pushing every {config.metrics.scrape_interval_s} s)")
        print(f"ratio on/off : {rates[True] / rates[False]:.2f}  (goal >= 0.95)")
    finally:
        for svc in reversed(started):
            svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
