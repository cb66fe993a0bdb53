"""Cold path: decoded telemetry archived as Parquet on S3, exactly once, queryable with DuckDB.

Flink's Parquet FileSink needs flink-parquet plus a Hadoop class path and an S3 filesystem plugin;
Maven Central has flink-parquet 2.0.0 but no self-contained flink-sql-parquet for 2.0, so this
archive is a small Kafka consumer of its own, written with pyarrow. Its commit protocol:

1. For one partition, read a batch of records starting at the committed offset `a` (at most
   `batch_records`, never past the end seen when the batch started).
2. Decode each record (the project's decoder; dead letters are not archived: they are in the
   dead-letter topic and table). Group the rows by Hive partition (event date, hour, device type).
3. Write one object per Hive partition, named by the source position only:
   `.../event_date=D/hour=H/device_type=T/part-p<partition>-o<a>.parquet`. An S3 PUT is atomic, so a
   reader never sees half a file.
4. Commit `next offset` for the partition in PostgreSQL (`archive_offsets`).

A crash between 3 and 4 restarts at the same `a`; the batch then covers the same records or more
(the end only grows), so each object is overwritten by a superset of itself under the same name:
every record stays in the archive exactly once.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Consumer, TopicPartition

from kappa.config import Config
from kappa.registry import credentials
from kappa.stack.objectstore import s3_filesystem
from kappa.stack.postgres import connect
from udfs.avro_decoder import AvroDecoder
from udfs.schema_lookup import RegistrySchemaLookup

ARROW_TYPES = {"STRING": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "INT": pa.int32()}
PREFIX = "telemetry"


@dataclass(frozen=True)
class PartitionStatus:
    partition: int
    archived_offset: int  # next offset to archive
    end_offset: int

    @property
    def lag(self) -> int:
        return max(self.end_offset - self.archived_offset, 0)


class ArchiveWriter:
    """Archives one topic, partition by partition, batch by batch (see the module docstring)."""

    def __init__(self, config: Config, topic: str | None = None, batch_records: int = 50_000,
                 prefix: str = PREFIX) -> None:
        self.config = config
        self.topic = topic or config.kafka.telemetry_topic
        self.batch_records = batch_records
        self.prefix = prefix
        self.filesystem = s3_filesystem(config)
        self.decoder = AvroDecoder(RegistrySchemaLookup(config.registry.url, auth=credentials(config)))
        self.schema = pa.schema([(name, ARROW_TYPES[kind]) for name, kind in self.decoder.fields]
                                + [("kafka_partition", pa.int32()), ("kafka_offset", pa.int64())])
        self.consumer = Consumer({"bootstrap.servers": config.kafka.bootstrap,
                                  "group.id": f"kappa-archive-{self.topic}", "isolation.level": "read_committed",
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})

    def close(self) -> None:
        self.consumer.close()

    # --- offsets ------------------------------------------------------------------------------
    def committed(self) -> dict[int, int]:
        with connect(self.config) as conn:
            rows = conn.execute("SELECT kafka_partition, next_offset FROM archive_offsets WHERE topic = %s",
                                (self.topic,)).fetchall()
        return {int(p): int(o) for p, o in rows}

    def _commit(self, partition: int, next_offset: int) -> None:
        with connect(self.config) as conn:
            conn.execute(
                "INSERT INTO archive_offsets (topic, kafka_partition, next_offset) VALUES (%s, %s, %s) "
                "ON CONFLICT (topic, kafka_partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, "
                "updated_at = now()", (self.topic, partition, next_offset))

    def status(self) -> list[PartitionStatus]:
        committed = self.committed()
        metadata = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic]
        result = []
        for partition in sorted(metadata.partitions):
            low, high = self.consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=10)
            result.append(PartitionStatus(partition, committed.get(partition, low), high))
        return result

    # --- one batch ----------------------------------------------------------------------------
    def _read_batch(self, partition: int, start: int, end: int) -> tuple[list[Any], int]:
        """Records of [start, min(start + batch, end)); returns them and the next offset."""
        stop = min(start + self.batch_records, end)
        self.consumer.assign([TopicPartition(self.topic, partition, start)])
        messages: list[Any] = []
        position = start
        deadline = time.monotonic() + 120
        while position < stop and time.monotonic() < deadline:
            message = self.consumer.poll(0.2)
            if message is None:
                # transaction markers and aborted records occupy offsets that are never delivered
                position = max(position, self.consumer.position([TopicPartition(self.topic, partition)])[0].offset)
                continue
            if message.error():
                continue
            offset = int(message.offset() or 0)
            if offset >= stop:
                position = stop
                break
            messages.append(message)
            position = offset + 1
        return messages, min(position, stop)

    def _write(self, partition: int, start: int, messages: list[Any]) -> int:
        groups: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
        for message in messages:
            result = self.decoder.decode(message.value(), now_ms=message.timestamp()[1])
            if not result.ok or result.row is None:
                continue
            row = dict(result.row)
            row["kafka_partition"], row["kafka_offset"] = partition, message.offset()
            moment = datetime.fromtimestamp(row["event_time"] / 1000, tz=UTC)
            groups[(moment.strftime("%Y-%m-%d"), moment.hour, row["device_type"])].append(row)
        for (day, hour, device_type), rows in groups.items():
            path = (f"{self.config.s3.bucket}/{self.prefix}/event_date={day}/hour={hour:02d}/"
                    f"device_type={device_type}/part-p{partition}-o{start:020d}.parquet")
            table = pa.Table.from_pylist(rows, schema=self.schema)
            pq.write_table(table, path, filesystem=self.filesystem, compression="zstd")
        return sum(len(rows) for rows in groups.values())

    def run(self, once: bool = True, progress: Callable[[str], None] | None = None) -> int:
        """Archive until caught up (`once`) or forever; returns the records archived."""
        archived = 0
        started = time.monotonic()
        while True:
            idle = True
            for status in self.status():
                if status.lag == 0:
                    continue
                idle = False
                messages, next_offset = self._read_batch(status.partition, status.archived_offset,
                                                         status.end_offset)
                archived += self._write(status.partition, status.archived_offset, messages)
                self._commit(status.partition, next_offset)
                if progress:
                    rate = archived / max(time.monotonic() - started, 1e-6)
                    progress(f"partition {status.partition}: {next_offset}/{status.end_offset} "
                             f"({archived} rows archived, {rate:,.0f} rows/s)")
            if idle:
                if once:
                    return archived
                time.sleep(2)


def duckdb_connection(config: Config, prefix: str = PREFIX) -> Any:
    """DuckDB with the offline httpfs extension, an S3 secret for the stack, and a `telemetry` view."""
    import duckdb
    import duckdb_extension_httpfs

    # The httpfs extension ships inside a PyPI wheel (no download at run time): load it from there.
    package = Path(duckdb_extension_httpfs.__file__).parent
    extension = package / "extensions" / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
    conn = duckdb.connect()
    conn.execute(f"LOAD '{extension}'")
    s3 = config.s3
    conn.execute(
        "CREATE SECRET kappa_s3 (TYPE s3, KEY_ID ?, SECRET ?, ENDPOINT ?, REGION ?, URL_STYLE 'path', "
        "USE_SSL false)",
        [config.secret(s3.access_key_env), config.secret(s3.secret_key_env), f"{s3.host}:{s3.port}", s3.region],
    )
    conn.execute(
        f"CREATE VIEW telemetry AS SELECT * FROM read_parquet('s3://{s3.bucket}/{prefix}/**/*.parquet', "
        "hive_partitioning = true, union_by_name = true)"
    )
    return conn


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    archive = subparsers.add_parser("archive", help="archive decoded telemetry to Parquet on S3 (exactly once)")
    actions = archive.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = actions.add_parser("run", help="archive what is in the topic (--follow: keep going)")
    run.add_argument("--topic", help="default: kafka.telemetry_topic")
    run.add_argument("--batch", type=int, default=50_000, help="records per partition per batch (file)")
    run.add_argument("--follow", action="store_true", help="keep archiving new records until interrupted")
    run.add_argument("--prefix", default=PREFIX, help=f"object key prefix in the bucket (default {PREFIX})")
    run.set_defaults(func=_run)
    status = actions.add_parser("status", help="per partition: archived offset and lag behind the topic")
    status.add_argument("--topic", help="default: kafka.telemetry_topic")
    status.set_defaults(func=_status)
    query = subparsers.add_parser("query", help="run DuckDB SQL over the Parquet archive (view `telemetry`)")
    query.add_argument("sql", help="e.g. \"SELECT site_id, count(*) FROM telemetry GROUP BY 1\"")
    query.set_defaults(func=_query)


def _run(args: argparse.Namespace, config: Config) -> int:
    writer = ArchiveWriter(config, args.topic, batch_records=args.batch, prefix=args.prefix)
    try:
        archived = writer.run(once=not args.follow, progress=lambda line: print(line, file=sys.stderr, flush=True))
    finally:
        writer.close()
    print(f"archived {archived} rows to s3://{config.s3.bucket}/{args.prefix}/")
    return 0


def _status(args: argparse.Namespace, config: Config) -> int:
    writer = ArchiveWriter(config, args.topic)
    try:
        rows = writer.status()
    finally:
        writer.close()
    print(f"{'partition':>9} {'archived':>10} {'end':>10} {'lag':>8}")
    for row in rows:
        print(f"{row.partition:>9} {row.archived_offset:>10} {row.end_offset:>10} {row.lag:>8}")
    return 0


def _query(args: argparse.Namespace, config: Config) -> int:
    conn = duckdb_connection(config)
    result = conn.execute(args.sql)
    names = [d[0] for d in result.description]
    rows = result.fetchall()
    print("\t".join(names))
    for row in rows:
        print("\t".join("" if v is None else str(v) for v in row))
    return 0
