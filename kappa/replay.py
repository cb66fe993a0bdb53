"""Kappa reprocessing: `kappa replay run | compare | promote | versions | drop`.

Changed logic is not patched into old results: the job is run again over the log into versioned
outputs (`device_agg_1m_v2`, ...), compared with what readers see now, and promoted by switching
the reader views in one transaction. A replay reads exactly the offsets captured when it started
(recorded in `replay_versions`), so it finishes, and re-running it gives the same rows.

`--follow` is the classic Kappa handover instead: the same job from the same start offsets, but
unbounded, on the cluster. The command returns once the job has caught up with the end offsets
captured at start (state `following`) and leaves it running as the version's live job: one job with
one state from the first offset on, so there is no seam to stitch at promotion.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import re
import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from psycopg import sql

from kappa import jobrunner, outputs, replay_archive
from kappa.config import PROJECT_ROOT, Config
from kappa.errors import KappaError
from kappa.flinkenv import JobOptions

LIVE = "live"
_VERSION = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_OFFSET_ITEM = re.compile(r"^partition:(\d+),offset:(\d+)$")

# The output tables compared per job, with their keys (columns never compared: IGNORED_COLUMNS).
COMPARE_TABLES: dict[str, tuple[str, ...]] = {
    "device_agg_1m": ("device_id", "window_start"),
    "site_agg_5m": ("site_id", "window_start"),
    "duplicates_1m": ("device_id", "window_start"),
}
IGNORED_COLUMNS = frozenset({"updated_at"})

# Reader views switched by `promote`: view -> (table, column list exactly as in 0004_query_views.sql).
READER_VIEWS: dict[str, tuple[str, str]] = {
    "v_device_1m": ("device_agg_1m", """
  device_id, site_id, device_type, window_start, window_end, reading_count,
  temp_min, temp_max, temp_avg, temp_first, temp_last, temp_stddev,
  humidity_min, humidity_max, humidity_avg, humidity_first, humidity_last, humidity_stddev,
  vibration_min, vibration_max, vibration_avg, vibration_first, vibration_last, vibration_stddev,
  battery_min, battery_max, battery_avg, battery_first, battery_last, battery_stddev,
  first_event_time, last_event_time, updated_at"""),
    "v_site_5m": ("site_agg_5m", """
  site_id, window_start, window_end, device_count, reading_count,
  temp_avg, temp_min, temp_max, humidity_avg, vibration_max, battery_min, updated_at"""),
}


class ReplayError(KappaError):
    """A replay could not be started, compared, promoted or dropped."""


# --- names and offsets (pure) -------------------------------------------------------------------

def check_version(version: str, allow_live: bool = False) -> str:
    if version == LIVE:
        if allow_live:
            return version
        raise ReplayError("'live' names the live outputs; pick another version name, e.g. v2")
    if not _VERSION.match(version):
        raise ReplayError(f"bad version {version!r}: lowercase letter, then letters/digits/_ (max 31), e.g. v2")
    return version


def version_suffix(version: str) -> str:
    """'v2' -> '_v2'; 'live' -> ''."""
    if version == LIVE:
        return ""
    return outputs.check_suffix("_" + check_version(version))


def format_offsets(offsets: Mapping[int, int]) -> str:
    """{0: 5, 1: 7} -> 'partition:0,offset:5;partition:1,offset:7' (the Kafka connector's format)."""
    return ";".join(f"partition:{p},offset:{offsets[p]}" for p in sorted(offsets))


def parse_offsets(text: str) -> dict[int, int]:
    result: dict[int, int] = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        match = _OFFSET_ITEM.match(item.replace(" ", ""))
        if not match:
            raise ValueError(f"bad offsets item {item!r}: want partition:N,offset:M")
        result[int(match.group(1))] = int(match.group(2))
    return result


def startup_options(start: Mapping[int, int]) -> str:
    """Extra WITH options for the Kafka source: start exactly at `start` of each partition (unbounded)."""
    return (",\n  'scan.startup.mode' = 'specific-offsets',"
            f"\n  'scan.startup.specific-offsets' = '{format_offsets(start)}'")


def source_options(start: Mapping[int, int], end: Mapping[int, int]) -> str:
    """Extra WITH options for the Kafka source: read exactly [start, end) of each partition."""
    return (startup_options(start) + ",\n  'scan.bounded.mode' = 'specific-offsets',"
            f"\n  'scan.bounded.specific-offsets' = '{format_offsets(end)}'")


def parse_time_ms(text: str) -> int:
    """ISO timestamp (naive = UTC) -> epoch milliseconds."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ReplayError(f"bad timestamp {text!r}: use ISO 8601, e.g. 2026-01-01T00:00:00Z") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class OffsetRange:
    """What a replay reads: [start, end) per partition of one topic."""

    topic: str
    start: dict[int, int]
    end: dict[int, int]
    from_spec: str = "earliest"
    to_spec: str | None = None

    @property
    def total(self) -> int:
        return sum(max(0, self.end[p] - self.start.get(p, 0)) for p in self.end)


# --- comparing (pure) -----------------------------------------------------------------------------

Row = dict[str, Any]


def values_equal(a: Any, b: Any, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=0.0) or (
                math.isnan(float(a)) and math.isnan(float(b)))
        except (TypeError, ValueError):
            return bool(a == b)
    return bool(a == b)


@dataclass
class TableDiff:
    table: str
    rows_left: int  # all rows of the left table
    rows_right: int
    window_from: Any = None  # overlapping window_start range compared (None: no overlap)
    window_to: Any = None
    only_left: int = 0
    only_right: int = 0
    differing: int = 0
    same: int = 0
    columns: Counter[str] = field(default_factory=Counter)
    # which keys: a test can check that a change altered exactly the windows it should
    only_left_keys: set[tuple] = field(default_factory=set)
    only_right_keys: set[tuple] = field(default_factory=set)
    differing_keys: set[tuple] = field(default_factory=set)

    @property
    def differences(self) -> int:
        return self.only_left + self.only_right + self.differing

    def top_columns(self, n: int = 3) -> str:
        return ", ".join(f"{c}({k})" for c, k in self.columns.most_common(n))


def compare_rows(table: str, left: Mapping[tuple, Row], right: Mapping[tuple, Row],
                 window_key: int = -1, ignore: frozenset[str] = IGNORED_COLUMNS) -> TableDiff:
    """Compare two keyed row sets over the window range both cover (key[window_key] = window start)."""
    diff = TableDiff(table, len(left), len(right))
    if not left or not right:
        return diff
    lo = max(min(k[window_key] for k in left), min(k[window_key] for k in right))
    hi = min(max(k[window_key] for k in left), max(k[window_key] for k in right))
    if lo > hi:
        return diff
    diff.window_from, diff.window_to = lo, hi
    in_range = lambda rows: {k for k in rows if lo <= k[window_key] <= hi}  # noqa: E731
    keys_left, keys_right = in_range(left), in_range(right)
    diff.only_left_keys, diff.only_right_keys = keys_left - keys_right, keys_right - keys_left
    diff.only_left, diff.only_right = len(diff.only_left_keys), len(diff.only_right_keys)
    for key in keys_left & keys_right:
        a, b = left[key], right[key]
        columns = [c for c in sorted(a.keys() | b.keys()) if c not in ignore and not values_equal(a.get(c), b.get(c))]
        if columns:
            diff.differing += 1
            diff.differing_keys.add(key)
            diff.columns.update(columns)
        else:
            diff.same += 1
    return diff


def format_diffs(name_left: str, name_right: str, diffs: list[TableDiff]) -> str:
    header = ("table", f"rows {name_left}", f"rows {name_right}", "compared window_start range",
              f"only {name_left}", f"only {name_right}", "differing", "same", "top differing columns")
    lines = [header]
    for d in diffs:
        window = f"{d.window_from} .. {d.window_to}" if d.window_from is not None else "(no overlap)"
        lines.append((d.table, str(d.rows_left), str(d.rows_right), window, str(d.only_left),
                      str(d.only_right), str(d.differing), str(d.same), d.top_columns() or "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def write_csv(path: Path, name_left: str, name_right: str, diffs: list[TableDiff]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["table", "left", "right", "rows_left", "rows_right", "window_from", "window_to",
                         "only_left", "only_right", "differing", "same", "top_columns"])
        for d in diffs:
            writer.writerow([d.table, name_left, name_right, d.rows_left, d.rows_right, d.window_from,
                             d.window_to, d.only_left, d.only_right, d.differing, d.same,
                             ";".join(f"{c}={k}" for c, k in d.columns.most_common())])


# --- Kafka ------------------------------------------------------------------------------------------

def _consumer(config: Config, group: str = "kappa-replay-probe") -> Consumer:
    return Consumer({"bootstrap.servers": config.kafka.bootstrap, "group.id": group,
                     "enable.auto.commit": False, "isolation.level": "read_committed"})


def capture_range(config: Config, topic: str, from_spec: str = "earliest", to_spec: str | None = None) -> OffsetRange:
    """The offsets a replay will read, fixed now: from earliest (or the first offset at/after a
    time) to the end offsets now (or the first offset at/after `to_spec`, if earlier)."""
    consumer = _consumer(config)
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise ReplayError(f"topic {topic!r} not found on {config.kafka.bootstrap}")
        partitions = sorted(metadata.partitions)
        marks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
        start = {p: low for p, (low, _) in marks.items()}
        end = {p: high for p, (_, high) in marks.items()}

        def at(ms: int) -> dict[int, int]:
            found = consumer.offsets_for_times([TopicPartition(topic, p, ms) for p in partitions], timeout=10)
            return {tp.partition: (tp.offset if tp.offset >= 0 else end[tp.partition]) for tp in found}

        if from_spec != "earliest":
            start = {p: max(start[p], o) for p, o in at(parse_time_ms(from_spec)).items()}
        if to_spec:
            end = {p: min(end[p], o) for p, o in at(parse_time_ms(to_spec)).items()}
        end = {p: max(end[p], start[p]) for p in partitions}
        return OffsetRange(topic, start, end, from_spec, to_spec)
    except KafkaException as exc:
        raise ReplayError(f"Kafka at {config.kafka.bootstrap}: {exc}") from exc
    finally:
        consumer.close()


def committed_offsets(config: Config, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """Offsets the job's consumer group committed (Flink commits them at each checkpoint)."""
    consumer = _consumer(config, group)
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=5)
        return {tp.partition: tp.offset for tp in found if tp.offset >= 0}
    except KafkaException:
        return {}
    finally:
        consumer.close()


