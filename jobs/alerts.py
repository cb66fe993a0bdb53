"""The alerting job: Avro telemetry from Kafka -> decode -> event-time watermark -> late split ->
thresholds as of each reading's event time (temporal join on the rules topic) -> four
MATCH_RECOGNIZE patterns per device and an event-time silence detector -> cool-down per device and
type -> deterministic alert ids -> PostgreSQL upserts and an exactly-once Avro topic.

The patterns, one SQL file each in sql/alerts/: overheating, temperature_trend,
vibration_then_heat, low_battery. DEVICE_SILENT is the absence of readings, which MATCH_RECOGNIZE
cannot match: a keyed process function with event-time timers (Java, wired by udfs/device_silence.py)
decides it between two SQL files; the cool-down is a Java keyed function too (udfs/alert_cooldown.py).
Dead letters and late readings are the aggregation job's business: this job reads the same views and
ignores them.
"""

from __future__ import annotations

from pyflink.table import StatementSet

from kappa.flinkenv import JobContext
from kappa.outputs import JobOutputs, ReaderView, Table, Topic
from kappa.pipeline import KAFKA_TELEMETRY, Pipeline, Stage, Step
from udfs.alert_cooldown import suppress_repeats
from udfs.device_silence import detect_silences

# What this job writes (alerts/sinks.sql): replays, the demo and the tests read this declaration.
# Alerts are compared over the range of first event times both versions cover.
OUTPUTS = JobOutputs(
    tables=(Table("alerts", ("alert_id",), range_column="first_event_time"),),
    topics=(Topic("${alerts_topic}${output_suffix}"),),
    views=(ReaderView("v_alerts", "alerts", """
  alert_id, device_id, site_id, alert_type, severity, first_event_time, last_event_time,
  trigger_values_json AS trigger_values, rule_version, detected_at, updated_at"""),),
)


def _silences(ctx: JobContext, _: StatementSet) -> None:
    ctx.t_env.create_temporary_view("device_silences", detect_silences(ctx.t_env, "device_silence_input"))


def _cooldown(ctx: JobContext, _: StatementSet) -> None:
    ctx.t_env.create_temporary_view("alerts_raised", suppress_repeats(ctx.t_env, "alerts_matched"))


# Source: the Kafka telemetry (decoded; dead letters are not written here). Logic, resolved from the SQL
# headers back from what the sinks read: on-time readings (telemetry/ontime.sql), thresholds as of each
# reading's event time, the four MATCH_RECOGNIZE patterns (in the order alerts/alerts.sql reads them),
# DEVICE_SILENT (event-time timers per device), the cool-down and the deterministic alert id.
PIPELINE = Pipeline(
    name="alerts",
    source=KAFKA_TELEMETRY,
    sinks=(Stage("postgres and kafka", ("alerts/sinks.sql", "alerts/inserts.sql")),),
    steps=(Step("silence detector", _silences, reads=("device_silence_input",), defines=("device_silences",)),
           Step("cool-down", _cooldown, reads=("alerts_matched",), defines=("alerts_raised",))),
)


def build(ctx: JobContext) -> StatementSet:
    return PIPELINE.build(ctx)


if __name__ == "__main__":
    from kappa.jobrunner import main_for

    main_for(build)
