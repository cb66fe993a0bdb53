"""Observability on the real stack: Prometheus scrapes Flink (through the Pushgateway), PostgreSQL's
exporter and the project's exporter; consumer lag is measured in records and in seconds of event time
(of the payload, not of the Kafka record); dead letters by reason come from the jobs' table."""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from confluent_kafka import TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from kappa import jobrunner, kafka_clients, lake, outputs, s3_security, smoke, waiting
from kappa.cli import main
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.registry import READ, client_conf
from kappa.replay.offsets import capture_range, committed_offsets
from kappa.simulate import simulate
from kappa.stack.monitoring import scrape_targets
from kappa.stack.postgres import connect
from tests.integration.aggregate_support import faulty_spec
from tests.integration.bridge_support import reading
from tests.integration.scratch import Names, fresh_topic, run_bounded

pytestmark = pytest.mark.integration


def _eventually(check: Callable[[], Any], what: str, timeout_s: float = 90.0) -> Any:
    last: Any = None

    def seen() -> Any:
        nonlocal last
        last = check()
        return last

    return waiting.wait_until(seen, timeout_s=timeout_s, interval_s=1.0, what=what, on_timeout=lambda _: AssertionError(
        f"{what}: not seen within {timeout_s:.0f} s (last: {last!r})"))


def _query(config: Config, promql: str) -> list[dict[str, Any]]:
    response = requests.get(f"{config.metrics.prometheus_url}/api/v1/query", params={"query": promql}, timeout=5)
    response.raise_for_status()
    return list(response.json()["data"]["result"])


def _exporter(config: Config) -> str:
    return requests.get(f"http://{config.metrics.host}:{config.metrics.exporter_port}/metrics", timeout=30).text


