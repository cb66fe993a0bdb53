"""Cold path: decoded telemetry (and the 1-minute aggregates, `kappa.archive_datasets`) archived as
Parquet on S3, exactly once, queryable with DuckDB.

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
4. In one PostgreSQL transaction, register the objects in the manifest (`archive_files`, see
   `kappa.archive_manifest`) and move the partition's `next offset` (`archive_offsets`) from `a`.

Readers read the live objects of the manifest, never a listing of the bucket. A crash between 3 and 4
leaves unregistered objects nobody reads; the restart begins at the same `a`, its batch covers the
same records or more (the end only grows), so it overwrites them under the same names and registers
them: every record is in the archive exactly once. (Should a restart write fewer objects, e.g. with
a smaller `--batch`, the leftovers stay unregistered and `kappa archive compact` deletes them.)
Compaction (`kappa.archive_compact`) merges the small files of closed hour partitions.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from confluent_kafka import TopicPartition

from kappa import archive_manifest as manifest
from kappa import kafka_clients, s3_security, waiting
from kappa.archive_datasets import DATASETS, TELEMETRY, Dataset, decoder_for, epoch_ms
from kappa.archive_manifest import ArchiveError, ArchiveFile
from kappa.config import Config
from kappa.stack.objectstore import s3_filesystem
from kappa.stack.postgres import connect

PREFIX = TELEMETRY.default_prefix


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
                 prefix: str | None = None, dataset: Dataset = TELEMETRY) -> None:
        self.config = config
        self.dataset = dataset
        self.topic = topic or dataset.default_topic(config)
        self.batch_records = batch_records
        self.prefix = prefix or dataset.default_prefix
        self.filesystem = s3_filesystem(config, s3_security.WRITER)  # the bucket only (kappa/s3_security.py)
        self.decoder = decoder_for(dataset, config)
        self.schema = self.decoder.schema
        self.consumer = kafka_clients.consumer(config, f"kappa-archive-{self.topic}", role="archive", **{
            "isolation.level": "read_committed", "enable.auto.commit": False, "auto.offset.reset": "earliest"})

    def close(self) -> None:
        self.consumer.close()

    # --- offsets ------------------------------------------------------------------------------
    def committed(self) -> dict[int, int]:
        with connect(self.config, role="archive") as conn:  # the manifest's tables only (kappa/pg_security.py)
            rows = conn.execute("SELECT kafka_partition, next_offset FROM archive_offsets WHERE topic = %s",
                                (self.topic,)).fetchall()
        return {int(p): int(o) for p, o in rows}

    def _commit(self, partition: int, start: int, next_offset: int, files: list[ArchiveFile]) -> None:
        with connect(self.config, role="archive") as conn:
            manifest.commit_batch(conn, self.topic, partition, start, next_offset, files)

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
        deadline = waiting.Deadline(120)
        while position < stop and not deadline.passed:
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

    def _write(self, partition: int, start: int, next_offset: int, messages: list[Any]) -> list[ArchiveFile]:
        """One object per Hive partition of the batch; returns them for the manifest."""
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for message in messages:
            row = self.decoder.decode(message.value(), message.timestamp()[1])
            if row is None:
                continue
            row["kafka_partition"], row["kafka_offset"] = partition, message.offset()
            groups[self._hive_partition(row)].append(row)
        written = []
        for hive, rows in sorted(groups.items()):
            key = f"{self.prefix}/{hive}/part-p{partition}-o{start:020d}.parquet"
            size = manifest.put_table(self.filesystem, f"{self.config.s3.bucket}/{key}",
                                      pa.Table.from_pylist(rows, schema=self.schema))
            times = [epoch_ms(row[self.dataset.time_column]) for row in rows]
            written.append(ArchiveFile(key, self.prefix, hive, self.topic, len(rows), size, utc(min(times)),
                                       utc(max(times)), partition, start, next_offset))
        return written

    def _hive_partition(self, row: dict[str, Any]) -> str:
        moment = datetime.fromtimestamp(epoch_ms(row[self.dataset.time_column]) / 1000, tz=UTC)
        tail = f"{self.dataset.tail_column}={row[self.dataset.tail_column]}" if self.dataset.tail_column else ""
        return manifest.hive_partition(moment.strftime("%Y-%m-%d"), moment.hour, tail, self.dataset.date_key)

    def run(self, once: bool = True, progress: Callable[[str], None] | None = None,
            advance: Callable[[int, int], None] | None = None) -> int:
        """Archive until caught up (`once`) or forever; returns the records archived.

        `advance(done, total)`, when given (a progress bar), follows the offsets archived since the
        start against the ends known now, instead of a `progress` line per batch."""
        archived = 0
        started = time.monotonic()
        first: dict[int, int] = {}  # partition -> the offset this run started from
        while True:
            idle = True
            statuses = self.status()
            for status in statuses:
                first.setdefault(status.partition, status.archived_offset)
            done = {s.partition: s.archived_offset - first[s.partition] for s in statuses}
            for status in statuses:
                if status.lag == 0:
                    continue
                idle = False
                messages, next_offset = self._read_batch(status.partition, status.archived_offset,
                                                         status.end_offset)
                files = self._write(status.partition, status.archived_offset, next_offset, messages)
                self._commit(status.partition, status.archived_offset, next_offset, files)
                archived += sum(file.row_count for file in files)
                done[status.partition] = next_offset - first[status.partition]
                if advance is not None:
                    advance(sum(done.values()), sum(s.end_offset - first[s.partition] for s in statuses))
                elif progress:
                    rate = archived / max(time.monotonic() - started, 1e-6)
                    progress(f"partition {status.partition}: {next_offset}/{status.end_offset} "
                             f"({archived} rows archived, {rate:,.0f} rows/s)")
            if idle:
                if once:
                    return archived
                time.sleep(2)


def utc(epoch_ms: int) -> datetime:
    """Naive UTC datetime of epoch milliseconds (the manifest's TIMESTAMP columns are UTC)."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).replace(tzinfo=None)


def live_urls(config: Config, prefix: str) -> list[str]:
    """`s3://` URLs of the prefix's live objects, from the manifest."""
    with connect(config) as conn:
        return [f"s3://{config.s3.bucket}/{file.object_key}" for file in manifest.files(conn, prefix)]


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + "]"


def duckdb_connection(config: Config, prefix: str = PREFIX, view: str = TELEMETRY.view) -> Any:
    """DuckDB with the offline httpfs extension, an S3 secret for the stack, and a view (`telemetry`)
    over the live objects of the manifest at the time of the call (not a glob: during a compaction
    a glob sees the merged object and its inputs at once). Reconnect to see later changes."""
    import duckdb
    import duckdb_extension_httpfs

    # The httpfs extension ships inside a PyPI wheel (no download at run time): load it from there.
    package = Path(duckdb_extension_httpfs.__file__).parent
    extension = package / "extensions" / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
    urls = live_urls(config, prefix)
    if not urls:
        raise ArchiveError(f"the archive s3://{config.s3.bucket}/{prefix}/ has no live files in the manifest "
                           "(archive_files): run `kappa archive run` first")
    conn = duckdb.connect()
    conn.execute(f"LOAD '{extension}'")
    s3 = config.s3
    conn.execute(  # the reader's keys: a query cannot change the archive (kappa/s3_security.py)
        "CREATE SECRET kappa_s3 (TYPE s3, KEY_ID ?, SECRET ?, ENDPOINT ?, REGION ?, URL_STYLE 'path', "
        "USE_SSL false)",
        [*s3_security.keys(config, s3_security.READER), f"{s3.host}:{s3.port}", s3.region],
    )
    key = next((d.key for d in DATASETS.values() if d.view == view), ())
    latest = (f" QUALIFY row_number() OVER (PARTITION BY {', '.join(key)} ORDER BY kafka_offset DESC) = 1"
              if key else "")  # an upsert topic's archive: the last version of each key
    conn.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet({_sql_list(urls)}, "
                 f"hive_partitioning = true, union_by_name = true){latest}")
    return conn

