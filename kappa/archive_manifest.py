"""The archive's manifest (`archive_files`, migration 0008): which Parquet objects readers may read.

S3 cannot swap several objects atomically, so the archive's truth is a PostgreSQL table: an object
is visible once it is registered `live`, and stops being visible in the same transaction that
registers what replaces it. The pure rules (object names, Hive partition paths, when an hour
partition is closed, which files to merge) live here too, so they are unit-tested without services.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from kappa.errors import KappaError

PART_NAME = re.compile(r"(?:^|/)part-p(?P<partition>\d+)-o(?P<offset>\d+)\.parquet$")
COMPACT_NAME = re.compile(r"(?:^|/)compact-[0-9a-f]{16}\.parquet$")
_COLUMNS = ("object_key, prefix, hive_partition, topic, kafka_partition, first_offset, next_offset, inputs, "
            "row_count, byte_count, min_event_time, max_event_time, state")


class ArchiveError(KappaError):
    """The archive cannot do what was asked (concurrent writer or compactor, missing object, empty archive)."""


@dataclass(frozen=True)
class ArchiveFile:
    """One row of `archive_files`: an object of the archive and where its rows come from."""

    object_key: str
    prefix: str
    hive_partition: str
    topic: str
    row_count: int
    byte_count: int
    min_event_time: datetime | None = None  # naive UTC
    max_event_time: datetime | None = None
    kafka_partition: int | None = None
    first_offset: int | None = None
    next_offset: int | None = None
    inputs: tuple[str, ...] | None = None
    state: str = "live"


# --- pure rules ---------------------------------------------------------------------------------
def hive_partition(day: str, hour: int, tail: str, date_key: str = "event_date") -> str:
    """`event_date=D/hour=HH[/<tail>]`: the directory of an object below the prefix."""
    return f"{date_key}={day}/hour={hour:02d}" + (f"/{tail}" if tail else "")


def partition_hour(partition: str) -> datetime | None:
    """Start (UTC) of the hour a Hive partition covers, from its `*_date=` and `hour=` parts."""
    parts = dict(piece.split("=", 1) for piece in partition.split("/") if "=" in piece)
    day = next((v for k, v in parts.items() if k.endswith("_date")), None)
    if day is None or "hour" not in parts:
        return None
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(hours=int(parts["hour"]))


def closing_reference(newest_event: datetime | None, now: datetime) -> datetime:
    """The clock partitions close by: the newest archived event time, but never later than now.

    Event time, like a watermark, so that re-archiving an old log closes hours as the archive moves
    through them; capped by the wall clock so that one device with a clock in the future does not
    close the current hours early."""
    if newest_event is None:
        return now
    newest = newest_event if newest_event.tzinfo else newest_event.replace(tzinfo=UTC)
    return min(newest, now)


def is_closed(partition: str, reference: datetime, min_age_hours: float) -> bool:
    """An hour partition is closed when its hour ended at least `min_age_hours` before `reference`."""
    start = partition_hour(partition)
    return start is not None and start + timedelta(hours=1 + min_age_hours) <= reference


def compact_name(input_keys: list[str] | tuple[str, ...]) -> str:
    """Deterministic name of the object merging these inputs: a retry rewrites the same object."""
    digest = hashlib.sha1("\n".join(sorted(input_keys)).encode()).hexdigest()
    return f"compact-{digest[:16]}.parquet"


def plan_compaction(files: list[ArchiveFile], reference: datetime, min_age_hours: float,
                    target_bytes: int) -> list[list[ArchiveFile]]:
    """Groups of live small files to merge: per (topic, closed Hive partition), files below the target
    size in key order, cut into runs of at most `target_bytes`; only runs of two or more files."""
    by_partition: dict[tuple[str, str], list[ArchiveFile]] = defaultdict(list)
    for file in files:
        if file.state == "live" and file.byte_count < target_bytes:
            by_partition[(file.topic, file.hive_partition)].append(file)
    groups: list[list[ArchiveFile]] = []
    for (_, partition), small in sorted(by_partition.items()):
        if is_closed(partition, reference, min_age_hours):
            groups.extend(run for run in _runs(sorted(small, key=lambda f: f.object_key), target_bytes)
                          if len(run) > 1)
    return groups


def _runs(files: list[ArchiveFile], target_bytes: int) -> list[list[ArchiveFile]]:
    runs: list[list[ArchiveFile]] = [[]]
    size = 0
    for file in files:
        if runs[-1] and size + file.byte_count > target_bytes:
            runs.append([])
            size = 0
        runs[-1].append(file)
        size += file.byte_count
    return runs


def orphans(listed: list[str], registered: set[str], committed: dict[int, int] | None) -> list[str]:
    """Objects below a prefix that no reader will ever see and no writer will write again: merged
    objects never registered (only one compactor runs at a time), and writer objects never registered
    whose first offset is below the committed offset (`committed` None: the prefix's topic is not
    known, writer objects are left alone)."""
    result = []
    for key in listed:
        if key in registered:
            continue
        if COMPACT_NAME.search(key) or _below_committed(key, committed):
            result.append(key)
    return result


def _below_committed(key: str, committed: dict[int, int] | None) -> bool:
    part = PART_NAME.search(key)
    return bool(part and committed is not None and int(part["offset"]) < committed.get(int(part["partition"]), -1))


def put_table(filesystem: Any, path: str, table: pa.Table) -> int:
    """Write `table` as one zstd Parquet object (a single atomic PUT); returns its size in bytes."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    data = sink.getvalue()
    with filesystem.open_output_stream(path) as out:
        out.write(data)
    return int(data.size)


