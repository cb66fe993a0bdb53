"""The alerting job: Avro telemetry from Kafka -> decode -> event-time watermark -> late split ->
thresholds as of each reading's event time (temporal join on the rules topic) -> four
MATCH_RECOGNIZE patterns per device and an event-time silence detector -> cool-down per device and
type -> deterministic alert ids -> PostgreSQL upserts and an exactly-once Avro topic.

The patterns, one SQL file each in sql/alerts/: overheating, temperature_trend,
vibration_then_heat, low_battery. DEVICE_SILENT is the absence of readings, which MATCH_RECOGNIZE
cannot match: a keyed process function with event-time timers (udfs/device_silence.py) decides it
between two SQL files. Dead letters and late readings are the aggregation job's business: this job
reads the same views and ignores them.
"""

from __future__ import annotations

from pyflink.table import StatementSet

from kappa.flinkenv import JobContext
from kappa.outputs import JobOutputs, ReaderView, Table, Topic
from udfs.alert_cooldown import suppress_repeats
from udfs.device_silence import detect_silences

PATTERNS = ("overheating", "temperature_trend", "vibration_then_heat", "low_battery")

# What this job writes (alerts/sinks.sql): replays, the demo and the tests read this declaration.
# Alerts are compared over the range of first event times both versions cover.
OUTPUTS = JobOutputs(
    tables=(Table("alerts", ("alert_id",), range_column="first_event_time"),),
    topics=(Topic("${alerts_topic}${output_suffix}"),),
    views=(ReaderView("v_alerts", "alerts", """
  alert_id, device_id, site_id, alert_type, severity, first_event_time, last_event_time,
  trigger_values_json AS trigger_values, rule_version, detected_at, updated_at"""),),
)


def build(ctx: JobContext) -> StatementSet:
    ctx.execute_file("telemetry/functions.sql")
    ctx.execute_file("telemetry/source.sql")  # source, watermark
    ctx.execute_file("telemetry/decode.sql")  # decode (dead letters are not written here)
    ctx.execute_file("telemetry/ontime.sql")  # late split: patterns see on-time readings only
    ctx.execute_file("alerts/threshold_versions.sql")  # the rules topic as a versioned table
    ctx.execute_file("alerts/thresholds.sql")  # each reading with its thresholds as of its event time
    for pattern in PATTERNS:
        ctx.execute_file(f"alerts/{pattern}.sql")  # MATCH_RECOGNIZE per device
    ctx.execute_file("alerts/device_silent_input.sql")  # DEVICE_SILENT: event-time timers per device
    ctx.t_env.create_temporary_view("device_silences", detect_silences(ctx.t_env, "device_silence_input"))
    ctx.execute_file("alerts/device_silent.sql")
    ctx.execute_file("alerts/alerts.sql")  # union of all matches
    ctx.t_env.create_temporary_view("alerts_raised", suppress_repeats(ctx.t_env, "alerts_matched"))  # cool-down
    ctx.execute_file("alerts/raised.sql")  # deterministic alert id
    ctx.execute_file("alerts/sinks.sql")
    return ctx.add_inserts(ctx.t_env.create_statement_set(), "alerts/inserts.sql")


if __name__ == "__main__":
    from kappa.jobrunner import main_for

    main_for(build)
