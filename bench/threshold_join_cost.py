"""The alerting job with its event-time temporal join on the rules topic (sql/alerts/thresholds.sql)
against the same job with the processing-time JDBC lookup join it replaced
(bench/sql/thresholds_lookup.sql, on PostgreSQL's alert_thresholds), same run, same input.

Everything else is the job as it runs (Kafka source, decoding, on-time split, the four patterns, the
silence detector and the cool-down), in a local MiniCluster, bounded, into a blackhole. The lookup
variant runs a copy of sql/ with thresholds.sql replaced, the way a changed job is replayed. Start-up is
excluded by timing both variants at two input sizes and dividing the extra readings by the extra time
(marginal rate). Prints both rates and the ratio.

    .venv/bin/python bench/threshold_join_cost.py [--small 10000] [--large 50000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from jobs import alerts
from kappa import reference
from kappa.benchkit import marginal_rate, time_bounded_run
from kappa.config import Config, get_config
from kappa.db import migrate
from kappa.pipeline import blackholes
from kappa.simulate import SimulationSpec, simulate
from kappa.stack import manager
from kappa.stack.kafka_setup import recreate_topic
from kappa.stack.postgres import connect

LOOKUP_SQL = Path(__file__).resolve().parent / "sql" / "thresholds_lookup.sql"


def produce(config: Config, records: int) -> str:
    topic = f"bench-thresholds-{records}"
    recreate_topic(config, topic)
    devices = 100
    spec = SimulationSpec(devices=devices, sites=5, readings_per_device=records // devices, seed=5, topic=topic)
    simulate(config, spec, produce=True, log=lambda _: None)  # with the simulator's planted anomalies
    return topic


def lookup_config(config: Config, folder: Path) -> Config:
    """The configuration whose sql_dir is a copy of sql/ with the lookup join in thresholds.sql's place."""
    shutil.copytree(config.sql_dir, folder, dirs_exist_ok=True)
    shutil.copyfile(LOOKUP_SQL, folder / "alerts" / "thresholds.sql")
    return config.model_copy(update={"paths": config.paths.model_copy(update={"sql_dir": folder})})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=50_000)
    args = parser.parse_args()
    config = get_config()
    started = manager.up(config, only=["postgres", "kafka", "registry"])
    try:
        with connect(config) as conn:
            migrate(conn, config=config)
            reference.seed(config, conn)  # the rules topic's versions (the temporal join's side)
        with tempfile.TemporaryDirectory(prefix="kappa-bench-sql-") as folder:
            configs = {"temporal": config, "lookup": lookup_config(config, Path(folder) / "sql")}
            print(f"producing inputs ({args.small} and {args.large} readings) ...", flush=True)
            topics = {size: produce(config, size) for size in (args.small, args.large)}
            pipeline = alerts.PIPELINE.with_sinks(blackholes("alerts_final"))
            time_bounded_run(config, pipeline, topics[args.small], "bench-warmup")  # JVM, class loading
            times: dict[tuple[str, int], float] = {}
            for size in (args.small, args.large):
                for variant, cfg in configs.items():  # interleaved, so drift in machine load hits both
                    times[(variant, size)] = time_bounded_run(cfg, pipeline, topics[size], f"bench-{variant}")
                    print(f"  {variant:<8} {size:>8} readings: {times[(variant, size)]:6.1f} s", flush=True)
        rates = {v: marginal_rate(args.small, args.large, times[(v, args.small)], times[(v, args.large)])
                 for v in configs}
        if rates["lookup"] is None or rates["temporal"] is None:
            print("the larger input did not take longer: the sizes are too small for this machine's noise; "
                  "raise --large", file=sys.stderr)
            return 1
        print(f"lookup join (processing time, JDBC) : {rates['lookup']:>9,.0f} readings/s (marginal)")
        print(f"temporal join (event time, Kafka)   : {rates['temporal']:>9,.0f} readings/s")
        print(f"ratio temporal / lookup: {rates['temporal'] / rates['lookup']:.2f}")
    finally:
        for svc in reversed(started):
            svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