def forget_group(config: Config, group: str) -> None:
    """Delete a consumer group's committed offsets: a re-run of a failed version must not see the old
    run's offsets as its own progress (with --follow they decide when the version has caught up)."""
    admin = AdminClient({"bootstrap.servers": config.kafka.bootstrap})
    for future in admin.delete_consumer_groups([group], request_timeout=10).values():
        with contextlib.suppress(KafkaException):  # no such group: nothing to forget
            future.result()


def output_topics(config: Config, topic: str, suffix: str) -> list[str]:
    return [config.kafka.aggregates_topic + suffix, config.kafka.dead_letter_topic + suffix, f"{topic}-late{suffix}"]


# --- the version registry ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Version:
    job: str
    version: str
    topic: str
    start: dict[int, int]
    end: dict[int, int]
    from_spec: str
    to_spec: str | None
    state: str
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    job_id: str | None = None  # the Flink job of a --follow version (it keeps the version current)

    @property
    def promoted(self) -> bool:
        return self.state == "promoted"

    @property
    def follows(self) -> bool:
        """Computed by its own unbounded job (`--follow`), not by a bounded replay."""
        return self.job_id is not None


def _offsets(value: Any) -> dict[int, int]:
    data = json.loads(value) if isinstance(value, str) else dict(value)
    return {int(k): int(v) for k, v in data.items()}


