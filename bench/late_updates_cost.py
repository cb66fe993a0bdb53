"""What allowed lateness costs the aggregation job: throughput and state, before and after, same run.

"before" is the aggregation SQL of a git ref (default `main`: late = behind CURRENT_WATERMARK, window
de-duplication, window table functions fired once); "after" is this checkout's (late by partition
rule, copy count, group windows with allowed lateness = job.allowed_lateness_s). Both run the Avro path
of the job (source, decode, late split, de-duplication, windows, dead letters) into blackhole sinks, in
a local MiniCluster, bounded, over the same readings, which span more event time than the allowed
lateness so the windows' state reaches its steady size. Throughput is marginal (two input sizes, the
extra readings over the extra time: start-up excluded); state is the largest completed checkpoint
(hashmap backend: every checkpoint is full, so its size is the state's) seen while the large run ran.

    .venv/bin/python bench/late_updates_cost.py [--small 40000] [--large 160000] [--baseline-ref main]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pyflink.table import TableDescriptor

from kappa import reference_log
from kappa.config import PROJECT_ROOT, Config, get_config
from kappa.flinkenv import JobContext, JobOptions
from kappa.lateness import allow_late_updates
from kappa.simulate import SimulationSpec, simulate
from kappa.stack import manager
from kappa.stack.kafka_setup import recreate_topic

VIEWS = ["device_windows_1m", "site_windows_5m", "duplicate_counts_1m", "telemetry_late", "telemetry_dead_letters"]
DEVICES = 50


def baseline_sql(ref: str, folder: Path) -> Path:
    """The sql/ folder of `ref`, extracted from git."""
    archive = subprocess.run(["git", "archive", ref, "sql"], cwd=PROJECT_ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder / "sql"


def produce(config: Config, records: int, tag: str) -> str:
    topic = f"bench-late-{tag}"
    recreate_topic(config, topic)
    spec = SimulationSpec(devices=DEVICES, sites=5, readings_per_device=records // DEVICES, seed=3, topic=topic,
                          anomalies=False, duplicates=0.02, out_of_order=0.02, late=0.005)
    simulate(config, spec, produce=True, log=lambda _: None)
    return topic


class CheckpointWatcher:
    """The largest chk-N folder under the checkpoint directory while it runs (bytes)."""

    def __init__(self, root: Path) -> None:
        self.root, self.largest, self._stop = root, 0, threading.Event()
        self._seen = {p for p in root.glob("*/chk-*")} if root.exists() else set()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for folder in (self.root.glob("*/chk-*") if self.root.exists() else []):
                if folder in self._seen:
                    continue
                try:
                    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
                    if (folder / "_metadata").exists():
                        self.largest = max(self.largest, size)
                except FileNotFoundError:  # discarded while read
                    pass

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.largest


def run(config: Config, variant: str, topic: str) -> tuple[float, int]:
    """Wall time and the largest checkpoint of one bounded run of `variant` ("before" / "after")."""
    watcher = CheckpointWatcher(config.data_dir / "flink" / "checkpoints")
    started = time.perf_counter()
    ctx = JobContext(config, JobOptions(bounded=True, extra={"telemetry_topic": topic}), job_name=f"bench-{variant}")
    for name in ("telemetry/functions.sql", "telemetry/source.sql", "telemetry/decode.sql"):
        ctx.execute_file(name)
    if variant == "after":
        allow_late_updates(ctx.t_env, config)
        ctx.execute_file("telemetry/lateness.sql")
    else:
        ctx.execute_file("telemetry/ontime.sql")
    ctx.execute_file("telemetry/dedup.sql")
    reference_log.ensure_topic(config, config.kafka.devices_topic)  # the metadata join reads it
    ctx.execute_file("telemetry/device_versions.sql")
    ctx.execute_file("telemetry/devices.sql")
    ctx.execute_file("aggregates/windows.sql")
    statements = ctx.t_env.create_statement_set()
    for view in VIEWS:
        statements.add_insert(TableDescriptor.for_connector("blackhole").build(), ctx.t_env.from_path(view))
    statements.execute().wait()
    return time.perf_counter() - started, watcher.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=40_000)
    parser.add_argument("--large", type=int, default=160_000)
    parser.add_argument("--repeats", type=int, default=2, help="runs per variant and size (the fastest counts)")
    parser.add_argument("--baseline-ref", default="main")
    args = parser.parse_args()
    config = get_config()
    span_h = args.large // DEVICES * 10 / 3600
    print(f"allowed lateness {config.job.allowed_lateness_s} s; the large input spans {span_h:.1f} h of event time")
    with tempfile.TemporaryDirectory(prefix="kappa-bench-late-") as folder:
        paths = config.paths.model_copy(update={"sql_dir": baseline_sql(args.baseline_ref, Path(folder))})
        configs = {"before": config.model_copy(update={"paths": paths}), "after": config}
        started = manager.up(config, only=["postgres", "kafka", "registry"])
        try:
            print(f"producing inputs ({args.small} and {args.large} readings) ...", flush=True)
            topics = {size: produce(config, size, str(size)) for size in (args.small, args.large)}
            run(configs["before"], "before", topics[args.small])  # warm-up
            times: dict[tuple[str, int], float] = {}
            state: dict[str, int] = {}
            for _ in range(args.repeats):
                for size in (args.small, args.large):
                    for variant in ("before", "after"):  # interleaved: drift in machine load hits both
                        elapsed, largest = run(configs[variant], variant, topics[size])
                        print(f"  {variant:<6} {size:>8} readings: {elapsed:6.1f} s, largest checkpoint "
                              f"{largest / 1e6:7.2f} MB", flush=True)
                        times[(variant, size)] = min(elapsed, times.get((variant, size), elapsed))
                        if size == args.large:
                            state[variant] = max(state.get(variant, 0), largest)
            rates = {v: (args.large - args.small) / (times[(v, args.large)] - times[(v, args.small)])
                     for v in ("before", "after")}
            for v in ("before", "after"):
                print(f"{v:<6}: {rates[v]:>9,.0f} readings/s (marginal), largest checkpoint {state[v] / 1e6:.2f} MB")
            print(f"ratio after / before: throughput {rates['after'] / rates['before']:.2f}, "
                  f"state {state['after'] / max(state['before'], 1):.1f}x")
        finally:
            for svc in reversed(started):
                svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
