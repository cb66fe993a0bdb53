"""Every golden fixture in <paths.sql_dir>/*/tests/*.json: the SQL files it names, run over its input in
the local MiniCluster (no services needed), must produce exactly its expected rows (see
kappa/sqltest.py). With KAPPA_PATHS__SQL_DIR set, an analyst tests an edited copy of sql/ with its
own fixtures before replaying it."""

from __future__ import annotations

import pytest

from kappa import sqltest
from kappa.config import Config, load_config

pytestmark = pytest.mark.sqltest

FIXTURES = sqltest.fixtures(load_config(profile="test").sql_dir)


def test_fixtures_exist() -> None:
    assert len(FIXTURES) >= 4


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.path.stem for f in FIXTURES])
def test_sql_fixture(test_config: Config, fixture: sqltest.Fixture) -> None:
    actual = sqltest.run_fixture(test_config, fixture)
    problems = sqltest.check(actual, fixture.expected)
    assert not problems, f"{fixture.path.name}: {fixture.description}\n" + "\n".join(problems)