def versions(conn: psycopg.Connection, job: str | None = None) -> list[Version]:
    rows = conn.execute(
        "SELECT job, version, topic, start_offsets, end_offsets, from_spec, to_spec, state, created_at, "
        "finished_at, error, job_id FROM replay_versions WHERE %(job)s::text IS NULL OR job = %(job)s "
        "ORDER BY job, created_at", {"job": job}).fetchall()
    return [Version(r[0], r[1], r[2], _offsets(r[3]), _offsets(r[4]), *r[5:]) for r in rows]


def get_version(conn: psycopg.Connection, job: str, version: str) -> Version:
    for candidate in versions(conn, job):
        if candidate.version == version:
            return candidate
    raise ReplayError(f"no version {version!r} of job {job!r}; see `kappa replay versions {job}`")


def register(conn: psycopg.Connection, job: str, version: str, rng: OffsetRange) -> None:
    """Record a new running version (a failed one of the same name is replaced)."""
    existing = [v for v in versions(conn, job) if v.version == version]
    if existing and existing[0].state != "failed":
        raise ReplayError(f"version {version} of {job} exists ({existing[0].state}); "
                          f"`kappa replay drop {job} {version}` first, or pick another name")
    conn.execute(
        "INSERT INTO replay_versions (job, version, topic, start_offsets, end_offsets, from_spec, to_spec) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (job, version) DO UPDATE SET "
        "topic = EXCLUDED.topic, start_offsets = EXCLUDED.start_offsets, end_offsets = EXCLUDED.end_offsets, "
        "from_spec = EXCLUDED.from_spec, to_spec = EXCLUDED.to_spec, state = 'running', error = NULL, "
        "created_at = now(), finished_at = NULL, job_id = NULL",
        (job, version, rng.topic, json.dumps({str(p): o for p, o in rng.start.items()}),
         json.dumps({str(p): o for p, o in rng.end.items()}), rng.from_spec, rng.to_spec))


