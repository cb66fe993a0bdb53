"""Every golden fixture in <paths.sql_dir>/*/tests/*.json: the SQL files it names, run over its inputs in
the local MiniCluster (no service, no secret: see kappa/sqltest_runner.py), must emit exactly its
expected changelog, row kinds included (see kappa/sqltest.py). All fixtures run as one Flink job per
session. With KAPPA_PATHS__SQL_DIR set, an analyst tests an edited copy of sql/ with its own fixtures
before replaying it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kappa import sqltest, sqltest_runner
from kappa.config import Config, load_config

pytestmark = pytest.mark.sqltest

FIXTURES = sqltest.fixtures(load_config(profile="test").sql_dir)


@pytest.fixture(scope="module")
def outcomes(test_config: Config) -> dict[Path, sqltest_runner.Outcome]:
    return sqltest_runner.run_all(test_config, FIXTURES)


def test_fixtures_exist() -> None:
    assert len(FIXTURES) >= 4


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_sql_fixture(outcomes: dict[Path, sqltest_runner.Outcome], fixture: sqltest.Fixture) -> None:
    outcome = outcomes[fixture.path]
    assert outcome.error is None, f"{fixture.path}: {outcome.error}"
    problems = sqltest.check(outcome.rows, fixture.expected)
    assert not problems, f"{fixture.path.name}: {fixture.description}\n" + "\n".join(problems)


def test_the_telemetry_waits_until_every_reference_source_has_ended(
        test_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """The barrier holds: told to wait for two reference sources its job does not have, a fixture's
    telemetry never starts and the job fails with the barrier's error (without the barrier, this
    telemetry-only fixture would pass)."""
    fixture = next(f for f in FIXTURES if f.name == "telemetry/ontime_counts_changelog")
    real = sqltest_runner._tables_read
    monkeypatch.setattr(sqltest_runner, "_tables_read",
                        lambda *args: real(*args) | set(sqltest_runner.REPLACEABLE))
    outcome = sqltest_runner.run_all(test_config, [fixture], barrier_timeout_s=3)[fixture.path]
    assert outcome.error is not None and "0 of 2 reference sources ended within 3000 ms" in outcome.error, outcome
    assert outcome.rows == []
