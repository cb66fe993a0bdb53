"""Pure parts of `kappa replay`: offsets strings, version names, source options, the comparison."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from kappa.cli import replay as cli
from kappa.replay import ReplayError, compare, offsets, promote, runner, versions, watch

pytestmark = pytest.mark.unit


def test_offsets_round_trip_in_the_connector_format() -> None:
    given = {2: 30, 0: 5, 1: 0}
    text = offsets.format_offsets(given)
    assert text == "partition:0,offset:5;partition:1,offset:0;partition:2,offset:30"
    assert offsets.parse_offsets(text) == given
    assert offsets.parse_offsets(" partition:3, offset:7 ;") == {3: 7}
    assert offsets.parse_offsets("") == {}
    with pytest.raises(ValueError, match="bad offsets item"):
        offsets.parse_offsets("partition:0;offset:1")


def test_source_options_read_exactly_the_range() -> None:
    text = offsets.source_options({0: 1, 1: 2}, {0: 10, 1: 20})
    assert text.startswith(",\n")
    assert "'scan.startup.mode' = 'specific-offsets'" in text
    assert "'scan.startup.specific-offsets' = 'partition:0,offset:1;partition:1,offset:2'" in text
    assert "'scan.bounded.mode' = 'specific-offsets'" in text
    assert "'scan.bounded.specific-offsets' = 'partition:0,offset:10;partition:1,offset:20'" in text


def test_range_total_counts_records_between_start_and_end() -> None:
    rng = offsets.OffsetRange("t", {0: 5, 1: 0}, {0: 15, 1: 3})
    assert rng.total == 13


@pytest.mark.parametrize("name", ["v2", "v10", "fix_late_2", "a"])
def test_good_versions(name: str) -> None:
    assert versions.version_suffix(name) == "_" + name


@pytest.mark.parametrize("name", ["", "V2", "2v", "v-2", "v 2", "x" * 40, "v2;drop"])
def test_bad_versions_are_refused(name: str) -> None:
    with pytest.raises(ReplayError):
        versions.check_version(name)


def test_live_is_no_suffix_and_not_a_replay_name() -> None:
    assert versions.version_suffix("live") == ""
    assert versions.check_version("live", allow_live=True) == "live"
    with pytest.raises(ReplayError, match="live"):
        versions.check_version("live")


def test_parse_time_ms_naive_is_utc() -> None:
    assert offsets.parse_time_ms("1970-01-01T00:00:01") == 1000
    assert offsets.parse_time_ms("1970-01-01T00:00:01Z") == 1000
    assert offsets.parse_time_ms("1970-01-01T01:00:00+01:00") == 0
    with pytest.raises(ReplayError):
        offsets.parse_time_ms("yesterday")


def _row(device: str, window: int, **values: object) -> tuple[tuple[str, int], dict[str, object]]:
    return (device, window), {"device_id": device, "window_start": window, "updated_at": object(), **values}


def test_compare_counts_only_in_one_differing_and_columns_over_the_overlap() -> None:
    left = dict([_row("a", 0, n=1, avg=1.0), _row("a", 1, n=2, avg=2.0), _row("b", 1, n=3, avg=None),
                 _row("a", 2, n=4, avg=4.0), _row("a", 9, n=9, avg=9.0)])
    right = dict([_row("z", -5, n=0, avg=0.0),  # before the overlap: not compared
                  _row("a", 0, n=1, avg=1.0 * (1 + 1e-12)),  # equal within 1e-9
                  _row("a", 1, n=5, avg=2.5), _row("b", 1, n=3, avg=0.0),
                  _row("c", 2, n=1, avg=1.0)])
    diff = compare.compare_rows("t", left, right)
    assert (diff.rows_left, diff.rows_right) == (5, 5)
    assert (diff.window_from, diff.window_to) == (0, 2)
    assert diff.only_left == 1  # ("a", 2); ("a", 9) is past the overlap
    assert diff.only_right == 1  # ("c", 2)
    assert diff.differing == 2 and diff.same == 1
    assert diff.columns == {"avg": 2, "n": 1}
    assert diff.top_columns() == "avg(2), n(1)"
    assert diff.differences == 4
    table = compare.format_diffs("live", "v2", [diff])
    assert "only live" in table and "avg(2)" in table


def test_compare_identical_and_disjoint() -> None:
    rows = dict([_row("a", 0, x=1.5), _row("b", 0, x=None)])
    same = compare.compare_rows("t", rows, dict(rows))
    assert same.differences == 0 and same.same == 2
    apart = compare.compare_rows("t", dict([_row("a", 0)]), dict([_row("a", 5)]))
    assert apart.window_from is None and apart.differences == 0
    empty = compare.compare_rows("t", {}, rows)
    assert (empty.rows_left, empty.rows_right, empty.differences) == (0, 2, 0)


def test_values_equal_relative_tolerance() -> None:
    assert compare.values_equal(1e6, 1e6 + 1e-4)
    assert not compare.values_equal(1.0, 1.0 + 1e-6)
    assert not compare.values_equal(None, 0.0)
    assert compare.values_equal(None, None)
    assert compare.values_equal(float("nan"), float("nan"))
    assert compare.values_equal("x", "x") and not compare.values_equal(3, 4)


def test_progress_line_counts_done_per_partition() -> None:
    progress = watch.Progress(offsets.OffsetRange("t", {0: 10, 1: 0}, {0: 20, 1: 10}), started=0.0)
    line = progress.line({0: 15, 1: 10}, now=5.0)
    assert "p0:5/10" in line and "p1:10/10" in line and "15/20" in line and "3 records/s" in line
    assert "ETA 2s" in line
    assert "no checkpoint" in progress.line({}, now=1.0)


def test_compare_names_the_keys_that_differ() -> None:
    left = dict([_row("a", 0, n=1), _row("a", 1, n=2), _row("b", 1, n=3)])
    right = dict([_row("a", 0, n=1), _row("a", 1, n=5), _row("c", 1, n=3)])
    diff = compare.compare_rows("t", left, right)
    assert diff.differing_keys == {("a", 1)}
    assert diff.only_left_keys == {("b", 1)} and diff.only_right_keys == {("c", 1)}


def test_follow_on_job_starts_unbounded_at_the_replay_end(tmp_path: Path) -> None:
    import shlex
    from datetime import datetime

    from kappa.config import load_config

    v2 = versions.Version("aggregate", "v2", "telemetry", {0: 0, 1: 0}, {0: 7, 1: 9}, "earliest", None,
                        "promoted", datetime(2026, 1, 1), None, None)
    options = promote.follow_on_options(v2)
    assert not options.bounded and options.output_suffix == "_v2"
    assert options.extra["telemetry_topic"] == "telemetry"
    text = options.extra["source_options"]
    assert "'scan.startup.specific-offsets' = 'partition:0,offset:7;partition:1,offset:9'" in text
    assert "bounded" not in text
    assert offsets.source_options({0: 7}, {0: 9}).startswith(offsets.startup_options({0: 7}))
    default = promote.follow_on_command(load_config(profile="local", environ={}), v2)
    argv = shlex.split(default)
    assert argv[:3] == ["kappa", "submit", "aggregate"] and "--bounded" not in argv
    assert argv[argv.index("--output-suffix") + 1] == "_v2" and f"source_options={text}" in argv
    assert "--lake-suffix=" in argv  # the Iceberg tables' main, which `promote` moved to the version's branch
    changed = promote.follow_on_command(load_config(profile="local", environ={"KAPPA_PATHS__SQL_DIR": str(tmp_path)}),
                                       v2)
    assert shlex.split(changed)[0] == f"KAPPA_PATHS__SQL_DIR={tmp_path}"


def test_follow_options_start_at_the_captured_start_with_no_end() -> None:
    rng = offsets.OffsetRange("t", {0: 3, 1: 0}, {0: 10, 1: 20})
    follow = runner.replay_options(rng, "_v2", {"watermark_delay_s": "30"}, parallelism=2, follow=True)
    assert not follow.bounded and follow.output_suffix == "_v2" and follow.parallelism == 2
    assert follow.extra["telemetry_topic"] == "t" and follow.extra["watermark_delay_s"] == "30"
    assert follow.extra["source_options"] == offsets.startup_options({0: 3, 1: 0})
    assert "bounded" not in follow.extra["source_options"]
    bounded = runner.replay_options(rng, "_v2")
    assert bounded.bounded and bounded.extra["source_options"] == offsets.source_options(rng.start, rng.end)


def test_caught_up_when_every_partition_committed_the_captured_end() -> None:
    rng = offsets.OffsetRange("t", {0: 0, 1: 5, 2: 4}, {0: 10, 1: 5, 2: 8})
    assert not offsets.caught_up(rng, {})  # nothing committed yet
    assert not offsets.caught_up(rng, {0: 10, 2: 7})
    assert offsets.caught_up(rng, {0: 10, 2: 8})  # partition 1 is empty: nothing to wait for
    assert offsets.caught_up(rng, {0: 12, 1: 9, 2: 8})  # a live job reads on past the end
    assert offsets.caught_up(offsets.OffsetRange("t", {0: 0}, {0: 0}), {})


def test_follow_needs_the_cluster() -> None:
    from kappa.config import load_config

    with pytest.raises(ReplayError, match="cluster"):
        runner.run_replay(load_config(profile="local", environ={}), "aggregate", "v2",
                          offsets.OffsetRange("t", {0: 0}, {0: 1}), follow=True)


def test_follow_flag_parses_and_drop_has_cancel_job() -> None:
    def params(command: click.Command, argv: list[str]) -> dict[str, object]:
        return command.make_context(command.name or "", argv).params

    args = params(cli.run, ["aggregate", "--as", "v2", "--follow"])
    assert args["follow"] and not args["cluster"]  # --follow implies the cluster in `kappa replay run`
    assert not params(cli.drop, ["aggregate", "v2"])["cancel_job"]
    assert params(cli.drop, ["aggregate", "v2", "--cancel-job"])["cancel_job"]


def test_a_version_follows_when_it_has_a_job() -> None:
    from datetime import datetime

    fields = ("aggregate", "v2", "t", {0: 0}, {0: 7}, "earliest", None)
    bounded = versions.Version(*fields, "finished", datetime(2026, 1, 1), None, None)
    following = versions.Version(*fields, "following", datetime(2026, 1, 1), None, None, job_id="ab" * 16)
    assert not bounded.follows and following.follows and not following.promoted


JAVA_TRACE = """org.apache.flink.runtime.JobException: Recovery is suppressed by FailureRateRestartBackoffTimeStrategy
\tat org.apache.flink.runtime.executiongraph.failover.ExecutionFailureHandler.handleFailure(X.java:219)
Caused by: org.apache.flink.table.api.TableRuntimeException: Error when casting
\t... 5 more
Caused by: java.lang.NumberFormatException: For input string: 'dev-1'. Invalid character found.
\tat org.apache.flink.table.data.binary.BinaryStringDataUtil.numberFormatExceptionFor(BinaryStringDataUtil.java:585)
"""


def test_exception_summary_is_the_root_cause() -> None:
    assert watch.exception_summary(JAVA_TRACE) == \
        "java.lang.NumberFormatException: For input string: 'dev-1'. Invalid character found."
    assert watch.exception_summary("java.lang.IllegalStateException: boom\n\tat x.y(Z.java:1)") == \
        "java.lang.IllegalStateException: boom"
    assert watch.exception_summary("") == ""


def test_health_counts_restarts_from_the_history_when_the_metric_lags() -> None:
    entries = [{"exceptionName": "java.lang.NumberFormatException", "stacktrace": JAVA_TRACE, "timestamp": 2},
               {"exceptionName": "java.lang.NumberFormatException", "stacktrace": "older", "timestamp": 1}]
    restarting = watch.health_from_rest({"state": "RESTARTING"}, {"exceptionHistory": {"entries": entries}},
                                        [{"id": "numRestarts", "value": "0"}])
    assert restarting.restarts == 2 and restarting.last_exception is not None
    assert restarting.last_exception.startswith("java.lang.NumberFormatException")
    failed = watch.health_from_rest({"state": "FAILED"}, {"exceptionHistory": {"entries": entries}})
    assert failed.restarts == 1  # the last failure was not followed by a restart
    metric = watch.health_from_rest({"state": "RUNNING"}, {"exceptionHistory": {"entries": []}},
                                    [{"id": "numRestarts", "value": "3"}])
    assert (metric.restarts, metric.last_exception) == (3, None)
    healthy = watch.health_from_rest({"state": "RUNNING"}, {})
    assert (healthy.restarts, healthy.last_exception, healthy.describe()) == (0, None, "")


def test_progress_line_shows_restarts_and_the_last_exception() -> None:
    progress = watch.Progress(offsets.OffsetRange("t", {0: 0}, {0: 10}), started=0.0)
    health = watch.JobHealth("RESTARTING", 2, "java.lang.NumberFormatException: For input string: 'x'")
    line = progress.line({0: 4}, now=2.0, health=health)
    assert "p0:4/10" in line and "job RESTARTING" in line
    assert line.endswith("[restarts 2, last exception: java.lang.NumberFormatException: For input string: 'x']")
    assert "restarts" not in progress.line({0: 4}, now=2.0, health=watch.JobHealth("RUNNING"))


def test_compare_without_a_range_column_compares_every_row() -> None:
    left = {("a",): {"alert_id": "a", "first_event_time": 1, "severity": "WARNING"},
            ("b",): {"alert_id": "b", "first_event_time": 9, "severity": "WARNING"}}
    right = {("a",): {"alert_id": "a", "first_event_time": 1, "severity": "CRITICAL"},
             ("c",): {"alert_id": "c", "first_event_time": 50, "severity": "WARNING"}}
    every = compare.compare_rows("alerts", left, right, range_column=None)
    assert (every.only_left_keys, every.only_right_keys, every.differing_keys) == ({("b",)}, {("c",)}, {("a",)})
    assert every.compared_range == "all rows" and dict(every.columns) == {"severity": 1}
    ranged = compare.compare_rows("alerts", left, right, range_column="first_event_time")
    assert ranged.compared_range == "first_event_time 1 .. 9"  # c is after the range left covers
    assert (ranged.only_left, ranged.only_right, ranged.differing) == (1, 0, 1)


def test_run_refuses_set_without_a_value() -> None:
    assert cli.run.make_context("run", ["alerts", "--as", "v2", "--max-restarts", "2"]).params["max_restarts"] == 2
    with pytest.raises(click.BadParameter, match="NAME=VALUE"):
        cli.run.make_context("run", ["alerts", "--as", "v2", "--set", "watermark_delay_s"])


def test_compare_sees_a_changed_device_model_and_a_version_made_before_the_column() -> None:
    """Two versions' device_agg_1m rows (SELECT *) are compared column by column: a window whose model
    differs (a device's model changed in the registry between the runs) differs in device_model only; a
    version whose table predates the column (no device_model key) equals one whose model is NULL."""
    left = dict([_row("a", 0, n=1, device_model="M-1"), _row("a", 1, n=2, device_model=None), _row("b", 1, n=3)])
    right = dict([_row("a", 0, n=1, device_model="M-2"), _row("a", 1, n=2, device_model=None),
                  _row("b", 1, n=3, device_model=None)])
    diff = compare.compare_rows("device_agg_1m", left, right)
    assert (diff.differing_keys, diff.columns, diff.same) == ({("a", 0)}, {"device_model": 1}, 2)
