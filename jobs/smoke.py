"""Smoke pipeline: JSON readings from Kafka -> 1-minute event-time windows -> PostgreSQL upserts.

It proves the stack end to end (Kafka, the Flink cluster, JDBC into PostgreSQL) with nothing but SQL.
"""

from __future__ import annotations

from pyflink.table import StatementSet

from kappa.flinkenv import JobContext
from kappa.outputs import JobOutputs, Table

OUTPUTS = JobOutputs(tables=(Table("smoke_counts", ("device_id", "window_start"), range_column="window_start"),))


def build(ctx: JobContext) -> StatementSet:
    ctx.execute_file("smoke/source.sql")  # source + watermark
    ctx.execute_file("smoke/sink.sql")  # sink
    return ctx.add_inserts(ctx.t_env.create_statement_set(), "smoke/windows.sql")  # logic


if __name__ == "__main__":
    from kappa.jobrunner import main_for

    main_for(build)
