"""The migration files and the planner: flavour selection, version numbering, twins, and the
definitions the two flavours must share (checked for real on both backends by
tests/integration/test_migrations_postgres.py and test_migrations_timescale.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kappa import db

pytestmark = pytest.mark.unit

FOLDER = db.MIGRATIONS_DIR
_CREATE = re.compile(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?P<kind>TABLE|MATERIALIZED\s+VIEW|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>\w+)"
    r"(?P<partition>\s+PARTITION\s+OF)?",
    re.IGNORECASE,
)


def _strip_comments(text: str) -> str:
    return re.sub(r"--[^\n]*", "", text)


def _objects(path: Path) -> dict[str, str]:
    """name -> kind of the tables, views and materialized views a file creates (not partitions)."""
    found = {}
    for m in _CREATE.finditer(_strip_comments(path.read_text())):
        if not m.group("partition"):
            found[m.group("name")] = re.sub(r"\s+", " ", m.group("kind").upper())
    return found


def _aliases(path: Path, view: str) -> list[str]:
    """Output column names of a rollup: the `AS name` ending each line of its SELECT list."""
    text = _strip_comments(path.read_text())
    body = re.search(rf"CREATE MATERIALIZED VIEW {view}\b.*?\bSELECT\b(?P<select>.*?)\bFROM\b", text, re.S)
    assert body, f"{path.name}: no materialized view {view}"
    names = []
    for item in re.split(r",\s*\n", body.group("select").strip()):
        alias = re.search(r"\bAS\s+(\w+)\s*$", item.strip())
        names.append(alias.group(1) if alias else item.strip())
    return names


def _table_columns(path: Path, table: str) -> list[str]:
    text = _strip_comments(path.read_text())
    body = re.search(rf"CREATE TABLE {table} \((?P<cols>.*?)\n\)", text, re.S)
    assert body, f"{path.name}: no table {table}"
    return [line.split()[0] for line in body.group("cols").splitlines() if line.strip()]


def _shared() -> list[Path]:
    return [p for p in FOLDER.glob("*.sql") if p.name.count(".") == 1]


def _twins() -> list[tuple[Path, Path]]:
    timescale = sorted(FOLDER.glob("*.timescale.sql"))
    return [(t, t.with_name(t.name.replace(".timescale.sql", ".postgres.sql"))) for t in timescale]


def test_flavour_selection_picks_the_right_files() -> None:
    for timescale, wanted, unwanted in (
        (True, ".timescale.sql", ".postgres.sql"),
        (False, ".postgres.sql", ".timescale.sql"),
    ):
        names = [m.path.name for m in db.plan(FOLDER, timescale)]
        assert not any(n.endswith(unwanted) for n in names)
        assert sum(n.endswith(wanted) for n in names) == len(_twins()) > 0
        # Unflavoured files are in both plans.
        assert {n for n in names if n.count(".") == 1} == {p.name for p in _shared()}


def test_versions_are_unique_and_contiguous_from_one() -> None:
    for timescale in (True, False):
        versions = [m.version for m in db.plan(FOLDER, timescale)]
        assert versions == list(range(1, len(versions) + 1))
    assert [m.version for m in db.plan(FOLDER, True)] == [m.version for m in db.plan(FOLDER, False)]


def test_every_flavoured_file_has_its_twin() -> None:
    timescale = {p.name.removesuffix(".timescale.sql") for p in FOLDER.glob("*.timescale.sql")}
    postgres = {p.name.removesuffix(".postgres.sql") for p in FOLDER.glob("*.postgres.sql")}
    assert timescale == postgres and timescale


def test_twins_create_the_same_tables_and_rollups_with_the_same_columns() -> None:
    for ts, pg in _twins():
        assert _objects(ts) == _objects(pg), (ts.name, pg.name)
        for name, kind in _objects(ts).items():
            if kind == "TABLE":
                assert _table_columns(ts, name) == _table_columns(pg, name), name
            elif kind == "MATERIALIZED VIEW":
                assert _aliases(ts, name) == _aliases(pg, name), name


def test_query_views_live_only_in_shared_files() -> None:
    """v_* views are defined once, in an unflavoured file, so both backends get the same text."""
    for path in FOLDER.glob("*.sql"):
        views = {n for n in _objects(path) if n.startswith("v_")}
        if path.name.count(".") > 1:
            assert not views, f"{path.name} defines {views}; put query views in a shared migration"
    shared = set().union(*(_objects(p) for p in _shared()))
    assert {"v_device_1m", "v_device_1h", "v_device_1d", "v_site_5m", "v_alerts"} <= shared


def test_bad_names_and_duplicate_versions_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0002_b.timescale.sql").write_text("SELECT 1;")
    (tmp_path / "0002_b.postgres.sql").write_text("SELECT 1;")
    assert [m.path.name for m in db.plan(tmp_path, True)] == ["0001_a.sql", "0002_b.timescale.sql"]
    assert [m.path.name for m in db.plan(tmp_path, False)] == ["0001_a.sql", "0002_b.postgres.sql"]
    assert all(m.flavoured == (m.version == 2) for m in db.plan(tmp_path, True))
    (tmp_path / "0002_c.sql").write_text("SELECT 1;")
    with pytest.raises(db.MigrationError, match="two migrations with version 0002"):
        db.plan(tmp_path, False)
    (tmp_path / "0002_c.sql").unlink()
    (tmp_path / "3_bad.sql").write_text("SELECT 1;")
    with pytest.raises(db.MigrationError, match="badly named"):
        db.plan(tmp_path, False)


def test_maintenance_sql_quotes_its_input() -> None:
    assert db.refresh_statements("timescale") == [
        f"CALL refresh_continuous_aggregate('{name}', NULL, NULL)" for name in db.ROLLUPS
    ]
    assert db.refresh_statements("postgres")[-1] == "SELECT kappa_refresh_rollups()"
    (statement,) = db.retention_statements("postgres", "1 day'); DROP TABLE alerts; --", ("device_agg_1m",))
    assert "'1 day''); DROP TABLE alerts; --'::interval" in statement
    (statement,) = db.retention_statements("timescale", "90 days", ("site_agg_5m",))
    assert statement == "SELECT drop_chunks('site_agg_5m', older_than => '90 days'::interval)::text"
