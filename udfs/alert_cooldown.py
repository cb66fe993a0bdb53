"""Suppression: after an alert of one type on one device, no new alert of that type for that device
until its cool-down (`alert_thresholds.cooldown_s`) has passed, measured in event time from the
moment the alert was raised (its last_event_time).

This needs the previous alert, i.e. state keyed by (device, alert type): a keyed process function
over the union of all rule matches. Matches of one rule on one device reach it in event-time order
(each rule is one operator keyed by device, and channels keep order), so the decision depends only
on the log, and a replay of the same log suppresses the same matches. A second record with the same
first reading (a DEVICE_SILENT alert being resolved) is an update of the raised alert, not a repeat.

The decision (`decide`) is plain Python, unit-tested without Flink; `suppress_repeats` wires it
into the job.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The columns of the union of rule matches (sql/alerts/alerts.sql), passed through unchanged.
MATCH_FIELDS = ("device_id", "site_id", "alert_type", "severity", "first_event_time", "last_event_time",
                "first_ms", "rule_version", "cooldown_s", "trigger_json", "trigger_map")


@dataclass(frozen=True)
class Raised:
    """The last alert raised for one (device, alert type)."""

    first_ms: int
    raised_at_ms: int  # its last_event_time: when it was raised, in event time
    cooldown_s: int

    @property
    def quiet_until_ms(self) -> int:
        return self.raised_at_ms + self.cooldown_s * 1000


def decide(previous: Raised | None, first_ms: int, last_ms: int, cooldown_s: int) -> tuple[bool, Raised | None]:
    """Whether a match becomes an alert, and the state to keep.

    A match starting before the previous alert's cool-down ended is suppressed; one with the same
    first reading as the previous alert updates it (e.g. a silence resolved)."""
    if previous is not None and first_ms == previous.first_ms:
        return True, previous
    if previous is not None and first_ms < previous.quiet_until_ms:
        return False, previous
    return True, Raised(first_ms, last_ms, cooldown_s)


def _epoch_ms(value: datetime) -> int:
    """A TIMESTAMP(3) from Flink (naive, UTC in this project) as epoch milliseconds."""
    return calendar.timegm(value.timetuple()) * 1000 + value.microsecond // 1000


def suppress_repeats(t_env: Any, matches_view: str) -> Any:
    """The matches of `matches_view` (columns MATCH_FIELDS) that are alerts after the cool-down."""
    from pyflink.common import Row, Types
    from pyflink.datastream import KeyedProcessFunction
    from pyflink.datastream.state import ValueStateDescriptor

    output_type = Types.ROW_NAMED(list(MATCH_FIELDS), [
        Types.STRING(), Types.STRING(), Types.STRING(), Types.STRING(), Types.SQL_TIMESTAMP(),
        Types.SQL_TIMESTAMP(), Types.LONG(), Types.STRING(), Types.INT(), Types.STRING(),
        Types.MAP(Types.STRING(), Types.DOUBLE()),
    ])

    class CooldownFunction(KeyedProcessFunction):  # type: ignore[misc]
        def open(self, runtime_context: Any) -> None:
            self.raised = runtime_context.get_state(ValueStateDescriptor("last_raised", Types.PICKLED_BYTE_ARRAY()))
            # what the SQL cannot count: matches dropped here (docs/metrics.md, "Inside the jobs")
            self.suppressed = runtime_context.get_metrics_group().add_group("kappa").counter("alerts_suppressed")

        def process_element(self, value: Any, ctx: Any) -> Iterator[Any]:
            keep, state = decide(self.raised.value(), int(value.first_ms), _epoch_ms(value.last_event_time),
                                 int(value.cooldown_s))
            self.raised.update(state)
            if keep:
                yield Row(*(getattr(value, name) for name in MATCH_FIELDS))
            else:
                self.suppressed.inc()

    matches = t_env.to_data_stream(t_env.from_path(matches_view))
    raised = (matches.key_by(lambda row: f"{row.device_id}|{row.alert_type}", key_type=Types.STRING())
              .process(CooldownFunction(), output_type=output_type)
              .name("alert_cooldown"))
    return t_env.from_data_stream(raised)