def set_state(conn: psycopg.Connection, job: str, version: str, state: str, error: str | None = None) -> None:
    conn.execute("UPDATE replay_versions SET state = %s, error = %s, finished_at = now() "
                 "WHERE job = %s AND version = %s", (state, error, job, version))


def record_job(conn: psycopg.Connection, job: str, version: str, job_id: str) -> None:
    """Store the Flink job of a --follow version as soon as it is submitted: `drop` checks it."""
    conn.execute("UPDATE replay_versions SET job_id = %s WHERE job = %s AND version = %s", (job_id, job, version))


# --- run -----------------------------------------------------------------------------------------------

@dataclass
class Progress:
    """Turns committed offsets into a progress line: done / total per partition, records/s, ETA."""

    rng: OffsetRange
    started: float = field(default_factory=time.monotonic)

    def done(self, committed: Mapping[int, int]) -> dict[int, int]:
        return {p: max(0, min(committed.get(p, self.rng.start[p]), self.rng.end[p]) - self.rng.start[p])
                for p in self.rng.end}

    def line(self, committed: Mapping[int, int], now: float | None = None) -> str:
        elapsed = max(1e-3, (now if now is not None else time.monotonic()) - self.started)
        done = self.done(committed)
        total = self.rng.total
        count = sum(done.values())
        parts = " ".join(f"p{p}:{done[p]}/{self.rng.end[p] - self.rng.start[p]}" for p in sorted(done))
        rate = count / elapsed
        eta = f"{(total - count) / rate:.0f}s" if rate > 0 else "?"
        if not committed:
            return f"{parts}  (no checkpoint committed yet)  {elapsed:.0f}s elapsed"
        return f"{parts}  {count}/{total} ({100 * count / max(total, 1):.0f}%)  {rate:.0f} records/s  ETA {eta}"


def caught_up(rng: OffsetRange, committed: Mapping[int, int]) -> bool:
    """Every partition's committed offset has reached the captured end (an empty partition has)."""
    return all(committed.get(p, rng.start.get(p, 0)) >= end for p, end in rng.end.items())


def replay_options(rng: OffsetRange, suffix: str, extra: Mapping[str, str] | None = None,
                   parallelism: int | None = None, follow: bool = False) -> JobOptions:
    """The job's options for a replay of `rng`: bounded by its end, or (`follow`) from its start with no end."""
    source = startup_options(rng.start) if follow else source_options(rng.start, rng.end)
    return JobOptions(bounded=not follow, output_suffix=suffix, parallelism=parallelism, extra={
        **(extra or {}), "telemetry_topic": rng.topic, "source_options": source})


def _status_name(status: Any) -> str:
    return str(getattr(status, "name", status)).rsplit(".", 1)[-1]


_ENDED = frozenset({"FINISHED", "FAILED", "CANCELED", "SUSPENDED", "ENDED"})
_ALIVE = frozenset({"INITIALIZING", "CREATED", "RUNNING", "RESTARTING", "RECONCILING"})


class _LocalRun:
    """A replay in a MiniCluster inside this process."""

    def __init__(self, config: Config, job: str, options: JobOptions) -> None:
        self.result = jobrunner.run_local(config, job, options, wait=False)
        self.client = self.result.get_job_client()

    def state(self) -> str:
        # the per-job MiniCluster shuts down when the job ends: then ask the result (finish)
        try:
            return _status_name(self.client.get_job_status().result()) if self.client is not None else "ENDED"
        except Exception:  # noqa: BLE001 - py4j error once the MiniCluster is gone
            return "ENDED"

    def finish(self, state: str) -> None:
        self.result.wait()  # returns at once when the job finished; raises its failure otherwise

    def cancel(self) -> None:
        try:
            if self.client is not None:
                self.client.cancel().result()
        except Exception:  # noqa: BLE001 - already gone
            pass


class _ClusterRun:
    """A replay submitted (detached) to the standalone cluster, followed through its REST API."""

    def __init__(self, config: Config, job: str, options: JobOptions) -> None:
        self.config = config
        self.job_id = jobrunner.submit(config, job, options)

    def state(self) -> str:
        return jobrunner.job_state(self.config, self.job_id)

    def finish(self, state: str) -> None:
        if state != "FINISHED":  # raises with the job's root exception when it FAILED or was CANCELED
            jobrunner.wait_for_state(self.config, self.job_id, {"FINISHED"}, timeout_s=5)

    def cancel(self) -> None:
        """A replay given up (timeout, Ctrl-C) must not keep writing into a version marked failed."""
        try:
            if self.state() not in _ENDED:
                jobrunner.cancel(self.config, self.job_id)
        except jobrunner.JobError:
            pass