# --- PostgreSQL ---------------------------------------------------------------------------------
def _row(values: tuple[Any, ...]) -> ArchiveFile:
    (key, prefix, partition, topic, kafka_partition, first, nxt, inputs, rows, size, low, high, state) = values
    return ArchiveFile(key, prefix, partition, topic, int(rows), int(size), low, high, kafka_partition, first, nxt,
                       tuple(inputs) if inputs is not None else None, state)


def _insert(conn: psycopg.Connection, file: ArchiveFile) -> None:
    conn.execute(
        f"INSERT INTO archive_files ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (file.object_key, file.prefix, file.hive_partition, file.topic, file.kafka_partition, file.first_offset,
         file.next_offset, list(file.inputs) if file.inputs is not None else None, file.row_count, file.byte_count,
         file.min_event_time, file.max_event_time, file.state))


def commit_batch(conn: psycopg.Connection, topic: str, partition: int, start: int, next_offset: int,
                 files: list[ArchiveFile]) -> None:
    """One transaction: register the batch's objects and move the partition's offset from `start`.

    The offset moves only if it still is `start` (a second writer on the same topic fails here
    instead of registering the same records twice)."""
    with conn.transaction():
        moved = conn.execute(
            "INSERT INTO archive_offsets (topic, kafka_partition, next_offset) VALUES (%s, %s, %s) "
            "ON CONFLICT (topic, kafka_partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now() "
            "WHERE archive_offsets.next_offset = %s", (topic, partition, next_offset, start)).rowcount
        if moved != 1:
            raise ArchiveError(f"{topic}[{partition}]: the archived offset is no longer {start}; "
                               "is another `kappa archive run` writing this topic?")
        for file in files:
            _insert(conn, file)


def commit_compaction(conn: psycopg.Connection, merged: ArchiveFile) -> None:
    """One transaction: the merged object becomes live and its inputs replaced, or nothing changes."""
    inputs = list(merged.inputs or ())
    with conn.transaction():
        replaced = conn.execute(
            "UPDATE archive_files SET state = 'replaced', replaced_at = now() "
            "WHERE prefix = %s AND object_key = ANY(%s) AND state = 'live'", (merged.prefix, inputs)).rowcount
        if replaced != len(inputs):
            raise ArchiveError(f"{merged.object_key}: {len(inputs) - replaced} of its inputs are no longer live; "
                               "is another compaction running?")
        _insert(conn, merged)


def files(conn: psycopg.Connection, prefix: str, state: str | None = "live") -> list[ArchiveFile]:
    """The prefix's registered objects (`state` None: whatever their state)."""
    query = f"SELECT {_COLUMNS} FROM archive_files WHERE prefix = %s"
    params: tuple[Any, ...] = (prefix,)
    if state is not None:
        query += " AND state = %s"
        params += (state,)
    return [_row(r) for r in conn.execute(query + " ORDER BY object_key", params)]


def forget(conn: psycopg.Connection, keys: list[str]) -> None:
    conn.execute("DELETE FROM archive_files WHERE object_key = ANY(%s) AND state = 'replaced'", (keys,))


def newest_event_time(conn: psycopg.Connection, prefix: str) -> datetime | None:
    row = conn.execute("SELECT max(max_event_time) FROM archive_files WHERE prefix = %s AND state = 'live'",
                       (prefix,)).fetchone()
    return row[0] if row else None


def registered_and_committed(conn: psycopg.Connection, prefix: str) -> tuple[set[str], dict[int, int] | None]:
    """Every registered key of the prefix and, if it archives exactly one topic, that topic's committed
    offsets, read in one snapshot: an object registered by a batch is then never taken for an orphan
    because its offset was read after the batch committed and its key before."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        registered = {r[0] for r in conn.execute("SELECT object_key FROM archive_files WHERE prefix = %s", (prefix,))}
        topics = [r[0] for r in conn.execute("SELECT DISTINCT topic FROM archive_files WHERE prefix = %s", (prefix,))]
        if len(topics) != 1:
            return registered, None
        offsets = conn.execute("SELECT kafka_partition, next_offset FROM archive_offsets WHERE topic = %s",
                               (topics[0],)).fetchall()
    return registered, {int(p): int(o) for p, o in offsets}


def summary(conn: psycopg.Connection, prefix: str, by: str = "day") -> list[tuple[str, int, int, int, int]]:
    """(day or Hive partition, partitions, live files, rows, bytes) of the live objects."""
    key = "split_part(hive_partition, '/', 1)" if by == "day" else "hive_partition"
    rows = conn.execute(
        f"SELECT {key}, count(DISTINCT hive_partition), count(*), sum(row_count), sum(byte_count) "
        "FROM archive_files WHERE prefix = %s AND state = 'live' GROUP BY 1 ORDER BY 1", (prefix,)).fetchall()
    return [(str(k), int(p), int(n), int(r), int(b)) for k, p, n, r, b in rows]


def replaced_count(conn: psycopg.Connection, prefix: str) -> int:
    row = conn.execute("SELECT count(*) FROM archive_files WHERE prefix = %s AND state = 'replaced'",
                       (prefix,)).fetchone()
    return int(row[0]) if row else 0
