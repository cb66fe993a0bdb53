"""Smoke pipeline: JSON readings from Kafka -> 1-minute event-time windows -> PostgreSQL upserts.

It proves the stack end to end (Kafka, the Flink cluster, JDBC into PostgreSQL) with nothing but SQL.
"""

from __future__ import annotations

from pyflink.table import StatementSet

from kappa.flinkenv import JobContext
from kappa.outputs import JobOutputs, Table
from kappa.pipeline import Pipeline, Stage

OUTPUTS = JobOutputs(tables=(Table("smoke_counts", ("device_id", "window_start"), range_column="window_start"),))


# Source: JSON readings; no logic of its own between them: smoke/windows.sql is the sink's INSERT.
PIPELINE = Pipeline(name="smoke", source=Stage("kafka json readings", ("smoke/source.sql",)),
                    sinks=(Stage("postgres", ("smoke/sink.sql", "smoke/windows.sql")),), functions=())


def build(ctx: JobContext) -> StatementSet:
    return PIPELINE.build(ctx)


if __name__ == "__main__":
    from kappa.jobrunner import main_for

    main_for(build)
