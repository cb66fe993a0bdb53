"""The project's Prometheus exporter (`python -m kappa.metrics`): what no existing exporter knows.

Each scrape reads its sources afresh: consumer-group lag from Kafka (kappa.metrics.lag), the jobs'
outputs in PostgreSQL (records per stage, dead letters by reason, fleet activity, archive commits),
and the MQTT bridge's status files. A source that fails is reported as `kappa_exporter_errors{source}`
= 1 and its metrics are left out of that scrape, never replaced by zeros that would look healthy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client.core import GaugeMetricFamily, Metric
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


def lag_families(lags: Iterable[PartitionLag]) -> list[Metric]:
    records, seconds = _gauge(names.CONSUMER_LAG_RECORDS), _gauge(names.CONSUMER_LAG_SECONDS)
    for lag in lags:
        labels = [lag.group, lag.topic, str(lag.partition)]
        records.add_metric(labels, lag.records)
        seconds.add_metric(labels, lag.event_lag_s)
    return [records, seconds]


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
    committed = scalar("SELECT extract(epoch FROM max(created_at)) FROM archive_files")
    if committed is not None:
        archive = _gauge(names.ARCHIVE_LAST_COMMIT)
        archive.add_metric([], float(committed))
        families.append(archive)
    return families


def bridge_families(status_dir: Path) -> list[Metric]:
    families = {m.name: _gauge(m) for m in (names.BRIDGE_UP, names.BRIDGE_BACKLOG, names.BRIDGE_OLDEST_UNACKED,
                                             names.BRIDGE_FORWARDED, names.BRIDGE_DEAD_LETTERED)}
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
    return list(families.values())


class PipelineCollector(Collector):
    """Collects every source at each scrape; a failing source is counted, not fatal."""

    def __init__(self, sources: dict[str, Callable[[], list[Metric]]]) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        errors = _gauge(names.EXPORTER_ERRORS)
        for source, read in self._sources.items():
            try:
                yield from read()
                errors.add_metric([source], 0.0)
            except Exception as exc:  # noqa: BLE001 - any failure of a source is reported the same way
                log.warning("reading %s failed: %s", source, exc)
                errors.add_metric([source], 1.0)
        yield errors


def sources_for(config: Config, lag_reader: LagReader) -> dict[str, Callable[[], list[Metric]]]:
    from kappa.stack.postgres import connect

    def from_postgres() -> list[Metric]:
        with connect(config) as conn:
            return postgres_families(conn)

    return {
        "kafka": lambda: lag_families(lag_reader.measure()),
        "postgres": from_postgres,
        "bridge": lambda: bridge_families(bridge_status.status_file(config).parent),
    }
