"""The golden-fixture format and comparison (kappa/sqltest.py): row kinds count, an unexpected
retraction fails, both input forms load, and format mistakes fail loudly instead of passing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kappa import sqltest

pytestmark = pytest.mark.unit


def _write(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "case.json"
    path.write_text(json.dumps(data))
    return path


def test_old_single_input_means_telemetry_and_kind_defaults_to_insert(tmp_path: Path) -> None:
    fixture = sqltest.load_fixture(_write(tmp_path, {
        "files": ["telemetry/ontime.sql"], "view": "telemetry_late",
        "input": [{"device_id": "d1"}], "expected": [{"device_id": "d1"}]}))
    assert fixture.inputs == {"telemetry_valid": [{"device_id": "d1"}]}
    assert fixture.expected == [{"kind": "+I", "device_id": "d1"}]
    assert fixture.query == "SELECT * FROM `telemetry_late`"


def test_several_inputs_and_a_query(tmp_path: Path) -> None:
    fixture = sqltest.load_fixture(_write(tmp_path, {
        "files": [], "query": "SELECT 1", "expected": [{"kind": "-U", "n": 1}],
        "inputs": {"telemetry_valid": [], "alert_threshold_versions": [{"device_type": "thermal"}]}}))
    assert set(fixture.inputs) == {"telemetry_valid", "alert_threshold_versions"}
    assert fixture.query == "SELECT 1"


@pytest.mark.parametrize("broken", [
    {"files": [], "view": "v", "expected": []},  # no input at all
    {"files": [], "view": "v", "input": [], "inputs": {}, "expected": []},  # both forms
    {"files": [], "input": [], "expected": []},  # neither view nor query
    {"files": [], "view": "v", "input": [], "expected": [{"kind": "+X"}]},  # unknown row kind
])
def test_format_mistakes_fail(tmp_path: Path, broken: dict[str, object]) -> None:
    with pytest.raises(sqltest.FixtureError):
        sqltest.load_fixture(_write(tmp_path, broken))


def test_changelog_matches_with_kinds() -> None:
    actual = [{"kind": "+I", "d": "a", "n": 1}, {"kind": "-U", "d": "a", "n": 1}, {"kind": "+U", "d": "a", "n": 2}]
    expected = [{"d": "a", "n": 1}, {"kind": "-U", "d": "a", "n": 1}, {"kind": "+U", "d": "a", "n": 2}]
    assert sqltest.check(actual, expected) == []


def test_an_unexpected_retraction_fails() -> None:
    actual = [{"kind": "+I", "d": "a", "n": 1}, {"kind": "-U", "d": "a", "n": 1}, {"kind": "+U", "d": "a", "n": 2}]
    problems = sqltest.check(actual, [{"d": "a", "n": 1}, {"d": "a", "n": 2}])
    assert "missing: {'kind': '+I', 'd': 'a', 'n': 2}" in problems
    assert any(p.startswith("unexpected: {'kind': '-U'") for p in problems)
    assert any(p.startswith("unexpected: {'kind': '+U'") for p in problems)


def test_values_timestamps_maps_and_unknown_columns() -> None:
    actual = [{"kind": "+I", "t": "2026-01-01T00:00:10", "x": 0.1 + 0.2, "m": {"a": 1.0}}]
    assert sqltest.check(actual, [{"t": "2026-01-01T00:00:10Z", "x": 0.3, "m": {"a": 1.0}}]) == []
    assert sqltest.check(actual, [{"m": {"a": 2.0}}]) != []
    assert sqltest.check(actual, [{"t": "2026-01-01T00:00:11"}]) != []
    assert "the view has no column 'nope'" in sqltest.check(actual, [{"nope": None}])


def test_a_versioned_input_keeps_its_key_computed_columns_and_watermark() -> None:
    from kappa.sqltest_runner import REPLACEABLE, _declaration

    described = [("rule_key", "STRING", False, "PRI(rule_key)", None, None),
                 ("valid_from_ms", "BIGINT", True, None, None, None),
                 ("valid_from", "TIMESTAMP_LTZ(3) *ROWTIME*", True, None, "AS TO_TIMESTAMP_LTZ(`valid_from_ms`, 3)",
                  "TO_TIMESTAMP_LTZ(0, 3)")]
    assert _declaration(described) == [
        "`rule_key` STRING NOT NULL", "`valid_from_ms` BIGINT",
        "`valid_from` AS TO_TIMESTAMP_LTZ(`valid_from_ms`, 3)", "WATERMARK FOR `valid_from` AS TO_TIMESTAMP_LTZ(0, 3)",
        "PRIMARY KEY (`rule_key`) NOT ENFORCED"]
    rules = REPLACEABLE["alert_threshold_versions"].row
    assert rules({"device_type": "thermal", "device_id": None}) == {
        "device_type": "thermal", "device_id": None, "valid_from_ms": 0, "rule_key": "thermal"}
    override = rules({"device_type": "thermal", "device_id": "d1", "valid_from": "1970-01-01T00:00:01Z"})
    assert override["rule_key"] == "thermal/d1" and override["valid_from_ms"] == 1000
    assert REPLACEABLE["device_metadata_versions"].row({"device_id": "d1"})["device_key"] == "d1"