def _follow(run: _LocalRun | _ClusterRun, poll: Callable[[], str], interval_s: float, timeout_s: float,
            say: Callable[[str], None]) -> str:
    """Wait until the job ends, printing `poll()` (the progress line) every `interval_s`; returns its state."""
    deadline = time.monotonic() + timeout_s
    last = 0.0
    while True:
        current = run.state()
        if current in _ENDED:
            return current
        if time.monotonic() > deadline:
            raise ReplayError(f"replay still {current} after {timeout_s:.0f}s")
        if time.monotonic() - last >= interval_s:
            last = time.monotonic()
            say("  " + poll())
        time.sleep(0.5)


def _catch_up(run: _ClusterRun, rng: OffsetRange, committed: Callable[[], dict[int, int]], progress: Progress,
              interval_s: float, timeout_s: float, say: Callable[[str], None]) -> None:
    """Wait until the unbounded job's committed offsets reach the captured end, printing progress
    every `interval_s`; an unbounded job that ends before that has failed (or was cancelled)."""
    deadline = time.monotonic() + timeout_s
    last = 0.0
    while True:
        current = run.state()
        if current in _ENDED:
            run.finish(current)  # raises the root exception of a FAILED or CANCELED job
            raise ReplayError(f"Flink job {run.job_id} ended {current} before catching up")
        offsets = committed()
        if caught_up(rng, offsets):
            say("  " + progress.line(offsets))
            return
        if time.monotonic() > deadline:
            raise ReplayError(f"replay still behind its end offsets after {timeout_s:.0f}s (job {current})")
        if time.monotonic() - last >= interval_s:
            last = time.monotonic()
            say("  " + progress.line(offsets))
        time.sleep(1.0)


def run_replay(config: Config, job: str, version: str, rng: OffsetRange, *, cluster: bool = False,
               follow: bool = False, extra: Mapping[str, str] | None = None, parallelism: int | None = None,
               interval_s: float = 5.0, timeout_s: float = 24 * 3600, archive: bool = False,
               log: Callable[[str], None] | None = None) -> Version:
    """Create the version's tables, record it, run the job (SQL of `config.sql_dir`) over exactly `rng`
    locally or on the standalone cluster, and mark it finished/failed.

    With `follow` (cluster only) the job has no end: this returns once it has caught up with
    `rng.end`, marks the version `following` and leaves the job running as the version's live job.
    With `archive` (aggregate job, bounded), the version's aggregates topic is then archived as
    Parquet under the version's own prefix (kappa.replay_archive)."""
    if follow and not cluster:
        raise ReplayError("--follow leaves the version's job running: it needs the standalone cluster (--cluster)")
    say = log or (lambda m: print(m, file=sys.stderr, flush=True))
    suffix = version_suffix(version)
    jobrunner.load_job(job)
    from kappa.stack.postgres import connect

    with connect(config) as conn:
        register(conn, job, version, rng)
        outputs.create_versioned_tables(conn, suffix)
    options = replay_options(rng, suffix, extra, parallelism, follow)
    group = f"{config.job.group_prefix}-{job}{suffix}"
    forget_group(config, group)
    progress = Progress(rng)
    partitions = sorted(rng.end)
    say(f"replay {job} as {version}: {rng.topic} {format_offsets(rng.start)} -> "
        f"{format_offsets(rng.end) + (' and on (--follow)' if follow else '')} "
        f"({rng.total} records), SQL {config.sql_dir}, outputs *{suffix}, "
        f"{'cluster ' + config.flink.rest_url if cluster else 'local MiniCluster'}")
    run: _LocalRun | _ClusterRun | None = None
    try:
        run = _ClusterRun(config, job, options) if cluster else _LocalRun(config, job, options)
        if isinstance(run, _ClusterRun):
            say(f"submitted as Flink job {run.job_id}")
        if isinstance(run, _ClusterRun) and follow:
            with connect(config) as conn:
                record_job(conn, job, version, run.job_id)
            _catch_up(run, rng, lambda: committed_offsets(config, group, rng.topic, partitions), progress,
                      interval_s, timeout_s, say)
        else:
            state = _follow(run, lambda: progress.line(committed_offsets(config, group, rng.topic, partitions)),
                            interval_s, timeout_s, say)
            run.finish(state)
    except BaseException as exc:
        if run is not None:
            run.cancel()
        with connect(config) as conn:
            set_state(conn, job, version, "failed", str(exc)[:2000])
        raise
    elapsed = time.monotonic() - progress.started
    with connect(config) as conn:
        set_state(conn, job, version, "following" if follow else "finished")
        done = get_version(conn, job, version)
    rate = f"{rng.total} records in {elapsed:.1f}s ({rng.total / max(elapsed, 1e-3):.0f} records/s)"
    if follow:
        say(f"replay {job} {version} caught up with {format_offsets(rng.end)}: {rate}; Flink job {done.job_id} "
            f"keeps running as {version}'s live job (state following); compare with "
            f"`kappa replay compare {job} live {version}`, then `kappa replay promote {job} {version}`")
    else:
        say(f"replay {job} {version} finished: {rate}; compare with `kappa replay compare {job} live {version}`")
    if archive and job == "aggregate" and not follow:
        rows = replay_archive.archive_version(config, suffix)
        say(f"archived {rows} aggregate rows of {version} to s3://{config.s3.bucket}/"
            f"{replay_archive.version_prefix(suffix)}/ (kappa query --dataset aggregates --prefix "
            f"{replay_archive.version_prefix(suffix)} \"SELECT ...\")")
    return done


