"""What the Iceberg archive costs the aggregation job: the job with its Iceberg sinks (sql/archive) against
the same job with blackhole sinks of the same tables in their place, same run, same input.

Everything else is the job as it runs (Kafka source, decoding, windows, PostgreSQL and Kafka sinks),
in a local MiniCluster, bounded. Start-up is excluded by timing both variants at two input sizes and
dividing the extra records by the extra time (marginal rate). Prints both rates and the ratio.

    .venv/bin/python bench/lake_sink_cost.py [--small 10000] [--large 50000]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

from jobs import aggregate
from kappa import lake, outputs
from kappa.config import get_config
from kappa.db import migrate
from kappa.flinkenv import JobContext, JobOptions
from kappa.pipeline import Stage, Step
from kappa.simulate import SimulationSpec, simulate
from kappa.stack import manager
from kappa.stack.kafka_setup import recreate_topic
from kappa.stack.postgres import connect


def produce(config, records: int) -> str:  # type: ignore[no-untyped-def]
    topic = f"bench-lake-{records}"
    recreate_topic(config, topic)
    devices = 100
    spec = SimulationSpec(devices=devices, sites=5, readings_per_device=records // devices, seed=3, topic=topic,
                          anomalies=False, v1_fraction=0.2)
    simulate(config, spec, produce=True, log=lambda _: None)
    return topic


def _blackhole_tables(ctx: JobContext, _: object) -> None:
    """Blackholes shaped like the Iceberg tables, in the default catalog, where archive/inserts.sql writes."""
    config, suffix = ctx.config, ctx.options.output_suffix
    for table in aggregate.OUTPUTS.lake:
        name = f"{table.name}{suffix}"
        ctx.t_env.execute_sql(f"CREATE TABLE default_catalog.default_database.`{name}` WITH ('connector' = "
                              f"'blackhole') LIKE `{config.lake.catalog}`.`{config.lake.namespace}`.`{name}` "
                              "(EXCLUDING OPTIONS)")
    ctx.params = ctx.params.with_values(lake_catalog="default_catalog", lake_namespace="default_database")


def run(config, variant: str, topic: str, suffix: str) -> float:  # type: ignore[no-untyped-def]
    """Wall time of one bounded run of the aggregation job, archive sinks as `variant`."""
    started = time.perf_counter()
    ctx = JobContext(config, JobOptions(bounded=True, output_suffix=suffix, extra={"telemetry_topic": topic}),
                     job_name=f"bench-lake-{variant}")
    if variant == "iceberg":
        aggregate.build(ctx).execute().wait()
        return time.perf_counter() - started
    postgres_and_kafka, _ = aggregate.PIPELINE.sinks
    archive = Stage("blackhole archive", ("archive/catalog.sql", Step("blackholes", _blackhole_tables),
                                          "archive/inserts.sql"))
    aggregate.PIPELINE.with_sinks(postgres_and_kafka, archive).build(ctx).execute().wait()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=50_000)
    args = parser.parse_args()
    config = get_config()
    started = manager.up(config, only=["postgres", "kafka", "registry", "objectstore"])
    try:
        suffix = f"_bench_{uuid.uuid4().hex[:6]}"
        with connect(config) as conn:
            migrate(conn)
            outputs.create_versioned_tables(conn, suffix)
        lake.ensure_tables(config, aggregate.OUTPUTS.lake, suffix)
        print(f"producing inputs ({args.small} and {args.large} readings) ...", flush=True)
        topics = {size: produce(config, size) for size in (args.small, args.large)}
        run(config, "blackhole", topics[args.small], suffix)  # warm-up: JVM, class loading, caches
        times: dict[tuple[str, int], float] = {}
        for size in (args.small, args.large):
            for variant in ("blackhole", "iceberg"):  # interleaved, so drift in machine load hits both
                times[(variant, size)] = run(config, variant, topics[size], suffix)
                print(f"  {variant:<9} {size:>8} readings: {times[(variant, size)]:6.1f} s", flush=True)
        rates = {v: (args.large - args.small) / max(times[(v, args.large)] - times[(v, args.small)], 1e-9)
                 for v in ("blackhole", "iceberg")}
        print(f"blackhole sinks : {rates['blackhole']:>10,.0f} readings/s (marginal, start-up excluded)")
        print(f"Iceberg sinks   : {rates['iceberg']:>10,.0f} readings/s")
        print(f"ratio Iceberg / blackhole: {rates['iceberg'] / rates['blackhole']:.2f}  (goal >= 0.70)")
        start_cost = times[("iceberg", args.small)] - times[("blackhole", args.small)]
        print(f"start-up and commit cost at {args.small} readings: {start_cost:+.1f} s per run")
        lake.drop_tables(config, aggregate.OUTPUTS.lake, suffix)
    finally:
        for svc in reversed(started):
            svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
