"""The project's Prometheus exporter (`python -m kappa.metrics`): what no existing exporter knows.

Each scrape reads its sources afresh: consumer-group lag from Kafka (kappa.metrics.lag), the jobs'
outputs in PostgreSQL (records per stage, dead letters by reason, fleet activity),
and the MQTT bridge's status files. A source that fails is reported as `kappa_exporter_errors{source}`
= 1 and its metrics are left out of that scrape, never replaced by zeros that would look healthy.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from kappa.bridge import status as bridge_status
from kappa.config import Config
from kappa.metrics import names
from kappa.metrics.lag import LagReader, PartitionLag

log = logging.getLogger("kappa.metrics")

STAGE_QUERIES = {  # stage -> query over the live outputs of the aggregation job
    "aggregated": "SELECT COALESCE(sum(reading_count), 0) FROM device_agg_1m",
    "dead_lettered": "SELECT count(*) FROM dead_letters",
    "late": "SELECT count(*) FROM late_readings",
    "duplicate": "SELECT COALESCE(sum(duplicate_count), 0) FROM duplicates_1m",
}


def _gauge(metric: names.Metric) -> GaugeMetricFamily:
    return GaugeMetricFamily(metric.name, metric.help, labels=list(metric.labels))


ALERT_LATENCY_BOUNDS_S = (1.0, 2.0, 5.0, 7.5, 10.0, 12.5, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def histogram(metric: names.Metric, labels: list[str], bounds: tuple[float, ...], counts: list[int],
              total_s: float, family: HistogramMetricFamily | None = None) -> HistogramMetricFamily:
    """A histogram family from per-bucket counts (one per bound, then the overflow)."""
    family = family or HistogramMetricFamily(metric.name, metric.help, labels=list(metric.labels))
    cumulative, buckets = 0, []
    for bound, count in zip((*map(str, bounds), "+Inf"), counts, strict=True):
        cumulative += count
        buckets.append((bound, float(cumulative)))
    family.add_metric(labels, buckets, total_s)
    return family


class AlertLatency:
    """Event-to-alert latency of the alerts stored since the exporter started (a histogram kept here,
    fed at each scrape with the rows whose updated_at is newer than the last one seen)."""

    def __init__(self) -> None:
        self._since: Any = None
        self._counts = [0] * (len(ALERT_LATENCY_BOUNDS_S) + 1)
        self._sum = 0.0

    def family(self, conn: psycopg.Connection) -> Metric:
        if self._since is None:
            row = conn.execute("SELECT now()").fetchone()
            self._since = row[0] if row else None
        rows = conn.execute(
            "SELECT updated_at, extract(epoch FROM updated_at) - extract(epoch FROM detected_at) FROM alerts "
            "WHERE updated_at > %s ORDER BY updated_at", (self._since,)).fetchall()
        for updated_at, seconds in rows:
            latency = max(float(seconds), 0.0)
            self._counts[bisect.bisect_left(ALERT_LATENCY_BOUNDS_S, latency)] += 1
            self._sum += latency
            self._since = updated_at
        return histogram(names.ALERT_LATENCY, [], ALERT_LATENCY_BOUNDS_S, self._counts, self._sum)


def lag_families(lags: Iterable[PartitionLag], running_groups: set[str] | None = None) -> list[Metric]:
    """Lag per partition; with `running_groups` (None: Flink not readable), which groups a job reads."""
    records, seconds = _gauge(names.CONSUMER_LAG_RECORDS), _gauge(names.CONSUMER_LAG_SECONDS)
    groups: set[str] = set()
    for lag in lags:
        labels = [lag.group, lag.topic, str(lag.partition)]
        records.add_metric(labels, lag.records)
        seconds.add_metric(labels, lag.event_lag_s)
        groups.add(lag.group)
    families: list[Metric] = [records, seconds]
    if running_groups is not None:
        running = _gauge(names.GROUP_JOB_RUNNING)
        for group in sorted(groups):
            running.add_metric([group], 1.0 if group in running_groups else 0.0)
        families.append(running)
    return families


# A job's sources of reference data read under groups of their own: `<group>-rules` (alert thresholds,
# sql/alerts/threshold_versions.sql) and `<group>-devices` (device metadata, sql/telemetry/device_versions.sql).
REFERENCE_GROUP_SUFFIXES = ("", "-rules", "-devices")


def running_job_groups(config: Config, get: Callable[[str], Any]) -> set[str]:
    """Consumer groups of the cluster's RUNNING jobs (a job `aggregate_v2` reads as `<prefix>-aggregate_v2`,
    and its reference sources as `<prefix>-aggregate_v2-rules` / `-devices`)."""
    jobs = get(f"{config.flink.rest_url}/jobs/overview")["jobs"]
    return {f"{config.job.group_prefix}-{job['name']}{suffix}"
            for job in jobs if job["state"] == "RUNNING" for suffix in REFERENCE_GROUP_SUFFIXES}


def postgres_families(conn: psycopg.Connection) -> list[Metric]:
    def scalar(query: str) -> Any:
        row = conn.execute(query).fetchone()  # fixed texts of this module, never user input
        return row[0] if row else None

    stages = _gauge(names.PIPELINE_RECORDS)
    for stage, query in STAGE_QUERIES.items():
        stages.add_metric([stage], float(scalar(query) or 0))
    reasons = _gauge(names.DEAD_LETTERS)
    for reason, count in conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY reason ORDER BY 1"):
        reasons.add_metric([reason], count)
    active = _gauge(names.ACTIVE_DEVICES)
    newest = scalar("SELECT extract(epoch FROM max(window_end)) FROM device_agg_1m")
    families: list[Metric] = [stages, reasons, active]
    # "The last 5 minutes" of event time, ending at the newest window: a replayed or delayed fleet
    # is judged by its own clock, and a silent one by the rule on kappa_last_window_end_timestamp_seconds.
    active.add_metric([], float(scalar(
        "SELECT count(DISTINCT device_id) FROM device_agg_1m "
        "WHERE window_end > (SELECT max(window_end) FROM device_agg_1m) - interval '5 minutes'") or 0))
    if newest is not None:
        last = _gauge(names.LAST_WINDOW_END)
        last.add_metric([], float(newest))
        families.append(last)
    return families


def lake_families(commits: Iterable[tuple[str, int | None]]) -> list[Metric]:
    """(table, its current snapshot's commit time in ms, None before the first) -> the commit-age gauge."""
    family = _gauge(names.LAKE_LAST_COMMIT)
    for table, committed_ms in commits:
        if committed_ms is not None:
            family.add_metric([table], committed_ms / 1000.0)
    return [family]


def lake_commits(config: Config) -> list[tuple[str, int | None]]:
    """Every table of the archive's namespace (live and replay versions) with its last commit time."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    from kappa import lake

    catalog = lake.catalog(config)
    try:
        identifiers = catalog.list_tables(config.lake.namespace)
    except NoSuchNamespaceError:  # no job has written the archive yet
        return []
    found = []
    for identifier in identifiers:
        try:
            snapshot = catalog.load_table(identifier).current_snapshot()
        except NoSuchTableError:  # dropped since the listing (`kappa replay drop`): not a failure of the source
            continue
        found.append((identifier[-1], snapshot.timestamp_ms if snapshot else None))
    return found


def bridge_families(status_dir: Path) -> list[Metric]:
    families = {m.name: _gauge(m) for m in (names.BRIDGE_UP, names.BRIDGE_BACKLOG, names.BRIDGE_OLDEST_UNACKED,
                                             names.BRIDGE_FORWARDED, names.BRIDGE_DEAD_LETTERED)}
    latency = HistogramMetricFamily(names.BRIDGE_ACK_LATENCY.name, names.BRIDGE_ACK_LATENCY.help,
                                    labels=list(names.BRIDGE_ACK_LATENCY.labels))
    for path in sorted(status_dir.glob("*.status.json")):
        client_id = path.name.removesuffix(".status.json")
        current = bridge_status.read(path)  # None when stale: the instance is not running
        families[names.BRIDGE_UP.name].add_metric([client_id], 1.0 if current and current.ready else 0.0)
        if current is None:
            continue
        families[names.BRIDGE_BACKLOG.name].add_metric([client_id], current.backlog)
        families[names.BRIDGE_OLDEST_UNACKED.name].add_metric([client_id], current.oldest_unacked_s)
        families[names.BRIDGE_FORWARDED.name].add_metric([client_id], current.forwarded)
        families[names.BRIDGE_DEAD_LETTERED.name].add_metric([client_id], current.dead_lettered)
        histogram(names.BRIDGE_ACK_LATENCY, [client_id], bridge_status.ACK_LATENCY_BOUNDS_S,
                  current.ack_latency_counts, current.ack_latency_sum_s, latency)
    return [*families.values(), latency]


class PipelineCollector(Collector):
    """Collects every source at each scrape; a failing source is counted, not fatal."""

    def __init__(self, sources: dict[str, Callable[[], list[Metric]]]) -> None:
        self._sources = sources
        self._failing: dict[str, str] = {}  # source -> last error, logged once until it recovers

    def collect(self) -> Iterator[Metric]:
        errors = _gauge(names.EXPORTER_ERRORS)
        for source, read in self._sources.items():
            try:
                families = read()
            except Exception as exc:  # noqa: BLE001 - any failure of a source is reported the same way
                text = " ".join(str(exc).split())
                if self._failing.get(source) != text:
                    log.warning("reading %s failed: %s", source, text)
                self._failing[source] = text
                errors.add_metric([source], 1.0)
                continue
            if self._failing.pop(source, None) is not None:
                log.info("reading %s works again", source)
            yield from families
            errors.add_metric([source], 0.0)
        yield errors


class Refreshed:
    """A slow source measured by a background thread every `interval_s`; a scrape serves the last
    successful measurement (so a scrape never waits on Kafka), or fails when none is younger than
    `max_age_s`."""

    def __init__(self, measure: Callable[[], list[Metric]], interval_s: float, max_age_s: float) -> None:
        self._measure, self._interval_s, self._max_age_s = measure, interval_s, max_age_s
        self._lock = threading.Lock()
        self._families: list[Metric] = []
        self._at = 0.0
        self._error = "not measured yet"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kappa-lag", daemon=True)

    def start(self) -> Refreshed:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def refresh(self) -> None:
        try:
            families = self._measure()
        except Exception as exc:  # noqa: BLE001 - reported at the next scrape
            with self._lock:
                if self._error != str(exc):
                    log.warning("measuring lag failed: %s", " ".join(str(exc).split()) or type(exc).__name__)
                self._error = str(exc) or type(exc).__name__
            return
        with self._lock:
            self._families, self._at, self._error = families, time.monotonic(), ""

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.refresh()
            self._stop.wait(max(self._interval_s - (time.monotonic() - started), 0.5))

    def latest(self) -> list[Metric]:
        with self._lock:
            if self._at and time.monotonic() - self._at <= self._max_age_s:
                return list(self._families)
            raise RuntimeError(f"no lag measurement in the last {self._max_age_s:.0f} s: {self._error}")


def sources_for(config: Config, lag_reader: LagReader) -> dict[str, Callable[[], list[Metric]]]:
    from kappa.stack.postgres import connect
    from kappa.status import http_json

    def lag() -> list[Metric]:
        lags = lag_reader.measure()
        try:
            running: set[str] | None = running_job_groups(config, http_json)
        except Exception as exc:  # noqa: BLE001 - without Flink, lag is still worth reporting
            log.info("Flink's REST API not readable (%s): no kappa_consumer_group_job_running", exc)
            running = None
        return lag_families(lags, running)

    alert_latency = AlertLatency()

    def from_postgres() -> list[Metric]:
        with connect(config, role="monitor") as conn:  # read-only on the counted tables (kappa/pg_security.py)
            return [*postgres_families(conn), alert_latency.family(conn)]

    interval = float(config.metrics.scrape_interval_s)
    refreshed = Refreshed(lag, interval_s=interval, max_age_s=max(60.0, 6 * interval)).start()
    # the archive's snapshots are read from object storage: every 30 s at most, off the scrape's path
    lake_refreshed = Refreshed(lambda: lake_families(lake_commits(config)), interval_s=max(30.0, interval),
                               max_age_s=180.0).start()
    return {
        "kafka": refreshed.latest,
        "lake": lake_refreshed.latest,
        "postgres": from_postgres,
        "bridge": lambda: bridge_families(bridge_status.status_file(config).parent),
    }
