"""The SQL files' headers (kappa/sqlheaders.py) say what their statements do, the resolution from them is
ordered and strict, and the jobs' stage declarations give the order the jobs have always run in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kappa import sqlheaders, sqltest, sqltest_runner
from kappa.config import PROJECT_ROOT
from kappa.flinkenv import JobOptions
from kappa.pipeline import Pipeline, Stage, Step
from kappa.sqlfiles import SQL_DIR
from kappa.sqlheaders import Header, SqlHeaderError, parse_header, resolve
from kappa.sqlrefs import placeholder_values, references

pytestmark = pytest.mark.unit

SQL_FILES = sorted(SQL_DIR.rglob("*.sql")) + sorted((PROJECT_ROOT / "bench" / "sql").rglob("*.sql"))


def _rendered(names: tuple[str, ...]) -> set[str]:
    """Header names with placeholders as the linter renders them (a name it has no value for: itself)."""
    values = placeholder_values()
    return {re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), m.group(1)), name) for name in names}


@pytest.mark.parametrize("path", SQL_FILES, ids=[str(p.relative_to(PROJECT_ROOT)) for p in SQL_FILES])
def test_header_matches_the_statements(path: Path) -> None:
    header = parse_header(str(path), path.read_text())
    found = references(path.read_text())
    assert _rendered(header.defines) == set(found.defines), "defines: the names its CREATE statements create"
    assert _rendered(header.reads) == set(found.reads), "reads: what it reads and does not define itself"
    assert _rendered(header.writes) == set(found.writes), "writes: the tables its INSERTs write"


def test_references_see_through_what_the_linter_cannot_parse() -> None:
    """MATCH_RECOGNIZE with a reluctant quantifier and a MAP<... NOT NULL> column are unparsable
    sections in sqlfluff 4.5 (the second runs on over the INSERT after it): the names in them still
    count, and the words of a comment are no names."""
    found = references("CREATE TEMPORARY VIEW v AS SELECT * FROM t MATCH_RECOGNIZE (PARTITION BY a ORDER BY b "
                       "MEASURES A.x AS x ONE ROW PER MATCH PATTERN (A B*? C) DEFINE A AS A.x > 1);\n"
                       "CREATE TABLE k (m MAP<STRING NOT NULL, DOUBLE NOT NULL>) WITH ('connector' = 'x');\n"
                       "-- a comment: the values come from the payload\n"
                       "INSERT INTO k SELECT m FROM u JOIN w FOR SYSTEM_TIME AS OF u.t AS x ON x.k = u.k;")
    assert (found.defines, set(found.reads), found.writes) == (("v", "k"), {"t", "u", "w"}, ("k",))


def test_header_format() -> None:
    text = "-- reads: a, b\n-- defines: -\n-- writes: x\n-- writes: y\n-- prose\nSELECT 1;\n-- reads: late\n"
    assert parse_header("f.sql", text) == Header("f.sql", ("a", "b"), (), ("x", "y"))
    with pytest.raises(SqlHeaderError, match="no '-- defines:' line"):
        parse_header("f.sql", "-- reads: a\nSELECT 1;\n-- defines: v\n")  # after the first statement: not a header


def _h(name: str, reads: str = "", defines: str = "") -> Header:
    return Header(name, tuple(reads.split()), tuple(defines.split()))


def test_resolve_walks_reads_in_header_order_and_stops_at_given_names() -> None:
    files = [_h("d.sql", "b c", "d"), _h("c.sql", "a", "c"), _h("b.sql", "a", "b b2"), _h("src.sql", "", "a")]
    assert [p.name for p in resolve(["d"], ["a"], files)] == ["b.sql", "c.sql", "d.sql"]
    assert [p.name for p in resolve(["d", "b2"], [], files)] == ["src.sql", "b.sql", "c.sql", "d.sql"]


def test_resolve_is_strict() -> None:
    with pytest.raises(SqlHeaderError, match="no SQL file or step defines 'x'"):
        resolve(["v"], [], [_h("v.sql", "x", "v")])
    with pytest.raises(SqlHeaderError, match="cycle"):
        resolve(["v"], [], [_h("v.sql", "w", "v"), _h("w.sql", "v", "w")])
    twice = [_h("one.sql", "", "late"), _h("two.sql", "", "late")]
    with pytest.raises(SqlHeaderError, match="defined by one.sql, two.sql"):
        resolve(["late"], [], twice)
    assert [p.name for p in resolve(["late"], [], twice, prefer=["two.sql"])] == ["two.sql"]
    step = Step("python", lambda ctx, statements: None, defines=("late",))
    assert resolve(["late"], [], [step, *twice]) == [step]  # a job's own step wins over the files


# The order each job ran its parts in when build() listed them by hand (before kappa.pipeline).
AGGREGATE = ["telemetry/functions.sql", "telemetry/source.sql", "telemetry/decode.sql", "telemetry/lateness.sql",
             "telemetry/dedup.sql", "device metadata versions", "telemetry/devices.sql", "aggregates/windows.sql",
             "aggregates/sinks.sql", "aggregates/inserts.sql"]
LAKE = ["iceberg tables", "archive/catalog.sql", "archive/inserts.sql"]
ALERTS = ["telemetry/functions.sql", "telemetry/source.sql", "telemetry/decode.sql", "telemetry/ontime.sql",
          "alerts/threshold_versions.sql", "alerts/thresholds.sql", "alerts/overheating.sql",
          "alerts/temperature_trend.sql", "alerts/vibration_then_heat.sql", "alerts/low_battery.sql",
          "alerts/device_silent_input.sql", "silence detector", "alerts/device_silent.sql", "alerts/alerts.sql",
          "cool-down", "alerts/raised.sql", "alerts/sinks.sql", "alerts/inserts.sql"]


def _order(pipeline: Pipeline, **options: bool) -> list[str]:
    return [part.name if isinstance(part, Step) else str(part)
            for _, part in pipeline.plan(SQL_DIR, JobOptions(**options))]


def test_jobs_run_their_parts_in_the_order_they_always_did() -> None:
    from jobs import aggregate, alerts, smoke

    assert _order(aggregate.PIPELINE) == AGGREGATE + LAKE
    assert _order(aggregate.PIPELINE, lake=False) == AGGREGATE
    assert _order(alerts.PIPELINE) == ALERTS
    assert _order(smoke.PIPELINE) == ["smoke/source.sql", "smoke/sink.sql", "smoke/windows.sql"]
    device_versions = next(step for step in aggregate.PIPELINE.steps if step.sql)
    assert device_versions.with_header(SQL_DIR).defines == ("device_metadata_versions",)


def test_a_swapped_source_and_sinks_get_the_logic_they_need() -> None:
    """A bench's JSON source and blackhole sinks on four views: the same logic files, no sink file."""
    from jobs import aggregate

    json_source = PROJECT_ROOT / "bench" / "sql" / "json_source.sql"
    blackholes = Step("blackholes", lambda ctx, statements: None,
                      reads=("device_windows_1m", "site_windows_5m", "duplicate_counts_1m", "telemetry_late"))
    pipeline = aggregate.PIPELINE.with_source(Stage("json", (json_source,))).with_sinks(Stage("bench", (blackholes,)))
    assert _order(pipeline)[1:] == [str(json_source), *AGGREGATE[3:8], "blackholes"]


def test_fixtures_without_files_resolve_them_from_the_headers() -> None:
    headers = sqlheaders.load_headers(SQL_DIR)
    resolved = {f.name: sqltest_runner.files_for(f, headers) for f in sqltest.fixtures() if f.files is None}
    assert resolved["alerts/overheating_fires"] == ["telemetry/ontime.sql", "alerts/thresholds.sql",
                                                    "alerts/overheating.sql"]
    assert resolved["telemetry/ontime_counts_changelog"] == ["telemetry/ontime.sql"]
    assert resolved["aggregates/ordinary_windows"] == ["telemetry/lateness.sql", "telemetry/dedup.sql",
                                                       "telemetry/devices.sql", "aggregates/windows.sql"]