# --- compare, promote, drop ------------------------------------------------------------------------

def table_rows(conn: psycopg.Connection, table: str, keys: tuple[str, ...]) -> dict[tuple, Row]:
    cursor = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
    names = [c.name for c in cursor.description or []]
    rows = (dict(zip(names, values, strict=True)) for values in cursor.fetchall())
    return {tuple(row[k] for k in keys): row for row in rows}


def _table_exists(conn: psycopg.Connection, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() != (None,)


def compare_versions(conn: psycopg.Connection, job: str, left: str, right: str) -> list[TableDiff]:
    suffixes = (version_suffix(check_version(left, True)), version_suffix(check_version(right, True)))
    diffs = []
    for table, keys in COMPARE_TABLES.items():
        names = [table + s for s in suffixes]
        for name in names:
            if not _table_exists(conn, name):
                raise ReplayError(f"table {name} does not exist (job {job})")
        diffs.append(compare_rows(table, table_rows(conn, names[0], keys), table_rows(conn, names[1], keys)))
    return diffs


def promote(conn: psycopg.Connection, job: str, version: str) -> None:
    """Point the reader views at the version's tables and mark it promoted, in one transaction."""
    check_version(version, allow_live=True)
    suffix = version_suffix(version)
    with conn.transaction():
        if version != LIVE:
            chosen = get_version(conn, job, version)
            if chosen.state not in ("finished", "following", "promoted"):
                raise ReplayError(f"version {version} is {chosen.state}; only a finished or following replay "
                                  "can be promoted")
        for view, (table, columns) in READER_VIEWS.items():
            if not _table_exists(conn, table + suffix):
                raise ReplayError(f"table {table + suffix} does not exist")
            conn.execute(sql.SQL("CREATE OR REPLACE VIEW {} AS SELECT{} FROM {}").format(
                sql.Identifier(view), sql.SQL(columns), sql.Identifier(table + suffix)))
        # un-promoted, a --follow version is still kept current by its job
        conn.execute("UPDATE replay_versions SET state = CASE WHEN job_id IS NULL THEN 'finished' ELSE 'following' "
                     "END WHERE job = %s AND state = 'promoted'", (job,))
        if version != LIVE:
            conn.execute("UPDATE replay_versions SET state = 'promoted' WHERE job = %s AND version = %s",
                         (job, version))


def follow_on_options(chosen: Version) -> JobOptions:
    """The live job of a promoted version: unbounded, from the replay's end offsets, into its outputs.

    It continues the replay's input exactly (no record skipped or read twice); see docs/design.md
    for the windows open at those offsets, which it rewrites from the records after them only."""
    return JobOptions(output_suffix=version_suffix(chosen.version),
                      extra={"telemetry_topic": chosen.topic, "source_options": startup_options(chosen.end)})


def follow_on_command(config: Config, chosen: Version) -> str:
    """`kappa submit ...` starting `follow_on_options`, with the SQL folder of `config` when not the default."""
    command = shlex.join(["kappa", "submit", chosen.job, *jobrunner.job_arguments(follow_on_options(chosen))])
    if config.sql_dir != PROJECT_ROOT / "sql":
        command = f"KAPPA_PATHS__SQL_DIR={shlex.quote(str(config.sql_dir))} {command}"
    return command


_UNREACHABLE = "UNREACHABLE"


def cluster_job_state(config: Config, job_id: str) -> str:
    """The Flink job's state; 'GONE' when the cluster does not know it (e.g. restarted without HA),
    _UNREACHABLE when the cluster does not answer."""
    try:
        return jobrunner.job_state(config, job_id)
    except jobrunner.JobError as exc:
        return "GONE" if "-> 404" in str(exc) else _UNREACHABLE


def _stop_version_job(config: Config, chosen: Version, cancel_job: bool) -> list[str]:
    """A --follow version's job writes into its tables: refuse to drop them under it, or cancel it."""
    if chosen.job_id is None:
        return []
    state = cluster_job_state(config, chosen.job_id)
    if state in _ENDED or state == "GONE":
        return []
    if state == _UNREACHABLE:
        raise ReplayError(f"cannot tell whether {chosen.version}'s Flink job {chosen.job_id} still runs: "
                          f"the cluster at {config.flink.rest_url} does not answer")
    if not cancel_job:
        raise ReplayError(f"version {chosen.version}'s Flink job {chosen.job_id} is {state} (it keeps the version "
                          f"current): `kappa cancel {chosen.job_id}` first, or drop with --cancel-job")
    jobrunner.cancel(config, chosen.job_id)
    jobrunner.wait_for_state(config, chosen.job_id, {"CANCELED"}, timeout_s=120)
    return [f"job {chosen.job_id} (cancelled)"]


def drop(config: Config, conn: psycopg.Connection, job: str, version: str, cancel_job: bool = False) -> list[str]:
    """Drop the version's tables and output topics; refused while it is promoted, and while its
    --follow job runs unless `cancel_job`. Returns what went."""
    chosen = get_version(conn, job, check_version(version))
    if chosen.promoted:
        raise ReplayError(f"version {version} is promoted; `kappa replay promote {job} live` (or another) first")
    suffix = version_suffix(version)
    gone = _stop_version_job(config, chosen, cancel_job)
    with conn.transaction():
        for table in outputs.AGGREGATE_TABLES:
            if _table_exists(conn, table + suffix):
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table + suffix)))
                gone.append(f"table {table + suffix}")
        conn.execute("DELETE FROM replay_versions WHERE job = %s AND version = %s", (job, version))
    gone += replay_archive.drop_version_archive(config, conn, suffix)
    admin = AdminClient({"bootstrap.servers": config.kafka.bootstrap})
    existing = set(admin.list_topics(timeout=10).topics)
    topics = [t for t in output_topics(config, chosen.topic, suffix) if t in existing]
    for topic, future in (admin.delete_topics(topics, operation_timeout=30).items() if topics else []):
        future.result()
        gone.append(f"topic {topic}")
    return gone


