"""Suppression: after an alert of one type on one device, no new alert of that type for that device
until its cool-down (`alert_thresholds.cooldown_s`) has passed, measured in event time from the
moment the alert was raised (its last_event_time).

This needs the previous alert, i.e. state keyed by (device, alert type): a keyed process function
over the union of all rule matches, io.kappa.udfs.AlertCooldown (udfs/java), around the decision
io.kappa.udfs.Cooldown (unit-tested by CooldownTest). It is Java, as the silence detector is, so that
the alerting job has no Python worker in its path: each PyFlink operator hands records over in bundles
and costs a worker process. `suppress_repeats` wires it in between two SQL views.
"""

from __future__ import annotations

from typing import Any

from udfs.java_keyed import java_keyed

# The columns of the union of rule matches (sql/alerts/alerts.sql), passed through unchanged.
MATCH_FIELDS = ("device_id", "site_id", "alert_type", "severity", "first_event_time", "last_event_time",
                "first_ms", "rule_version", "cooldown_s", "trigger_json", "trigger_map")

# The columns AlertCooldown reads, in the order it takes their positions.
DECISION_COLUMNS = ("device_id", "alert_type", "first_ms", "last_event_time", "cooldown_s")


def suppress_repeats(t_env: Any, matches_view: str) -> Any:
    """The matches of `matches_view` (columns MATCH_FIELDS) that are alerts after the cool-down."""
    return java_keyed(t_env, matches_view, "AlertCooldown.suppressRepeats", DECISION_COLUMNS)