def test_prometheus_scrapes_every_target_and_flink_pushes_its_metrics(migrated: Config) -> None:
    config = migrated

    def healthy() -> set[str]:
        targets = requests.get(f"{config.metrics.prometheus_url}/api/v1/targets", timeout=5).json()
        return {t["labels"]["job"] for t in targets["data"]["activeTargets"] if t["health"] == "up"}

    _eventually(lambda: healthy() == set(scrape_targets(config)), "every scrape target up")
    taskmanagers = _eventually(lambda: _query(config, "flink_jobmanager_numRegisteredTaskManagers >= 1"),
                               "Flink's JobManager metrics in Prometheus")
    assert taskmanagers[0]["metric"]["profile"] == config.profile
    _eventually(lambda: _query(config, "pg_up == 1"), "PostgreSQL exporter connected")
    rules = requests.get(f"{config.metrics.prometheus_url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert {rule["name"] for group in rules for rule in group["rules"]} >= {"KappaLagGrowing", "KappaBridgeDown"}


def test_lag_in_records_and_in_seconds_of_event_time(migrated: Config, capsys: pytest.CaptureFixture[str]) -> None:
    """Ten readings taken an hour ago, written now (record timestamps = now): a group that committed
    four of them is six records and about an hour of event time behind."""
    config = migrated
    topic = fresh_topic(config, Names.new("lag").topic_of("metrics"), partitions=1)
    registry = SchemaRegistryClient(client_conf(config, READ))
    serializer = AvroSerializer(registry, None, conf={"auto.register.schemas": False, "use.latest.version": True,
                                                      "subject.name.strategy": lambda *_: "telemetry-value"})
    hour_ago_ms = int(time.time() * 1000) - 3_600_000
    producer = kafka_clients.producer(config)
    for seq in range(10):
        value = serializer(reading("metrics-dev", seq, base_ms=hour_ago_ms),
                           SerializationContext(topic, MessageField.VALUE))
        producer.produce(topic, value=value, key=b"metrics-dev")
    assert producer.flush(30) == 0
    group = f"{config.job.group_prefix}-metricstest-{uuid.uuid4().hex[:6]}"
    consumer = kafka_clients.consumer(config, group, **{"enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
    consumer.close()

    labels = f'group="{group}",partition="0",topic="{topic}"'

    def scraped() -> str | None:
        text = _exporter(config)
        return text if f"kappa_consumer_lag_records{{{labels}}}" in text else None

    text = _eventually(scraped, "the test group's lag on the exporter")
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line.startswith("kappa_consumer_lag") and group in line}
    assert values[f"kappa_consumer_lag_records{{{labels}}}"] == 6.0
    lag_s = values[f"kappa_consumer_lag_seconds{{{labels}}}"]
    # Offset 4 holds the reading taken at hour_ago + 4 s: about 3,596 s behind now. The bounds only
    # separate event time (an hour) from record time (seconds); they measure no speed.
    assert 3_000 < lag_s < 3_600 + 900, lag_s
    in_prometheus = _eventually(lambda: _query(config, f'kappa_consumer_lag_records{{group="{group}"}}'),
                                "the lag scraped by Prometheus")
    assert float(in_prometheus[0]["value"][1]) == 6.0

    # No job reads this group: `kappa status` shows it, exits 1 and names the cause...
    _eventually(lambda: _query(config, f'kappa_consumer_group_job_running{{group="{group}"}} == 0'),
                "the group known to have no running job")
    capsys.readouterr()
    assert main(["--profile", config.profile, "status", "--no-colour"]) == 1
    screen = capsys.readouterr().out
    for title in ("== services", "== jobs", "== lag", "== last 5 minutes"):
        assert title in screen, screen
    assert "cannot read" not in screen, screen
    # its event-time lag in minutes: about an hour, plus however long this test has taken so far (the same
    # bounds as the exporter's seconds above: they separate an hour from seconds and measure no speed)
    row = re.search(rf"{group}\s+6\s+(\d+)m\s+no", screen)
    assert row and 3_000 < int(row.group(1)) * 60 < 3_600 + 900, screen
    assert re.search(r"prometheus\s+up", screen), screen
    cause = f"{group} is 6 records behind and no running job reads it"
    assert "UNHEALTHY:" in screen and cause in screen, screen
    assert main(["--profile", config.profile, "status", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["healthy"] is False and cause in document["problems"]
    assert [group, "6"] == document["sections"]["lag"]["rows"][
        [row[0] for row in document["sections"]["lag"]["rows"]].index(group)][:2]
    # ... and the health rule matches it in the live Prometheus: the alert is pending (it fires after its
    # `for: 1m`, which promtool's rule tests check: deploy/prometheus/tests/pipeline_test.yml)
    active = _eventually(lambda: _query(config, f'ALERTS{{alertname="KappaLagWithoutJob",group="{group}",'
                                                'alertstate=~"pending|firing"}'), "KappaLagWithoutJob pending", 240)
    assert active[0]["metric"]["severity"] == "critical"


def _bucket(text: str, le: str) -> float:
    prefix = f'kappa_event_to_alert_seconds_bucket{{le="{le}"}}'
    line = next(line for line in text.splitlines() if line.startswith(prefix))
    return float(line.split(" ")[1])


def test_dead_letters_by_reason_and_event_to_alert_latency_come_from_the_jobs_tables(migrated: Config) -> None:
    config = migrated
    topic = f"metrics-dlq-{uuid.uuid4().hex[:8]}"
    alert_id = f"metrics-test-{uuid.uuid4().hex[:8]}"
    before = _exporter(config)
    with connect(config) as conn:
        # An alert whose pattern completed (event time) 7 s before it was stored: the 7.5 s bucket.
        conn.execute("INSERT INTO alerts (alert_id, device_id, site_id, alert_type, severity, first_event_time, "
                     "last_event_time, rule_version, detected_at) VALUES (%s, 'metrics-dev', 'site-a', 'OVERHEATING', "
                     "'CRITICAL', now() AT TIME ZONE 'UTC' - interval '9 s', "
                     "now() AT TIME ZONE 'UTC' - interval '7 s', 'test', now() AT TIME ZONE 'UTC' - interval '7 s')",
                     (alert_id,))
        for offset in range(3):
            conn.execute("INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, reason, error) "
                         "VALUES (%s, 0, %s, 'METRICS_TEST', 'inserted by test_metrics')", (topic, offset))
        conn.commit()
    try:
        line = 'kappa_dead_letters{reason="METRICS_TEST"} 3.0'
        _eventually(lambda: line in _exporter(config), "dead letters by reason on the exporter")
        after = _exporter(config)
        assert 'kappa_exporter_errors{source="postgres"} 0.0' in after
        assert _bucket(after, "7.5") - _bucket(before, "7.5") == 1
        assert _bucket(after, "5.0") == _bucket(before, "5.0")
    finally:
        with connect(config) as conn:
            conn.execute("DELETE FROM dead_letters WHERE topic = %s", (topic,))
            conn.execute("DELETE FROM alerts WHERE alert_id = %s", (alert_id,))
            conn.commit()


DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "kappa-pipeline.json"
_METRIC = re.compile(r"\b(?:kappa|flink|pg)_[A-Za-z0-9_]+|\bkappa:[A-Za-z0-9_:]+")


def dashboard_metrics() -> set[str]:
    """Every metric (or recording rule) name the Grafana dashboard queries."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {name for panel in panels for target in panel["targets"] for name in _METRIC.findall(target["expr"])}


def test_every_metric_of_the_dashboard_exists_in_a_live_scrape(migrated: Config) -> None:
    """With a job running on the cluster, a dead letter and an Iceberg commit, Prometheus has every
    metric the dashboard (deploy/grafana) queries, so no panel is empty by a typo or a renamed metric."""
    config = migrated
    wanted = dashboard_metrics()
    assert len(wanted) >= 15 and "flink_jobmanager_job_numRestarts" in wanted
    topic, table = f"smoke-metrics-{uuid.uuid4().hex[:6]}", "smoke_counts_metrics"
    with connect(config) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (LIKE smoke_counts INCLUDING ALL)")
        conn.execute("INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, reason, error) "
                     "VALUES (%s, 0, 0, 'METRICS_TEST', 'inserted by test_metrics')", (topic,))
        conn.commit()
    smoke.produce(config, smoke.readings(300, seed=5), topic)
    with _committed_lake_table(config):  # kappa_lake_last_commit_timestamp_seconds
        job_id = jobrunner.submit(config, "smoke", JobOptions(output_suffix="_metrics", extra={"smoke_topic": topic}))
        try:
            def missing() -> set[str]:
                names = requests.get(f"{config.metrics.prometheus_url}/api/v1/label/__name__/values", timeout=5)
                present = set(names.json()["data"])
                return {name for name in wanted if name not in present and not _query(config, name)}

            gone: set[str] = set()

            def all_present() -> bool:
                gone.clear()
                gone.update(missing())
                return not gone

            try:
                _eventually(all_present, "every dashboard metric in Prometheus", 240)
            except AssertionError as exc:
                raise AssertionError(f"missing from Prometheus: {sorted(gone)}") from exc
        finally:
            jobrunner.cancel(config, job_id)
            with connect(config) as conn:
                conn.execute("DELETE FROM dead_letters WHERE topic = %s", (topic,))
                conn.commit()


def test_pipeline_counts_equal_the_accounting_line(migrated: Config) -> None:
    """A bounded run of the aggregation job into its live outputs (faulty data: late, duplicate,
    malformed): Prometheus's per-stage counts are exactly the job's accounting line, and their sum is
    every record of the topic. Afterwards the job's group has committed every partition's end, and the
    exporter (then Prometheus) reports its lag as 0 on each partition: the runner commits the ends it
    pinned (kappa.bounded), as Flink's source left them behind (20/60, 6/60, 30/30 measured here)."""
    config = migrated
    topic = fresh_topic(config, Names.new("metrics").topic)
    manifest = simulate(config, faulty_spec(topic, seed=23, devices=5, readings=30), produce=True, log=lambda _: None)
    with connect(config) as conn:  # the live outputs (no other test writes them), as the demo empties them
        conn.execute("TRUNCATE " + ", ".join(outputs.job_outputs("aggregate").table_names()))
    run_bounded(config, "aggregate", topic, "")  # "": the live outputs
    with connect(config) as conn:
        books = outputs.accounting(conn, "")
    assert books.total == manifest.data["counts"]["total"]
    assert books.dead_letters and books.duplicates and books.aggregated

    want = {"aggregated": books.aggregated, "dead_lettered": books.dead_letters, "late": books.late,
            "duplicate": books.duplicates}

    def stages() -> dict[str, int]:
        return {s["metric"]["stage"]: int(float(s["value"][1])) for s in _query(config, "kappa_pipeline_records")}

    seen = _eventually(lambda: (found := stages()) == want and found, f"kappa_pipeline_records = {want}")
    assert sum(seen.values()) == manifest.data["counts"]["total"]

    group = f"{config.job.group_prefix}-aggregate"
    ends = capture_range(config, topic).end
    assert sum(ends.values()) == manifest.data["counts"]["total"]  # no transactions: no markers
    assert committed_offsets(config, group, topic, sorted(ends)) == ends

    def lag() -> dict[str, float]:
        return {s["metric"]["partition"]: float(s["value"][1])
                for s in _query(config, f'kappa_consumer_lag_records{{group="{group}",topic="{topic}"}}')}

    partitions_at_zero = {str(p): 0.0 for p in ends}
    _eventually(lambda: lag() == partitions_at_zero, f"lag 0 on every partition of {topic} in Prometheus")



@contextlib.contextmanager
def _committed_lake_table(config: Config) -> Iterator[tuple[str, Any]]:
    """A small table of this test in the Iceberg archive's namespace with one commit (one Parquet file
    added by pyiceberg); yields its name and snapshot, and purges it. (pyiceberg 0.12 cannot write data
    files with the pyarrow PyFlink pins: the file is written by pyarrow itself.)"""
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = f"metrics_test_{uuid.uuid4().hex[:6]}"
    catalog = lake.catalog(config, s3_security.WRITER)
    catalog.create_namespace_if_not_exists(config.lake.namespace)
    rows = pa.Table.from_pylist([{"reason": "METRICS_TEST", "at": datetime(2026, 3, 2, 8, 0)}])
    table = catalog.create_table(f"{config.lake.namespace}.{name}", schema=rows.schema)
    try:
        buffer = pa.BufferOutputStream()
        pq.write_table(rows, buffer)
        path = f"{table.location()}/data/metrics-test.parquet"
        with table.io.new_output(path).create() as out:
            out.write(buffer.getvalue().to_pybytes())
        table.add_files([path])
        snapshot = table.refresh().current_snapshot()
        assert snapshot is not None
        yield name, snapshot
    finally:
        catalog.purge_table(f"{config.lake.namespace}.{name}")


def test_each_archive_tables_last_commit_is_on_the_exporter(migrated: Config) -> None:
    """A commit to a table of the Iceberg archive's namespace shows as that table's last commit time
    on the exporter."""
    config = migrated
    with _committed_lake_table(config) as (name, snapshot):
        line = f'kappa_lake_last_commit_timestamp_seconds{{table="{name}"}}'

        def scraped() -> str | None:
            text = _exporter(config)
            return text if line in text else None

        text = _eventually(scraped, "the table's commit time", 120)
        value = next(float(s.rsplit(" ", 1)[1]) for s in text.splitlines() if s.startswith(line))
        assert value == snapshot.timestamp_ms / 1000
        assert 'kappa_exporter_errors{source="lake"} 0.0' in text
