"""The pure parts of write-audit-publish on the Iceberg archive: which rows a replay's branch drops before
the job writes it (kappa.lake_branch), the INSERT's branch hint and table names (kappa.flinkenv), and the
SQL that compares two refs (kappa.replay.lake_compare), run in an in-memory DuckDB."""

from __future__ import annotations

import duckdb
import pytest
from pyiceberg.expressions import AlwaysTrue, And, EqualTo, GreaterThanOrEqual, Or

from kappa import lake, lake_branch, sqlfiles
from kappa.config import load_config
from kappa.flinkenv import JobOptions, lake_write_hint, sql_params
from kappa.replay import lake_compare
from kappa.replay.versions import lake_ref

pytestmark = pytest.mark.unit


def test_a_whole_log_replay_starts_its_branch_empty() -> None:
    for spec in (lake.TELEMETRY, lake.DEVICE_AGG_1M, lake.DEAD_LETTERS):
        assert lake_branch.recomputed_rows(spec, {0: 0, 1: 0}, whole_log=True) == AlwaysTrue()


def test_a_later_start_drops_the_appended_rows_from_its_offsets_on_and_keeps_the_windows() -> None:
    rows = lake_branch.recomputed_rows(lake.TELEMETRY, {1: 7, 0: 5}, whole_log=False)
    want = Or(And(EqualTo("kafka_partition", 0), GreaterThanOrEqual("kafka_offset", 5)),
              And(EqualTo("kafka_partition", 1), GreaterThanOrEqual("kafka_offset", 7)))
    assert rows == want
    assert lake_branch.recomputed_rows(lake.DEAD_LETTERS, {0: 3}, whole_log=False) == And(
        EqualTo("kafka_partition", 0), GreaterThanOrEqual("kafka_offset", 3))
    # upserted by key: the replay's windows replace main's, nothing is deleted first
    assert lake_branch.recomputed_rows(lake.DEVICE_AGG_1M, {0: 3}, whole_log=False) is None
    assert lake_branch.offset_keyed(lake.TELEMETRY) and not lake_branch.offset_keyed(lake.DEVICE_AGG_1M)


def test_refs_and_hints() -> None:
    assert lake_ref("live") == "main" and lake_ref("v2") == "replay_v2"
    assert lake_write_hint(None) == ""
    assert lake_write_hint("replay_v2") == " /*+ OPTIONS('branch'='replay_v2') */"
    with pytest.raises(ValueError, match="branch"):
        lake_write_hint("x'); DROP")


def test_a_replay_inserts_into_the_live_tables_branch_and_other_runs_into_their_suffix() -> None:
    config = load_config(profile="test")

    def inserts(options: JobOptions) -> str:
        params = sql_params(config, options)
        return "\n".join(sqlfiles.load("archive/inserts.sql", params, sql_dir=config.sql_dir))

    ns = f"`{config.lake.catalog}`.`{config.lake.namespace}`"
    replay = inserts(JobOptions(with_secrets=False, output_suffix="_v2", lake_suffix="", lake_branch="replay_v2"))
    assert f"INSERT INTO {ns}.`telemetry` /*+ OPTIONS('branch'='replay_v2') */" in replay
    assert f"INSERT INTO {ns}.`device_agg_1m` /*+ OPTIONS('branch'='replay_v2') */" in replay
    test_run = inserts(JobOptions(with_secrets=False, output_suffix="_t1"))
    assert f"INSERT INTO {ns}.`telemetry_t1`\nSELECT" in test_run and "OPTIONS" not in test_run


def test_offsets_predicate() -> None:
    assert lake_compare.offsets_predicate({0: 2, 1: 5}, {0: 4, 1: 5}) == \
        "(kafka_partition = 0 AND kafka_offset >= 2 AND kafka_offset < 4)"
    assert lake_compare.offsets_predicate({0: 4}, {0: 4}) == "false"
    assert lake_compare.row_key(lake.TELEMETRY) == ("kafka_partition", "kafka_offset")
    assert lake_compare.row_key(lake.DEVICE_AGG_1M) == lake.DEVICE_AGG_1M.key


@pytest.mark.parametrize(("kind", "a", "b", "differs"), [
    ("double", 1.0, 1.0 + 1e-12, False),  # the last bits of a sum in another order
    ("double", 1.0, 1.001, True),
    ("double", None, None, False),
    ("double", None, 1.0, True),
    ("double", float("nan"), float("nan"), False),
    ("double", float("inf"), float("inf"), False),
    ("string", "a", "a", False),
    ("string", "a", None, True),
    ("long", 3, 4, True),
])
def test_column_differs_as_the_postgres_comparison_does(kind: str, a: object, b: object, differs: bool) -> None:
    sql_type = {"double": "DOUBLE", "string": "VARCHAR", "long": "BIGINT"}[kind]
    conn = duckdb.connect()
    conn.execute(f"CREATE TABLE a (x {sql_type}); CREATE TABLE b (x {sql_type})")
    conn.execute("INSERT INTO a VALUES (?)", [a])
    conn.execute("INSERT INTO b VALUES (?)", [b])
    row = conn.execute(f"SELECT {lake_compare.column_differs('x', kind)} FROM a, b").fetchone()
    assert row is not None and bool(row[0]) is differs
