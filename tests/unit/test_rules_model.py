"""The rules file format and which version is in force (kappa/rules/model.py), without any service."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kappa.config import PROJECT_ROOT
from kappa.reference_log import iso, parse_time_ms
from kappa.rules.model import COLUMNS, Rule, RulesError, effective, in_force, parse, rule_key

pytestmark = pytest.mark.unit

FULL = "\n".join(f"{name} = {3 if 'count' in name or name.endswith('_s') or 'readings' in name else 85.0}"
                 for name in COLUMNS)


def _default(version: str, valid_from_ms: int, offset: int, overheat: float = 85.0) -> Rule:
    thresholds: dict[str, float | int | None] = {name: 3 for name in COLUMNS}
    thresholds["overheat_temp_c"] = overheat
    return Rule("thermal", None, thresholds, version, valid_from_ms, offset)


def test_the_shipped_rules_file_is_the_seeded_defaults() -> None:
    rules = parse((PROJECT_ROOT / "rules" / "thresholds.toml").read_text())
    assert [r.key for r in rules] == ["thermal", "vibration", "environmental", "power"]
    thermal = rules[0]
    assert thermal.rule_version == "rules-v1" and thermal.valid_from_ms == 0
    assert thermal.thresholds["overheat_temp_c"] == 85.0 and thermal.thresholds["overheat_count"] == 3
    assert set(thermal.thresholds) == set(COLUMNS)


def test_an_override_carries_only_what_it_changes_and_its_own_version() -> None:
    text = f'rule_version = "v2"\n[types.thermal]\n{FULL}\n[devices."pump-7"]\ndevice_type = "thermal"\n' \
           'overheat_temp_c = 70.0\nrule_version = "v2-pump"\n'
    default, override = parse(text)
    assert override.key == "thermal/pump-7" == rule_key("thermal", "pump-7")
    assert override.thresholds == {"overheat_temp_c": 70.0} and override.rule_version == "v2-pump"
    assert default.key == "thermal" and default.rule_version == "v2"


@pytest.mark.parametrize(("text", "message"), [
    ('rule_version = "v"\n[types.thermal]\noverheat_temp_c = 85.0\n', "needs every threshold"),
    ('rule_version = "v"\n[types.thermal]\n' + FULL.replace("overheat_count = 3", "overheat_count = 0"), "> 0"),
    ('rule_version = "v"\n[types.thermal]\n' + FULL.replace("overheat_count = 3", "overheat_count = 2.5"),
     "an integer"),
    ('rule_version = "v"\n[types.thermal]\n' + FULL + "\nfoo = 1\n", "unknown key(s) foo"),
    ('[types.thermal]\n' + FULL, "rule_version is required"),
    ('rule_version = "v"\n[devices.d1]\noverheat_temp_c = 70.0\n', "device_type is required"),
    ('rule_version = "v"\n[devices.d1]\ndevice_type = "thermal"\n', "at least one threshold"),
    ('rule_version = "v"\n', "no [types.*]"),
    ('rule_version = \n', "not valid TOML"),
])
def test_mistakes_are_one_line_naming_the_entry(text: str, message: str) -> None:
    with pytest.raises(RulesError, match=re.escape(message)):
        parse(text, "t.toml")


def test_in_force_is_the_latest_valid_from_at_or_before_the_time_and_the_last_written_on_a_tie() -> None:
    v1 = _default("v1", 0, offset=0)
    v3 = _default("v3", 3_000, offset=1, overheat=95.0)
    v2 = _default("v2", 1_000, offset=2, overheat=75.0)  # back-dated: written after v3
    v2b = _default("v2b", 1_000, offset=3, overheat=76.0)  # same valid_from, written later: wins
    versions = [v1, v3, v2]
    assert in_force(versions, -1) == {}
    assert in_force(versions, 0)["thermal"] is v1
    assert in_force(versions, 999)["thermal"] is v1
    assert in_force(versions, 1_000)["thermal"] is v2
    assert in_force(versions, 2_999)["thermal"] is v2
    assert in_force(versions, 3_000)["thermal"] is v3
    assert in_force([*versions, v2b], 1_500)["thermal"] is v2b


def test_effective_thresholds_take_the_override_column_by_column() -> None:
    versions = [_default("v1", 0, 0), Rule("thermal", "d1", {"overheat_temp_c": 70.0}, "o1", 1_000, 1),
                _default("v2", 2_000, 2, overheat=80.0)]
    assert effective(versions, "thermal", "d1", 500)["overheat_temp_c"] == 85.0  # type: ignore[index]
    at_1500 = effective(versions, "thermal", "d1", 1_500)
    assert at_1500 is not None and at_1500["overheat_temp_c"] == 70.0 and at_1500["overheat_count"] == 3
    assert at_1500["rule_version"] == "o1"
    assert effective(versions, "thermal", "d2", 2_500)["overheat_temp_c"] == 80.0  # type: ignore[index]
    assert effective(versions, "vibration", "d1", 2_500) is None  # no default for the type


def test_a_version_record_round_trips_through_the_topic_format() -> None:
    from kappa.rules.model import from_record

    rule = Rule("thermal", "d1", {"overheat_temp_c": 70.0}, "o1", parse_time_ms("2026-03-02T08:00:00Z"))
    value = rule.record("2026-12-02T12:00:00Z")
    assert value["rule_key"] == "thermal/d1" and value["valid_from_utc"] == "2026-03-02T08:00:00Z"
    assert value["cooldown_s"] is None
    back = from_record(value, offset=7)
    assert back == rule and back.offset == 7


def test_times_parse_as_utc_and_epoch_is_the_beginning_of_time(tmp_path: Path) -> None:
    assert parse_time_ms("epoch") == 0
    assert parse_time_ms("2026-03-02T08:00:00") == parse_time_ms("2026-03-02T08:00:00Z")
    assert iso(parse_time_ms("2026-03-02T09:00:00+01:00")) == "2026-03-02T08:00:00Z"
