"""Rule versions: the threshold columns, the rules file format (TOML), and which version is in force.

A rule key is a device type (its default) or a device of a type (its override). A default carries
every threshold; an override carries the ones it changes, the others come from the default in force
at the same time (column by column, as sql/alerts/thresholds.sql joins them).

rules/thresholds.toml:

    rule_version = "rules-v2"          # every entry's version name, unless it gives its own

    [types.thermal]                    # the default of a device type: every threshold
    overheat_temp_c = 85.0
    ...

    [devices."pump-7"]                 # a device's override: its type and the thresholds it changes
    device_type = "thermal"
    overheat_temp_c = 70.0
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kappa.errors import KappaError

# (column, Python type, check on the value) as in alert_thresholds (db/migrations/0002)
THRESHOLDS: tuple[tuple[str, type, str], ...] = (
    ("overheat_temp_c", float, ""), ("overheat_count", int, "> 0"),
    ("rising_delta_c", float, ""), ("rising_readings", int, "> 1"),
    ("vibration_spike_mm_s", float, ""), ("temp_spike_c", float, ""), ("spike_window_s", int, "> 0"),
    ("low_battery_pct", float, ""), ("low_battery_duration_s", int, ">= 0"),
    ("silent_after_s", int, "> 0"), ("cooldown_s", int, ">= 0"),
)
COLUMNS = tuple(name for name, _, _ in THRESHOLDS)
_CHECKS = {"> 0": lambda v: v > 0, "> 1": lambda v: v > 1, ">= 0": lambda v: v >= 0, "": lambda v: True}


class RulesError(KappaError):
    """A rules file or rule version that does not follow the format; one line naming the entry."""


@dataclass(frozen=True)
class Rule:
    """One version of one rule key, valid from `valid_from_ms` (event time, UTC ms; 0 = the epoch)."""

    device_type: str
    device_id: str | None
    thresholds: dict[str, float | int | None]
    rule_version: str
    valid_from_ms: int = 0
    offset: int | None = field(default=None, compare=False)  # in the rules topic, once written

    @property
    def key(self) -> str:
        return rule_key(self.device_type, self.device_id)

    def record(self, written_at: str) -> dict[str, Any]:
        """The topic's JSON value (read by sql/alerts/threshold_versions.sql)."""
        from kappa.reference_log import iso

        return {"rule_key": self.key, "device_type": self.device_type, "device_id": self.device_id,
                "valid_from_ms": self.valid_from_ms, "valid_from_utc": iso(self.valid_from_ms),
                **{name: self.thresholds.get(name) for name in COLUMNS},
                "rule_version": self.rule_version, "written_at": written_at}


def rule_key(device_type: str, device_id: str | None) -> str:
    return device_type if device_id is None else f"{device_type}/{device_id}"


def from_record(value: dict[str, Any], offset: int | None = None) -> Rule:
    thresholds = {name: value[name] for name in COLUMNS if value.get(name) is not None}
    return Rule(value["device_type"], value.get("device_id"), thresholds,
                value["rule_version"], int(value["valid_from_ms"]), offset)


def _threshold(where: str, name: str, value: Any) -> float | int:
    kind, check = next((k, c) for n, k, c in THRESHOLDS if n == name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and isinstance(value, float)):
        raise RulesError(f"{where}: {name} must be {'an integer' if kind is int else 'a number'}, not {value!r}")
    if not _CHECKS[check](value):
        raise RulesError(f"{where}: {name} must be {check}, not {value!r}")
    return kind(value)


def _entry(where: str, table: Any, device_type: str, device_id: str | None, default_version: str | None) -> Rule:
    if not isinstance(table, dict):
        raise RulesError(f"{where}: want a table of thresholds")
    allowed = set(COLUMNS) | {"rule_version"} | ({"device_type"} if device_id else set())
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise RulesError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    thresholds: dict[str, float | int | None] = {
        name: _threshold(where, name, value) for name, value in table.items() if name in COLUMNS}
    if device_id is None and len(thresholds) < len(COLUMNS):
        missing = [name for name in COLUMNS if name not in thresholds]
        raise RulesError(f"{where}: a type's default needs every threshold; missing {', '.join(missing)}")
    if device_id is not None and not thresholds:
        raise RulesError(f"{where}: an override changes at least one threshold")
    version = table.get("rule_version", default_version)
    if not isinstance(version, str) or not version:
        raise RulesError(f"{where}: rule_version is required (at the top of the file or in the entry)")
    return Rule(device_type, device_id, thresholds, version)


def parse(text: str, source: str = "rules file") -> list[Rule]:
    """The rules of a TOML rules file (no valid_from yet: `kappa rules set` gives it)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"rule_version", "types", "devices"})
    if unknown:
        raise RulesError(f"{source}: unknown key(s) {', '.join(unknown)}; want rule_version, [types.*], [devices.*]")
    version = data.get("rule_version")
    rules = [_entry(f"{source} [types.{name}]", table, name, None, version)
             for name, table in data.get("types", {}).items()]
    for device, table in data.get("devices", {}).items():
        device_type = table.get("device_type") if isinstance(table, dict) else None
        if not isinstance(device_type, str) or not device_type:
            raise RulesError(f"{source} [devices.{device}]: device_type is required")
        rules.append(_entry(f"{source} [devices.{device}]", table, device_type, device, version))
    if not rules:
        raise RulesError(f"{source}: no [types.*] or [devices.*] entry")
    return rules


def in_force(versions: Iterable[Rule], at_ms: int) -> dict[str, Rule]:
    """Per rule key, the version in force at `at_ms`: the latest valid_from at or before it; of two
    versions with the same valid_from, the one written last (as the temporal join keeps it)."""
    chosen: dict[str, Rule] = {}
    for rule in versions:
        if rule.valid_from_ms > at_ms:
            continue
        best = chosen.get(rule.key)
        if best is None or (rule.valid_from_ms, rule.offset or 0) >= (best.valid_from_ms, best.offset or 0):
            chosen[rule.key] = rule
    return chosen


def effective(versions: Iterable[Rule], device_type: str, device_id: str, at_ms: int) -> dict[str, Any] | None:
    """The thresholds (and rule_version) a reading of this device at `at_ms` gets, or None without a
    default: the Python twin of sql/alerts/thresholds.sql."""
    current = in_force(versions, at_ms)
    default = current.get(rule_key(device_type, None))
    if default is None:
        return None
    override = current.get(rule_key(device_type, device_id))
    merged: dict[str, Any] = {name: default.thresholds.get(name) for name in COLUMNS}
    merged["rule_version"] = default.rule_version
    if override is not None:
        merged.update({k: v for k, v in override.thresholds.items() if v is not None})
        merged["rule_version"] = override.rule_version
    return merged
