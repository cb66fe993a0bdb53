"""The health rules (deploy/prometheus/rules) are valid and behave as their promtool unit tests say."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from kappa.config import PROJECT_ROOT

pytestmark = pytest.mark.unit
PROMETHEUS_DIR = PROJECT_ROOT / "deploy" / "prometheus"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: run `make setup` (Debian's prometheus package ships it)"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS_DIR)


def test_rule_files_are_valid() -> None:
    rule_files = sorted(str(p) for p in (PROMETHEUS_DIR / "rules").glob("*.yml"))
    assert rule_files
    result = _promtool("check", "rules", *rule_files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_pass_their_unit_tests() -> None:
    tests = sorted(str(p) for p in (PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert tests
    result = _promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test() -> None:
    rules = (PROMETHEUS_DIR / "rules" / "pipeline.yml").read_text()
    tests = "\n".join(p.read_text() for p in (PROMETHEUS_DIR / "tests").glob("*.yml"))
    alerts = [line.split(":", 1)[1].strip() for line in rules.splitlines() if line.strip().startswith("- alert:")]
    assert len(alerts) >= 8
    untested = [a for a in alerts if f"alertname: {a}" not in tests]
    assert untested == [], untested
