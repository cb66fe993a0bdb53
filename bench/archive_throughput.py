"""Sustained rate of the Parquet archive against a plain pyarrow write of the same rows, same run.

The archive reads the topic, decodes each record, partitions by date/hour/device type and writes
zstd Parquet to the stack's S3 with its commit protocol; the baseline writes the same rows (already
decoded, one table) with pyarrow to the same bucket in one zstd Parquet file. Prints MB/s and
rows/s of both and the ratio.

    .venv/bin/python bench/archive_throughput.py [--records 200000]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from kappa.archive import ArchiveWriter
from kappa.config import get_config
from kappa.db import migrate
from kappa.simulate import SimulationSpec, simulate
from kappa.stack import manager
from kappa.stack.postgres import connect


def _bytes_under(filesystem: pafs.S3FileSystem, path: str) -> int:
    infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
    return sum(info.size or 0 for info in infos if info.type == pafs.FileType.File)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()
    config = get_config()
    started = manager.up(config, only=["postgres", "kafka", "objectstore", "registry"])
    try:
        with connect(config) as conn:
            migrate(conn)
        topic = f"bench-archive-{uuid.uuid4().hex[:6]}"
        devices = 100
        print(f"producing {args.records} readings to {topic} ...", flush=True)
        spec = SimulationSpec(devices=devices, readings_per_device=args.records // devices, seed=4, topic=topic,
                              anomalies=False, v1_fraction=0.2)
        manifest = simulate(config, spec, produce=True, log=lambda _: None)

        writer = ArchiveWriter(config, topic, batch_records=50_000, prefix=f"bench/{topic}/archive")
        t0 = time.perf_counter()
        rows = writer.run(once=True)
        archive_s = time.perf_counter() - t0
        writer.close()
        archive_bytes = _bytes_under(writer.filesystem, f"{config.s3.bucket}/bench/{topic}/archive")

        table = pa.Table.from_pylist([dict(r.row, kafka_partition=0, kafka_offset=i)
                                      for i, r in enumerate(manifest.records) if r.row], schema=writer.schema)
        path = f"{config.s3.bucket}/bench/{topic}/plain/all.parquet"
        t0 = time.perf_counter()
        pq.write_table(table, path, filesystem=writer.filesystem, compression="zstd")
        plain_s = time.perf_counter() - t0
        plain_bytes = _bytes_under(writer.filesystem, f"{config.s3.bucket}/bench/{topic}/plain")

        mb = 1024 * 1024
        print(f"archive (Kafka -> decode -> partitioned Parquet, committed): {rows / archive_s:>10,.0f} rows/s "
              f"{archive_bytes / mb / archive_s:6.1f} MB/s ({rows} rows, {archive_bytes / mb:.1f} MB, "
              f"{archive_s:.1f} s)")
        print(f"plain pyarrow write of the same rows (one file):            {table.num_rows / plain_s:>10,.0f} rows/s "
              f"{plain_bytes / mb / plain_s:6.1f} MB/s ({plain_bytes / mb:.1f} MB, {plain_s:.1f} s)")
        print(f"ratio archive / plain (rows/s): {(rows / archive_s) / (table.num_rows / plain_s):.3f}")
    finally:
        for svc in reversed(started):
            svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