# --- command line -------------------------------------------------------------------------------------

def _cmd_run(args: argparse.Namespace, config: Config) -> int:
    check_version(args.version)
    topic = args.topic or config.kafka.telemetry_topic
    rng = capture_range(config, topic, args.from_spec, args.to_spec)
    extra = dict(item.split("=", 1) for item in args.set)
    run_replay(config, args.job, args.version, rng, cluster=args.cluster or args.follow, follow=args.follow,
               extra=extra, parallelism=args.parallelism, archive=not args.no_archive)
    return 0


def _cmd_compare(args: argparse.Namespace, config: Config) -> int:
    from kappa.stack.postgres import connect

    with connect(config) as conn:
        diffs = compare_versions(conn, args.job, args.left, args.right)
    print(format_diffs(args.left, args.right, diffs))
    if args.csv:
        write_csv(Path(args.csv), args.left, args.right, diffs)
        print(f"written {args.csv}", file=sys.stderr)
    return 0


def running_jobs_named(config: Config, name: str) -> list[str]:
    """Ids of the cluster's running (or restarting) jobs named exactly `name` (a job's name is JOB + output suffix);
    [] when the cluster does not answer. `kappa stop NAME` matches by substring, so print ids."""
    try:
        return [j.job_id for j in jobrunner.list_jobs(config) if j.name == name and j.state in _ALIVE]
    except jobrunner.JobError:
        return []


def _stop_hint(config: Config, job: str, previous: str) -> str:
    """How to stop the job that fed the reader views before this promotion."""
    name = job + version_suffix(previous)
    ids = running_jobs_named(config, name)
    if not ids:
        return f"then stop the old live job ({name}; none running found on the cluster; see `kappa jobs`)"
    return f"then stop the old live job ({name}): " + "; ".join(f"kappa stop {i} --savepoint" for i in ids)


