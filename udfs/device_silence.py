"""DEVICE_SILENT: a device sent no reading for longer than its `silent_after_s`, decided on event time.

`MATCH_RECOGNIZE` matches rows that exist; silence is the absence of rows (a device that stops for
good never produces the row a pattern would end on), so this rule is a keyed process function with
event-time timers instead: io.kappa.udfs.DeviceSilence (udfs/java), around the per-device decision
io.kappa.udfs.DeviceClock, whose documentation says how a silence is decided and why a replay of the
same log raises the same alerts. It is Java because it sees every on-time reading with two timer round
trips each: as a PyFlink function it kept a Python worker busy at about 300 readings/s and held the
whole alerting job's latency back (bench/alert_latency.py).

`detect_silences` wires it into a job between two SQL views (udfs/java_keyed.py).
"""

from __future__ import annotations

from typing import Any

from udfs.java_keyed import java_keyed

# The input columns DeviceSilence reads, in the order it takes their positions.
INPUT_COLUMNS = ("device_id", "site_id", "event_ms", "silent_after_s", "rule_version", "cooldown_s")


def detect_silences(t_env: Any, readings_view: str) -> Any:
    """A Table of silences (the columns of DeviceSilence.FIELDS: device_id, site_id, first_ms, last_ms,
    silent_after_s, rule_version, cooldown_s, resolved) from a view of on-time readings with INPUT_COLUMNS
    and an event-time attribute (its watermarks drive the timers)."""
    return java_keyed(t_env, readings_view, "DeviceSilence.detect", INPUT_COLUMNS)
