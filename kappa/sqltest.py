"""Golden tests for the SQL files: input rows (in arrival order, possibly out of order) and the
changelog a view must produce. This module reads the fixtures and compares; kappa/sqltest_runner.py
runs them (all fixtures in one bounded Flink job, in the local MiniCluster, with no service).

A fixture is a JSON file next to the SQL it tests (`sql/<area>/tests/<case>.json`):

    {"description": "...",
     "view": "alerts_overheating",
     "inputs": {
       "telemetry_valid": [{"device_id": "d1", "seq": 1, "event_time": "2026-01-01T00:00:01Z",
                            "temperature_c": 90.0}],
       "alert_threshold_versions": [{"device_type": "thermal", "overheat_temp_c": 85.0, ...}]},
     "expected": [{"device_id": "d1", "first_event_time": "2026-01-01T00:00:01"},
                  {"kind": "-U", ...}]}

- `view` names the view whose output is checked, or `query` gives a SELECT over the fixture's views
  instead. The SQL files it needs are found from the files' headers (kappa/sqlheaders.py): what the
  view or query reads, back to what the fixture's inputs replace, run after telemetry/functions.sql.
  `files` lists them by hand instead (run in that order), e.g. where two files define a name the
  fixture reads (telemetry_late: telemetry/lateness.sql and telemetry/ontime.sql).
- `inputs` maps a table name to its rows; each replaces the table or view the SQL reads under that
  name, with the same columns (see sqltest_runner.REPLACEABLE). `telemetry_valid` keeps its event-time
  watermark; the versioned reference tables (`alert_threshold_versions`, `device_metadata_versions`)
  keep their primary key and watermark: their rows give `valid_from` (ISO; default: the epoch) and
  may leave out the record key (rule_key, device_key), which is derived; one the fixture leaves out
  is an empty table (no versions: the joins fall back to their defaults). The older `"input": [...]`
  means `"inputs": {"telemetry_valid": [...]}`.
- `expected` lists every changelog row the view emits, as a multiset: each row carries its row kind
  (`"kind"`: `+I` when left out, or `-U`, `+U`, `-D`), and only the columns it names are compared
  (floats within 1e-9 relative). A row the view emits that no expected row matches, a retraction
  included, is a failure. Timestamps are written ISO 8601 in UTC.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kappa import sqlfiles
from kappa.errors import KappaError

FIXTURE_GLOB = "*/tests/*.json"
KINDS = ("+I", "-U", "+U", "-D")
TELEMETRY = "telemetry_valid"


class FixtureError(KappaError):
    """A fixture file that does not follow the format above."""


@dataclass(frozen=True)
class Fixture:
    path: Path
    description: str
    files: list[str] | None  # None: resolved from the SQL headers (sqltest_runner.files_for)
    query: str  # what is checked: SELECT * FROM the view, or the fixture's own query
    inputs: dict[str, list[dict[str, Any]]]  # table name -> rows, in arrival order
    expected: list[dict[str, Any]]  # each with its "kind"

    @property
    def name(self) -> str:
        return f"{self.path.parent.parent.name}/{self.path.stem}"


def load_fixture(path: Path) -> Fixture:
    """One fixture file, checked for the format's rules (so a typo fails loudly, not as a wrong result)."""
    data = json.loads(path.read_text())
    if ("input" in data) == ("inputs" in data):
        raise FixtureError(f"{path}: give either 'input' (rows of {TELEMETRY}) or 'inputs' (table -> rows)")
    inputs = {TELEMETRY: data["input"]} if "input" in data else dict(data["inputs"])
    if ("view" in data) == ("query" in data):
        raise FixtureError(f"{path}: give either 'view' or 'query'")
    query = data["query"] if "query" in data else f"SELECT * FROM `{data['view']}`"
    expected = []
    for row in data["expected"]:
        row = {"kind": "+I", **row}
        if row["kind"] not in KINDS:
            raise FixtureError(f"{path}: row kind {row['kind']!r} is not one of {', '.join(KINDS)}")
        expected.append(row)
    files = list(data["files"]) if "files" in data else None
    return Fixture(path, data.get("description", ""), files, query, inputs, expected)


def fixtures(sql_dir: Path = sqlfiles.SQL_DIR) -> list[Fixture]:
    return [load_fixture(path) for path in sorted(sql_dir.glob(FIXTURE_GLOB))]


def normalize(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat()
    return value


def _timestamp(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=None)
    except ValueError:
        return None


def _equal(got: Any, value: Any) -> bool:
    if isinstance(value, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(value, str) and isinstance(got, str) and "T" in value and "T" in got:
        wanted, actual = _timestamp(value), _timestamp(got)
        if wanted is not None and actual is not None:
            return wanted == actual
    if isinstance(value, dict) and isinstance(got, dict):
        return value.keys() == got.keys() and all(_equal(got[key], value[key]) for key in value)
    return bool(got == value)


def _matches(actual: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(_equal(normalize(actual.get(column)), value) for column, value in wanted.items())


def check(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> list[str]:
    """Problems: columns the view lacks, expected rows not emitted (once each), rows emitted but not
    expected. Rows without a "kind" are inserts (+I), on both sides."""
    actual = [{"kind": "+I", **row} for row in actual]
    expected = [{"kind": "+I", **row} for row in expected]
    problems = []
    columns = set().union(*(row.keys() for row in actual)) if actual else set()
    if actual:
        unknown = sorted({column for row in expected for column in row} - columns)
        problems += [f"the view has no column {column!r}" for column in unknown]
    remaining = list(actual)
    for wanted in expected:
        match = next((row for row in remaining if _matches(row, wanted)), None)
        if match is None:
            problems.append(f"missing: {wanted}")
        else:
            remaining.remove(match)
    problems += [f"unexpected: {row}" for row in remaining]
    return problems