def _cmd_promote(args: argparse.Namespace, config: Config) -> int:
    from kappa.stack.postgres import connect

    with connect(config) as conn:
        previous = next((v.version for v in versions(conn, args.job) if v.promoted), LIVE)
        promote(conn, args.job, args.version)
        chosen = None if args.version == LIVE else get_version(conn, args.job, args.version)
    print(f"{', '.join(READER_VIEWS)} now read {'the live tables' if chosen is None else args.version}")
    if chosen is not None and chosen.job_id is not None:
        state = cluster_job_state(config, chosen.job_id)
        if state != "RUNNING":
            print(f"WARNING: {args.version}'s Flink job {chosen.job_id} is {state}: its tables do not advance",
                  file=sys.stderr)
        print(f"{args.version}'s job {chosen.job_id} is already live ({state}): no follow-on job to start; "
              + _stop_hint(config, args.job, previous), file=sys.stderr)
    elif chosen is not None:
        print(f"the {args.version} tables end at the replay's end offsets {format_offsets(chosen.end)}; "
              "to keep them current, start its live job there (with the SQL it was replayed with), "
              "then stop the old live job:\n  " + follow_on_command(config, chosen), file=sys.stderr)
    return 0


def _cmd_versions(args: argparse.Namespace, config: Config) -> int:
    from kappa.stack.postgres import connect

    with connect(config) as conn:
        found = versions(conn, args.job)
    if not found:
        print("no replay versions (readers see the live tables)")
        return 0
    for v in found:
        promoted = "*" if v.promoted else " "
        span = f"{v.from_spec}..{v.to_spec or 'end at start'}" + (" and on (--follow)" if v.follows else "")
        live = f" job {v.job_id} {cluster_job_state(config, v.job_id)}" if v.job_id else ""
        print(f"{promoted} {v.job:<10} {v.version:<12} {v.state:<9} {v.topic} "
              f"{format_offsets(v.start)} -> {format_offsets(v.end)} ({span}) "
              f"created {v.created_at:%Y-%m-%d %H:%M:%S}{live}")
    if not any(v.promoted for v in found):
        print("(no version promoted: readers see the live tables)")
    return 0


def _cmd_drop(args: argparse.Namespace, config: Config) -> int:
    from kappa.stack.postgres import connect

    with connect(config) as conn:
        gone = drop(config, conn, args.job, args.version, cancel_job=args.cancel_job)
    print("dropped: " + (", ".join(gone) or "nothing but the record"))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("replay", help="reprocess the log into versioned outputs, compare, promote")
    commands = parser.add_subparsers(dest="replay_command", metavar="SUBCOMMAND", required=True)

    run = commands.add_parser("run", help="run JOB over the topic's offsets now into outputs suffixed _VERSION")
    run.add_argument("job")
    run.add_argument("--as", dest="version", required=True, metavar="VERSION", help="e.g. v2 -> tables *_v2")
    run.add_argument("--from", dest="from_spec", default="earliest", metavar="earliest|ISO-TIMESTAMP")
    run.add_argument("--to", dest="to_spec", metavar="ISO-TIMESTAMP", help="default: the end offsets at start")
    run.add_argument("--topic", help="input topic (default: kafka.telemetry_topic)")
    run.add_argument("--cluster", action="store_true", help="run on the standalone cluster (default: local)")
    run.add_argument("--follow", action="store_true",
                     help="unbounded from the same start (implies --cluster): return once caught up with the end "
                          "offsets at start, leaving the job running as the version's live job")
    run.add_argument("--parallelism", type=int)
    run.add_argument("--no-archive", action="store_true",
                     help="do not archive the version's aggregates as Parquet under aggregates-1m_<version>/ "
                          "(bounded replays of the aggregate job archive them by default)")
    run.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="SQL placeholder value for this version, e.g. watermark_delay_s=30 (repeatable)")
    run.set_defaults(func=_cmd_run)

    compare = commands.add_parser("compare", help="compare two versions' outputs ('live' = no suffix)")
    compare.add_argument("job")
    compare.add_argument("left", metavar="V1")
    compare.add_argument("right", metavar="V2")
    compare.add_argument("--csv", metavar="PATH", help="also write the comparison as CSV")
    compare.set_defaults(func=_cmd_compare)

    prom = commands.add_parser("promote", help="switch the reader views to VERSION ('live' switches back)")
    prom.add_argument("job")
    prom.add_argument("version")
    prom.set_defaults(func=_cmd_promote)

    listing = commands.add_parser("versions", help="list replay versions")
    listing.add_argument("job", nargs="?")
    listing.set_defaults(func=_cmd_versions)

    dropping = commands.add_parser("drop", help="drop a version's tables and output topics")
    dropping.add_argument("job")
    dropping.add_argument("version")
    dropping.add_argument("--cancel-job", action="store_true",
                          help="cancel the version's running --follow job first (refused otherwise)")
    dropping.set_defaults(func=_cmd_drop)
