"""Sustained rate of the Iceberg archive as the jobs write it, against a plain pyarrow write of the same
rows, same run (issue #13: the Parquet archiver this replaced wrote 0.014x of plain pyarrow).

The archive: the aggregation job with only its Iceberg stage as sinks (Kafka source, decoding, then
sql/archive/inserts.sql into the telemetry, device_agg_1m and dead_letters tables, committed at its
checkpoints), bounded, in a local MiniCluster. Timed at two input sizes, each into tables of its own;
the extra rows (and the telemetry table's extra bytes, from its snapshot summary) over the extra time
give a marginal rate with start-up excluded (after an untimed warm-up run). The baseline writes the
large run's telemetry rows, read back with DuckDB, to the same bucket as one zstd Parquet file with
pyarrow. Prints rows/s and MB/s of
both and the ratio.

    .venv/bin/python bench/archive_throughput.py [--small 20000] [--large 100000]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

import pyarrow.parquet as pq

from jobs import aggregate
from kappa import benchkit, lake, lake_query, s3_security
from kappa.config import Config, get_config
from kappa.db import migrate
from kappa.flinkenv import JobContext, JobOptions
from kappa.simulate import SimulationSpec, simulate
from kappa.stack import manager
from kappa.stack.objectstore import s3_filesystem
from kappa.stack.postgres import connect

MB = 1024 * 1024


def produce(config: Config, readings: int, tag: str) -> str:
    topic = f"bench-archive-{readings}-{tag}"
    devices = 100
    spec = SimulationSpec(devices=devices, readings_per_device=readings // devices, seed=4, topic=topic,
                          anomalies=False, v1_fraction=0.2)
    simulate(config, spec, produce=True, log=lambda _: None)
    return topic


def archive_run(config: Config, topic: str, suffix: str) -> tuple[float, int, int]:
    """(wall seconds, telemetry rows, telemetry bytes) of one bounded archive-only run into `suffix`'s tables."""
    lake.ensure_tables(config, aggregate.OUTPUTS.lake, suffix)
    _, archive = aggregate.PIPELINE.sinks
    started = time.perf_counter()
    ctx = JobContext(config, JobOptions(bounded=True, output_suffix=suffix, extra={"telemetry_topic": topic}),
                     job_name=f"bench-archive{suffix}")
    aggregate.PIPELINE.with_sinks(archive).build(ctx).execute().wait()
    elapsed = time.perf_counter() - started
    snapshot = lake.catalog(config).load_table(lake.TELEMETRY.identifier(config, suffix)).current_snapshot()
    assert snapshot is not None and snapshot.summary is not None, "the archive committed nothing"
    summary = snapshot.summary.additional_properties
    return elapsed, int(summary["total-records"]), int(summary["total-files-size"])


def plain_write(config: Config, suffix: str, key: str) -> tuple[float, int, int]:
    """(seconds, rows, bytes) of writing the suffix's telemetry rows with pyarrow as one zstd file."""
    table = lake_query.duckdb_connection(config, suffix, tables=(lake.TELEMETRY,)).execute(
        "SELECT * FROM telemetry").fetch_arrow_table()
    filesystem = s3_filesystem(config, s3_security.WRITER)
    path = f"{config.s3.bucket}/{key}"
    started = time.perf_counter()
    pq.write_table(table, path, filesystem=filesystem, compression="zstd")
    elapsed = time.perf_counter() - started
    return elapsed, table.num_rows, filesystem.get_file_info(path).size or 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    config = get_config()
    started = manager.up(config, only=["postgres", "kafka", "registry", "objectstore"])
    tag = uuid.uuid4().hex[:6]
    suffixes = {size: f"_bench_archive_{size}_{tag}" for size in (args.small, args.large)}
    warm_up = f"_bench_archive_warm_{tag}"
    try:
        with connect(config) as conn:
            migrate(conn, config=config)
        print(f"producing {args.small} and {args.large} readings ...", flush=True)
        topics = {size: produce(config, size, tag) for size in (args.small, args.large)}
        archive_run(config, topics[args.small], warm_up)  # JVM, class loading, caches: not timed
        runs = {}
        for size in (args.small, args.large):
            runs[size] = archive_run(config, topics[size], suffixes[size])
            seconds, rows, size_bytes = runs[size]
            print(f"  archive {size:>8} readings: {seconds:6.1f} s, {rows} telemetry rows, {size_bytes / MB:.1f} MB",
                  flush=True)
        (small_s, small_rows, small_bytes), (large_s, large_rows, large_bytes) = runs[args.small], runs[args.large]
        rate = benchkit.marginal_rate(small_rows, large_rows, small_s, large_s)
        if rate is None:
            print("the larger input did not take longer: sizes too close for this machine's load; no ratio")
            return 1
        extra_s = large_s - small_s
        plain_s, plain_rows, plain_bytes = plain_write(config, suffixes[args.large], f"bench/{tag}/plain.parquet")
        print(f"Iceberg archive (Kafka -> decode -> 3 tables, committed): {rate:>10,.0f} rows/s "
              f"{(large_bytes - small_bytes) / MB / extra_s:6.1f} MB/s (marginal, start-up excluded)")
        print(f"plain pyarrow write of the same rows (one file):          {plain_rows / plain_s:>10,.0f} rows/s "
              f"{plain_bytes / MB / plain_s:6.1f} MB/s ({plain_rows} rows, {plain_bytes / MB:.1f} MB, {plain_s:.1f} s)")
        print(f"ratio archive / plain (rows/s): {rate / (plain_rows / plain_s):.3f}  (the Parquet archiver: 0.014)")
        s3_filesystem(config, s3_security.WRITER).delete_file(f"{config.s3.bucket}/bench/{tag}/plain.parquet")
    finally:
        for suffix in (*suffixes.values(), warm_up):
            lake.drop_tables(config, aggregate.OUTPUTS.lake, suffix)
        for svc in reversed(started):
            svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
