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
        "inputs": {"telemetry_valid": [], "alert_thresholds_lookup": [{"device_type": "thermal"}]}}))
    assert set(fixture.inputs) == {"telemetry_valid", "alert_thresholds_lookup"}
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
