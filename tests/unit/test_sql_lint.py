"""sqlfluff (Flink dialect, `${name}` placeholders; config in .sqlfluff) passes on every SQL file, and each
place that turns its parse errors off still needs it (when the dialect learns the construct, the test
says so and the exclusion can go)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlfluff.core import FluffConfig, Linter

from kappa.config import PROJECT_ROOT

pytestmark = pytest.mark.unit

SQL_FILES = sorted((PROJECT_ROOT / "sql").rglob("*.sql")) + sorted((PROJECT_ROOT / "bench" / "sql").rglob("*.sql"))
IDS = [str(p.relative_to(PROJECT_ROOT)) for p in SQL_FILES]
_NO_PARSE = re.compile(r"^-- noqa: disable=.*\bPRS\b.*$", re.MULTILINE)


@pytest.fixture(scope="module")
def linter() -> Linter:
    return Linter(config=FluffConfig.from_path(str(PROJECT_ROOT)))


@pytest.mark.parametrize("path", SQL_FILES, ids=IDS)
def test_sql_lint(linter: Linter, path: Path) -> None:
    result = linter.lint_string(path.read_text(), fname=str(path))
    problems = [f"L{v.line_no}:{v.line_pos} {v.rule_code()} {v.desc()}" for v in result.get_violations()]
    assert not problems, "\n".join(problems)


EXCLUDED = [path for path in SQL_FILES if _NO_PARSE.search(path.read_text())]


def test_parse_exclusions_are_the_documented_ones() -> None:
    assert sorted(str(p.relative_to(PROJECT_ROOT / "sql")) for p in EXCLUDED) == [
        "alerts/low_battery.sql", "alerts/overheating.sql", "alerts/sinks.sql", "alerts/temperature_trend.sql",
        "alerts/vibration_then_heat.sql", "archive/catalog.sql", "telemetry/lateness.sql"]


@pytest.mark.parametrize("path", EXCLUDED, ids=[str(p.relative_to(PROJECT_ROOT)) for p in EXCLUDED])
def test_parse_exclusions_are_still_needed(linter: Linter, path: Path) -> None:
    result = linter.lint_string(_NO_PARSE.sub("--", path.read_text()), fname=str(path))
    assert any(v.rule_code() == "PRS" for v in result.get_violations()), "parses now: drop its '-- noqa: ... PRS'"
