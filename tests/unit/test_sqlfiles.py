from pathlib import Path

import pytest

from kappa import sqlfiles
from kappa.config import load_config

pytestmark = pytest.mark.unit


def test_render_fills_placeholders_and_masks_secrets() -> None:
    params = sqlfiles.SqlParams({"topic": "t1", "pg_password": "s3cret"}, {"pg_password"})
    text = "CREATE TABLE x WITH ('topic' = '${topic}', 'password' = '${pg_password}')"
    assert "'t1'" in sqlfiles.render(text, params) and "s3cret" in sqlfiles.render(text, params)
    printable = sqlfiles.render(text, params, printable=True)
    assert "s3cret" not in printable and sqlfiles.MASK in printable


def test_unknown_placeholder_names_file_and_placeholder() -> None:
    with pytest.raises(sqlfiles.SqlTemplateError, match=r"f\.sql: unknown placeholder\(s\) nope"):
        sqlfiles.render("SELECT '${nope}'", sqlfiles.SqlParams(), source="f.sql")


def test_comments_are_dropped_before_rendering_and_statements_split() -> None:
    text = "-- uses ${not_a_param}\nCREATE TABLE a (x INT);\n-- next\nINSERT INTO a\nSELECT 1;\n"
    statements = sqlfiles.split_statements(sqlfiles.render(sqlfiles.strip_comments(text), sqlfiles.SqlParams()))
    assert statements == ["CREATE TABLE a (x INT)", "INSERT INTO a\nSELECT 1"]


def test_every_sql_file_uses_only_known_placeholders() -> None:
    config = load_config(profile="local", environ={"KAPPA_PG_PASSWORD": "x"})
    known = sqlfiles.params_from_config(config, include_secrets=False).values.keys()
    files = sorted(sqlfiles.SQL_DIR.rglob("*.sql"))
    assert files, "no SQL files found"
    for path in files:
        used = sqlfiles.placeholders(sqlfiles.strip_comments(path.read_text()))
        assert used <= set(known), f"{path}: unknown {used - set(known)}"


def test_load_reads_the_given_sql_dir(tmp_path: Path) -> None:
    (tmp_path / "area").mkdir()
    (tmp_path / "area" / "view.sql").write_text("-- changed logic\nCREATE VIEW v AS SELECT '${topic}';\n")
    params = sqlfiles.SqlParams({"topic": "t2"})
    assert sqlfiles.load("area/view.sql", params, sql_dir=tmp_path) == ["CREATE VIEW v AS SELECT 't2'"]
    with pytest.raises(sqlfiles.SqlTemplateError, match="not found"):
        sqlfiles.load("area/view.sql", params)  # the default is the repository's sql/


def test_job_context_reads_the_configured_sql_dir(tmp_path: Path) -> None:
    from kappa.flinkenv import JobContext, JobOptions

    (tmp_path / "x.sql").write_text("SELECT '${output_suffix}';\n")
    config = load_config(profile="test", environ={"KAPPA_PATHS__SQL_DIR": str(tmp_path)})
    ctx = JobContext.__new__(JobContext)  # no Flink environment needed to read SQL
    ctx.config, ctx.params = config, sqlfiles.SqlParams({"output_suffix": "_v2"})
    ctx.options = JobOptions(with_secrets=False)
    assert ctx.statements("x.sql") == ["SELECT '_v2'"]
