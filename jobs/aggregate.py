"""The aggregation job: Avro telemetry from Kafka -> decode (dead letters) -> event-time watermark ->
late split -> de-duplication -> per-device 1-minute and per-site 5-minute windows -> PostgreSQL
upserts and an exactly-once Avro topic.

Every record read ends in exactly one place: a window (aggregated), the dead letters (with a reason),
the late readings, or the duplicate counts.
"""

from __future__ import annotations

from pyflink.table import StatementSet

from kappa.flinkenv import JobContext
from kappa.lateness import allow_late_updates


def build(ctx: JobContext) -> StatementSet:
    allow_late_updates(ctx.t_env, ctx.config)  # windows with allowed lateness
    ctx.execute_file("telemetry/functions.sql")
    ctx.execute_file("telemetry/source.sql")  # source, watermark
    ctx.execute_file("telemetry/decode.sql")  # decode, dead letters
    ctx.execute_file("telemetry/lateness.sql")  # late split, decided per partition in offset order
    ctx.execute_file("telemetry/dedup.sql")  # first copy of each reading; later copies are duplicates
    ctx.execute_file("aggregates/windows.sql")  # logic
    ctx.execute_file("aggregates/sinks.sql")  # sinks
    return ctx.add_inserts(ctx.t_env.create_statement_set(), "aggregates/inserts.sql")


if __name__ == "__main__":
    from kappa.jobrunner import main_for

    main_for(build)
