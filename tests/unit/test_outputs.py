"""Each job's OUTPUTS declaration: what replays create, compare, promote and drop. Checked against the
job's own sink SQL and the migrations, so a declaration cannot drift from what the job writes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kappa import jobrunner, outputs
from kappa.config import PROJECT_ROOT, Config, load_config
from kappa.flinkenv import JobOptions, flink_settings

pytestmark = pytest.mark.unit

JOBS = ("aggregate", "alerts", "smoke")
_SQL_FILE = re.compile(r"""["']([\w/]+\.sql)["']""")
_SINK_NAME = re.compile(r"""'(?:table-name|topic)'\s*=\s*'([^']*\$\{output_suffix\}[^']*)'""")


@pytest.fixture
def config() -> Config:
    return load_config(profile="local", environ={})


def _sink_names(job: str) -> tuple[set[str], set[str]]:
    """(tables, topic templates) the job's SQL files write with ${output_suffix}: every versioned sink."""
    source = (jobrunner.JOBS_DIR / f"{job}.py").read_text()
    tables, topics = set(), set()
    for relative in _SQL_FILE.findall(source):
        text = (PROJECT_ROOT / "sql" / relative).read_text()
        for statement in text.split(";"):
            for name in _SINK_NAME.findall(statement):
                if "'table-name'" in statement and f"'table-name' = '{name}'" in " ".join(statement.split()):
                    tables.add(name.replace("${output_suffix}", ""))
                else:
                    topics.add(name)
    return tables, topics


@pytest.mark.parametrize("job", JOBS)
def test_a_declaration_lists_exactly_the_sinks_of_its_sql(job: str) -> None:
    declared = outputs.job_outputs(job)
    tables, topics = _sink_names(job)
    assert set(declared.table_names()) == tables
    assert {t.template for t in declared.topics} == topics


def _latest_view_columns(view: str) -> tuple[str, str]:
    """(columns, table) of the last migration that (re)defines `view`; table '%s' when the migration keeps
    the view on the table it reads then (the live one or a promoted version's, e.g. 0012: `FROM %s`)."""
    found = None
    pattern = re.compile(rf"CREATE (?:OR REPLACE )?VIEW {view} AS\s+SELECT(.*?)\sFROM (\w+;|%s\s)", re.S)
    for path in sorted((PROJECT_ROOT / "db" / "migrations").glob("*.sql")):
        if ".timescale." in path.name:
            continue
        for match in pattern.finditer(path.read_text()):
            found = (" ".join(match.group(1).split()), match.group(2).strip().rstrip(";"))
    assert found is not None, f"no migration defines {view}"
    return found


@pytest.mark.parametrize("job", JOBS)
def test_reader_views_select_what_their_migration_selects(job: str) -> None:
    for view in outputs.job_outputs(job).views:
        columns, table = _latest_view_columns(view.name)
        assert (" ".join(view.columns.split()), view.table) == (columns, view.table if table == "%s" else table)


def test_the_alerting_job_writes_alerts_and_its_topic_only(config: Config) -> None:
    alerts = outputs.job_outputs("alerts")
    assert alerts.table_names("_v2") == ["alerts_v2"]
    assert alerts.topic_names(config, "_v2") == ["alerts_v2"]
    assert [v.name for v in alerts.views] == ["v_alerts"]
    (table,) = alerts.compared
    assert table.key == ("alert_id",) and table.range_column == "first_event_time"


def test_the_aggregation_job_outputs_with_a_suffix_and_its_input_topic(config: Config) -> None:
    aggregate = outputs.job_outputs("aggregate")
    assert aggregate.table_names("_v2") == ["device_agg_1m_v2", "site_agg_5m_v2", "duplicates_1m_v2",
                                            "late_readings_v2", "dead_letters_v2"]
    assert aggregate.topic_names(config, "_v2", "telemetry-x") == [
        "aggregates-1m_v2", "telemetry-dlq_v2", "telemetry-x-late_v2"]
    assert aggregate.topic_names(config) == ["aggregates-1m", "telemetry-dlq", "telemetry-late"]  # live
    assert [t.name for t in aggregate.compared] == ["device_agg_1m", "site_agg_5m", "duplicates_1m"]
    assert {v.name for v in aggregate.views} == {"v_device_1m", "v_site_5m"}
    assert [t.name for t in aggregate.lake] == ["telemetry", "device_agg_1m", "dead_letters"]


def test_no_declaration_shares_a_table_or_topic_with_another_job(config: Config) -> None:
    seen: dict[str, str] = {}
    for job in JOBS:
        declared = outputs.job_outputs(job)
        names = [f"table {t}" for t in declared.table_names()] + [f"topic {t}" for t in declared.topic_names(config)]
        for name in names:
            assert name not in seen, f"{name}: {job} and {seen.get(name)}"
            seen[name] = job


@pytest.mark.parametrize("suffix", ["v2", "_V2", "_v-2", "_" + "x" * 41, "_v2;drop"])
def test_bad_suffixes_are_refused(suffix: str) -> None:
    with pytest.raises(ValueError, match="suffix"):
        outputs.job_outputs("alerts").table_names(suffix)


def test_a_view_must_read_one_of_the_jobs_tables() -> None:
    with pytest.raises(ValueError, match="not one of the job's tables"):
        outputs.JobOutputs(tables=(outputs.Table("a", ("k",)),), views=(outputs.ReaderView("v_b", "b", "k"),))


def test_a_view_definition_reads_the_versioned_table() -> None:
    view = outputs.ReaderView("v_alerts", "alerts", "\n  alert_id,\n  rule_version")
    text = view.definition("_v2").as_string(None)
    assert text == 'CREATE OR REPLACE VIEW "v_alerts" AS SELECT alert_id, rule_version FROM "alerts_v2"'


def test_a_job_without_outputs_cannot_be_replayed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(jobrunner.JobError, match="unknown job"):
        outputs.job_outputs("nope")
    monkeypatch.setattr(jobrunner, "load_job", lambda name: object())
    with pytest.raises(outputs.NoOutputsError, match="declares no OUTPUTS"):
        outputs.job_outputs("aggregate")


def test_jobs_reuse_objects_unless_the_config_says_not(config: Config) -> None:
    assert config.flink.object_reuse is True
    assert flink_settings(config, JobOptions())["pipeline.object-reuse"] == "true"
    off = load_config(profile="local", environ={"KAPPA_FLINK__OBJECT_REUSE": "false"})
    assert flink_settings(off, JobOptions())["pipeline.object-reuse"] == "false"
    # a run's own Flink options still win (JobOptions.flink, as bench/reporter_overhead.py passes its reporter)
    own = JobOptions(flink={"pipeline.object-reuse": "false"})
    assert flink_settings(config, own)["pipeline.object-reuse"] == "false"


def test_jobs_restart_a_bounded_number_of_times(config: Config) -> None:
    settings = flink_settings(config, JobOptions())
    assert settings["restart-strategy.type"] == "failure-rate"
    assert settings["restart-strategy.failure-rate.max-failures-per-interval"] == str(config.job.restart_max_failures)
    assert settings["restart-strategy.failure-rate.failure-rate-interval"] == f"{config.job.restart_interval_s} s"
    changed = load_config(profile="local", environ={"KAPPA_JOB__RESTART_MAX_FAILURES": "7"})
    assert flink_settings(changed, JobOptions())["restart-strategy.failure-rate.max-failures-per-interval"] == "7"
    template = (PROJECT_ROOT / "deploy" / "flink" / "config.yaml").read_text()
    assert "type: failure-rate" in template and "${restart_max_failures}" in template
