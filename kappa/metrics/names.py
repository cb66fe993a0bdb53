"""Every metric the project itself exports, named and explained in one place (docs/metrics.md
lists these with Flink's and the exporters' metrics the health rules use)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # "gauge" (current values read from Kafka, PostgreSQL, files) or "histogram"
    help: str
    labels: tuple[str, ...] = ()


CONSUMER_LAG_RECORDS = Metric(
    "kappa_consumer_lag_records", "gauge",
    "Records a job's consumer group has not committed yet (end offset - committed offset).",
    ("group", "topic", "partition"))
CONSUMER_LAG_SECONDS = Metric(
    "kappa_consumer_lag_seconds", "gauge",
    "Now minus the event time of the first record a job has not committed (0 when caught up).",
    ("group", "topic", "partition"))
GROUP_JOB_RUNNING = Metric(
    "kappa_consumer_group_job_running", "gauge",
    "1 when a RUNNING job of the Flink cluster reads for this consumer group (job <name> <-> group "
    "<group_prefix>-<name>), else 0: lag with no job means nothing is processing the data.", ("group",))
PIPELINE_RECORDS = Metric(
    "kappa_pipeline_records", "gauge",
    "Records in the live outputs of the aggregation job, by stage: aggregated, dead_lettered, late, duplicate.",
    ("stage",))
DEAD_LETTERS = Metric(
    "kappa_dead_letters", "gauge", "Dead letters of the jobs in PostgreSQL, by reason.", ("reason",))
ACTIVE_DEVICES = Metric(
    "kappa_active_devices", "gauge",
    "Devices with at least one aggregated reading whose window ended in the last 5 minutes (event time).")
LAST_WINDOW_END = Metric(
    "kappa_last_window_end_timestamp_seconds", "gauge",
    "End of the newest 1-minute device window written (event time, Unix seconds).")
LAKE_LAST_COMMIT = Metric(
    "kappa_lake_last_commit_timestamp_seconds", "gauge",
    "When each Iceberg archive table last committed a snapshot (Unix seconds); absent before the first.",
    ("table",))
BRIDGE_UP = Metric(
    "kappa_bridge_up", "gauge",
    "1 when the MQTT bridge instance's status is fresh and it is connected to MQTT and Kafka.", ("client_id",))
BRIDGE_BACKLOG = Metric(
    "kappa_bridge_backlog_messages", "gauge",
    "MQTT messages the bridge received and Kafka has not acknowledged yet.", ("client_id",))
BRIDGE_OLDEST_UNACKED = Metric(
    "kappa_bridge_oldest_unacked_seconds", "gauge",
    "Age of the oldest message waiting for Kafka's acknowledgement.", ("client_id",))
BRIDGE_FORWARDED = Metric(
    "kappa_bridge_forwarded_records", "gauge",
    "Telemetry records the bridge instance forwarded since it started (confirmed by Kafka).", ("client_id",))
BRIDGE_DEAD_LETTERED = Metric(
    "kappa_bridge_dead_lettered_records", "gauge",
    "Payloads the bridge instance dead-lettered since it started.", ("client_id",))
BRIDGE_ACK_LATENCY = Metric(
    "kappa_bridge_ack_latency_seconds", "histogram",
    "From a message's arrival at the bridge to Kafka's acknowledgement of its record (since the instance started).",
    ("client_id",))
ALERT_LATENCY = Metric(
    "kappa_event_to_alert_seconds", "histogram",
    "From the event time that completed an alert's pattern (detected_at) to the alert row landing in PostgreSQL "
    "(updated_at); alerts stored since the exporter started.")
EXPORTER_ERRORS = Metric(
    "kappa_exporter_errors", "gauge",
    "1 when the last read of a source failed (the metrics from it are missing in that scrape).", ("source",))

ALL = (CONSUMER_LAG_RECORDS, CONSUMER_LAG_SECONDS, GROUP_JOB_RUNNING, PIPELINE_RECORDS, DEAD_LETTERS, ACTIVE_DEVICES,
       LAST_WINDOW_END, LAKE_LAST_COMMIT, BRIDGE_UP, BRIDGE_BACKLOG, BRIDGE_OLDEST_UNACKED,
       BRIDGE_FORWARDED, BRIDGE_DEAD_LETTERED, BRIDGE_ACK_LATENCY, ALERT_LATENCY, EXPORTER_ERRORS)
