"""Compaction of the Parquet archive: the small files of a closed hour partition become one object.

Per group of live small files of a closed Hive partition (`archive_manifest.plan_compaction`):

1. Read the inputs, sort the rows by (device_id, event_time or window_start), write ONE zstd Parquet object next to
   them, named from the input keys (`archive_manifest.compact_name`).
2. In one PostgreSQL transaction: register it `live` and mark the inputs `replaced`.
3. Delete the inputs from S3, then their manifest rows.

Readers read the live objects of the manifest, so they see the inputs or the merged object, never
both. A crash before 2 leaves an unregistered object (rewritten under the same name by the retry if
the inputs are unchanged, else deleted as an orphan by the next run); a crash after 2 leaves replaced
objects, which the next run deletes first. One compactor per prefix at a time (PostgreSQL advisory
lock); the writer may run meanwhile: it only adds new objects, which a group never includes.

Test hook: `KAPPA_ARCHIVE_COMPACT_PAUSE_S` (seconds, default 0) sleeps after step 1 and after step 2,
so that a test can kill the compactor at each point.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from kappa import archive_manifest as manifest
from kappa.archive_manifest import ArchiveError, ArchiveFile
from kappa.config import Config
from kappa.s3_security import WRITER
from kappa.stack.objectstore import s3_filesystem
from kappa.stack.postgres import connect

PAUSE_ENV = "KAPPA_ARCHIVE_COMPACT_PAUSE_S"
SORT_KEYS = ("device_id", "event_time", "window_start")  # those present


@dataclass
class CompactionResult:
    groups: int = 0
    merged_files: int = 0
    rows: int = 0
    deleted_replaced: int = 0
    deleted_orphans: int = 0


def _pause() -> None:
    """Test hook (see the module docstring): a window in which to kill the compactor."""
    seconds = float(os.environ.get(PAUSE_ENV) or 0)
    if seconds > 0:
        time.sleep(seconds)


def _lock(conn: psycopg.Connection, prefix: str) -> None:
    """Session advisory lock per prefix, released when the connection closes (also on SIGKILL)."""
    row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (f"kappa-archive-compact:{prefix}",)).fetchone()
    if not row or not row[0]:
        raise ArchiveError(f"another `kappa archive compact` is running on prefix {prefix}")


class Compactor:
    """Compacts one prefix of the archive bucket (see the module docstring)."""

    def __init__(self, config: Config, prefix: str, topic: str | None = None, min_age_hours: float = 2.0,
                 target_mb: float = 128.0, progress: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.prefix = prefix
        self.topic = topic
        self.min_age_hours = min_age_hours
        self.target_bytes = int(target_mb * 1024 * 1024)
        self.progress = progress or (lambda _: None)
        self.filesystem = s3_filesystem(config, WRITER)  # the bucket only (kappa/s3_security.py)
        self.bucket = config.s3.bucket

    def run(self, now: datetime | None = None) -> CompactionResult:
        result = CompactionResult()
        with connect(self.config, role="archive") as conn:  # the manifest's tables only (kappa/pg_security.py)
            _lock(conn, self.prefix)
            result.deleted_replaced = self._delete_replaced(conn)
            result.deleted_orphans = self._delete_orphans(conn)
            reference = manifest.closing_reference(manifest.newest_event_time(conn, self.prefix),
                                                   now or datetime.now(UTC))
            live = [f for f in manifest.files(conn, self.prefix) if self.topic in (None, f.topic)]
            groups = manifest.plan_compaction(live, reference, self.min_age_hours, self.target_bytes)
            self.progress(f"compact {self.prefix}: {len(groups)} group(s) of small files in closed hour partitions "
                          f"(closed: ended >= {self.min_age_hours:g} h before {reference:%Y-%m-%d %H:%M} UTC)")
            for number, group in enumerate(groups, 1):
                merged = self._merge(conn, group)
                result.groups += 1
                result.merged_files += len(group)
                result.rows += merged.row_count
                self.progress(f"  [{number}/{len(groups)}] {merged.hive_partition}: {len(group)} files, "
                              f"{merged.row_count} rows -> {merged.object_key.rsplit('/', 1)[-1]}")
        return result

    # --- one group ----------------------------------------------------------------------------
    def _merge(self, conn: psycopg.Connection, group: list[ArchiveFile]) -> ArchiveFile:
        first = group[0]
        inputs = tuple(f.object_key for f in group)
        key = f"{self.prefix}/{first.hive_partition}/{manifest.compact_name(inputs)}"
        size, rows = self._write_merged(key, inputs)
        _pause()  # crash here: an unregistered object
        merged = ArchiveFile(key, self.prefix, first.hive_partition, first.topic, rows, size,
                             min(f.min_event_time for f in group if f.min_event_time) if _all_timed(group) else None,
                             max(f.max_event_time for f in group if f.max_event_time) if _all_timed(group) else None,
                             inputs=inputs)
        if merged.row_count != sum(f.row_count for f in group):
            raise ArchiveError(f"{key}: merged {merged.row_count} rows, the manifest says the inputs hold "
                               f"{sum(f.row_count for f in group)}")
        manifest.commit_compaction(conn, merged)
        _pause()  # crash here: replaced objects still in S3
        self._delete(conn, list(inputs))
        return merged

    def _write_merged(self, key: str, inputs: tuple[str, ...]) -> tuple[int, int]:
        tables = [self._read(k) for k in inputs]
        table = pa.concat_tables(tables, promote_options="default")
        sort = [(name, "ascending") for name in SORT_KEYS if name in table.column_names]
        if sort:
            table = table.sort_by(sort)
        return manifest.put_table(self.filesystem, f"{self.bucket}/{key}", table), table.num_rows

    def _read(self, key: str) -> pa.Table:
        try:
            with self.filesystem.open_input_file(f"{self.bucket}/{key}") as source:
                return pq.ParquetFile(source).read()
        except FileNotFoundError as exc:
            raise ArchiveError(f"live object s3://{self.bucket}/{key} is missing from S3; the archive lost it "
                               "(re-archive the prefix)") from exc

    # --- clean-up -----------------------------------------------------------------------------
    def _delete(self, conn: psycopg.Connection, keys: list[str]) -> None:
        """Replaced objects: from S3 first, then from the manifest (a crash in between repeats it)."""
        for key in keys:
            self._delete_object(key)
        manifest.forget(conn, keys)

    def _delete_object(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):  # already gone: a crashed run deleted it
            self.filesystem.delete_file(f"{self.bucket}/{key}")

    def _delete_replaced(self, conn: psycopg.Connection) -> int:
        keys = [f.object_key for f in manifest.files(conn, self.prefix, state="replaced")]
        if keys:
            self._delete(conn, keys)
            self.progress(f"compact {self.prefix}: deleted {len(keys)} replaced object(s) left by an earlier run")
        return len(keys)

    def _delete_orphans(self, conn: psycopg.Connection) -> int:
        listed = self._listed()  # before reading the manifest: anything registered later is not listed as orphan
        registered, committed = manifest.registered_and_committed(conn, self.prefix)
        keys = manifest.orphans(listed, registered, committed)
        for key in keys:
            self._delete_object(key)
        if keys:
            self.progress(f"compact {self.prefix}: deleted {len(keys)} unregistered object(s)")
        return len(keys)

    def _listed(self) -> list[str]:
        selector = pafs.FileSelector(f"{self.bucket}/{self.prefix}", recursive=True, allow_not_found=True)
        infos = self.filesystem.get_file_info(selector)
        start = len(self.bucket) + 1
        return [i.path[start:] for i in infos if i.type == pafs.FileType.File and i.path.endswith(".parquet")]


def _all_timed(group: list[ArchiveFile]) -> bool:
    return all(f.min_event_time and f.max_event_time for f in group)
