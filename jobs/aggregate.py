"""The aggregation job: Avro telemetry from Kafka -> decode (dead letters) -> event-time watermark ->
late split -> de-duplication -> device metadata as of each reading's event time (temporal join on the
device metadata topic) -> per-device 1-minute and per-site 5-minute windows -> PostgreSQL upserts and
an exactly-once Avro topic; decoded telemetry, the 1-minute windows and the dead letters' metadata
also go to the Iceberg archive (kappa.lake, sql/archive).

Every record read ends in exactly one place: a window (aggregated), the dead letters (with a reason),
the late readings, or the duplicate counts.
"""

from __future__ import annotations

from pyflink.table import StatementSet

from kappa import lake, reference_log
from kappa.flinkenv import JobContext
from kappa.lateness import allow_late_updates
from kappa.outputs import JobOutputs, ReaderView, Table, Topic
from kappa.pipeline import KAFKA_TELEMETRY, Pipeline, Stage, Step

AGGREGATES_TOPIC = Topic("${aggregates_topic}${output_suffix}")

# What this job writes (aggregates/sinks.sql): replays, the demo and the tests read this declaration.
OUTPUTS = JobOutputs(
    tables=(
        Table("device_agg_1m", ("device_id", "window_start"), range_column="window_start"),
        Table("site_agg_5m", ("site_id", "window_start"), range_column="window_start"),
        Table("duplicates_1m", ("device_id", "window_start"), range_column="window_start"),
        Table("late_readings", ("device_id", "seq", "kafka_partition", "kafka_offset"), compared=False),
        Table("dead_letters", ("topic", "kafka_partition", "kafka_offset"), compared=False),
    ),
    topics=(AGGREGATES_TOPIC, Topic("${dead_letter_topic}${output_suffix}"),
            Topic("${telemetry_topic}-late${output_suffix}")),
    views=(
        ReaderView("v_device_1m", "device_agg_1m", """
  device_id, site_id, device_type, window_start, window_end, reading_count,
  temp_min, temp_max, temp_avg, temp_first, temp_last, temp_stddev,
  humidity_min, humidity_max, humidity_avg, humidity_first, humidity_last, humidity_stddev,
  vibration_min, vibration_max, vibration_avg, vibration_first, vibration_last, vibration_stddev,
  battery_min, battery_max, battery_avg, battery_first, battery_last, battery_stddev,
  first_event_time, last_event_time, updated_at, device_model"""),  # as migration 0012 (appended)
        ReaderView("v_site_5m", "site_agg_5m", """
  site_id, window_start, window_end, device_count, reading_count,
  temp_avg, temp_min, temp_max, humidity_avg, vibration_max, battery_min, updated_at"""),
    ),
    lake=(lake.TELEMETRY, lake.DEVICE_AGG_1M, lake.DEAD_LETTERS),
)


def _ensure_devices_topic(ctx: JobContext, _: StatementSet) -> None:
    """The device metadata topic, created (empty, every version kept) if this stack has none yet: a Kafka
    source on a missing topic fails the job instead of reading no version."""
    reference_log.ensure_topic(ctx.config, ctx.params.values["devices_topic"])


def _ensure_lake_tables(ctx: JobContext, _: StatementSet) -> None:
    lake.ensure_tables(ctx.config, OUTPUTS.lake, ctx.options.lake_tables_suffix)  # hidden partitions: Iceberg's API


# Source: the Kafka telemetry (decoded; dead letters split off). Logic, resolved from the SQL headers
# back from what the sinks read: late split per partition (telemetry/lateness.sql), de-duplication,
# device metadata as of each reading's event time, the windows. Sinks: PostgreSQL and Kafka, and the
# Iceberg archive unless options.lake is off.
PIPELINE = Pipeline(
    name="aggregate",
    source=KAFKA_TELEMETRY,
    sinks=(Stage("postgres and kafka", ("aggregates/sinks.sql", "aggregates/inserts.sql")),
           Stage("iceberg archive", (Step("iceberg tables", _ensure_lake_tables), "archive/catalog.sql",
                                     "archive/inserts.sql"), enabled=lambda options: options.lake)),
    prepare=(lambda ctx: allow_late_updates(ctx.t_env, ctx.config),),  # windows with allowed lateness
    steps=(Step("device metadata versions", _ensure_devices_topic, sql="telemetry/device_versions.sql"),),
    prefer=("telemetry/lateness.sql",),  # telemetry_late: the per-partition rule, not ontime.sql's
)


def build(ctx: JobContext) -> StatementSet:
    return PIPELINE.build(ctx)


if __name__ == "__main__":
    from kappa.jobrunner import main_for

    main_for(build)
