"""DEVICE_SILENT: a device sent no reading for longer than its `silent_after_s`, decided on event time.

`MATCH_RECOGNIZE` matches rows that exist; silence is the absence of rows (a device that stops for
good never produces the row a pattern would end on), so this rule is a keyed process function with
event-time timers instead: io.kappa.udfs.DeviceSilence (udfs/java), around the per-device decision
io.kappa.udfs.DeviceClock, whose documentation says how a silence is decided and why a replay of the
same log raises the same alerts. It is Java because it sees every on-time reading with two timer round
trips each: as a PyFlink function it kept a Python worker busy at about 300 readings/s and held the
whole alerting job's latency back (bench/alert_latency.py).

`detect_silences` wires it into a job between two SQL views.
"""

from __future__ import annotations

from typing import Any

SILENCE_FIELDS = (  # the rows `detect_silences` returns (names and SQL types), as DeviceSilence.FIELDS
    ("device_id", "STRING"), ("site_id", "STRING"), ("first_ms", "BIGINT"), ("last_ms", "BIGINT"),
    ("silent_after_s", "INT"), ("rule_version", "STRING"), ("cooldown_s", "INT"), ("resolved", "BOOLEAN"),
)

# The input columns DeviceSilence reads, in the order it takes their positions.
INPUT_COLUMNS = ("device_id", "site_id", "event_ms", "silent_after_s", "rule_version", "cooldown_s")


def input_positions(field_names: list[str]) -> list[int]:
    """Where DeviceSilence finds each of INPUT_COLUMNS in a row of the readings view."""
    missing = [name for name in INPUT_COLUMNS if name not in field_names]
    if missing:
        raise ValueError(f"the silence detector's input has no column {', '.join(missing)}: {field_names}")
    return [field_names.index(name) for name in INPUT_COLUMNS]


def detect_silences(t_env: Any, readings_view: str) -> Any:
    """A Table of `SILENCE_FIELDS` rows from a view of on-time readings with INPUT_COLUMNS and an
    event-time attribute (its watermarks drive the timers)."""
    from pyflink.datastream import DataStream
    from pyflink.java_gateway import get_gateway

    table = t_env.from_path(readings_view)
    positions = input_positions(table.get_schema().get_field_names())
    gateway = get_gateway()
    columns = gateway.new_array(gateway.jvm.int, len(positions))
    for index, position in enumerate(positions):
        columns[index] = position
    readings = t_env.to_data_stream(table)
    # loaded through the context class loader, which holds the job's jars (pipeline.jars), as the SQL functions
    detector = gateway.jvm.io.kappa.udfs.DeviceSilence
    silences = detector.detect(readings._j_data_stream, columns)
    return t_env.from_data_stream(DataStream(silences))
