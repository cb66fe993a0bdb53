"""Which cluster job `kappa stop/cancel NAME` picks (no cluster needed: the job list is given)."""

from __future__ import annotations

import argparse

import pytest

from kappa import jobrunner
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.jobrunner import ClusterJob, JobError

pytestmark = pytest.mark.unit

JOBS = [ClusterJob("id-v2", "aggregate_v2", "RUNNING", 3), ClusterJob("id-live", "aggregate", "RUNNING", 2),
        ClusterJob("id-old", "aggregate", "CANCELED", 1), ClusterJob("id-a1", "alerts", "RUNNING", 1),
        ClusterJob("id-a2", "alerts", "RUNNING", 2)]


@pytest.fixture(autouse=True)
def jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobrunner, "list_jobs", lambda config: JOBS)


def test_a_name_never_matches_a_versioned_job(test_config: Config) -> None:
    assert jobrunner.resolve_job(test_config, "aggregate").job_id == "id-live"
    assert jobrunner.resolve_job(test_config, "aggregate_v2").job_id == "id-v2"
    assert jobrunner.resolve_job(test_config, "id-old").job_id == "id-old"  # by id, whatever its state


def test_an_ambiguous_or_unknown_name_is_an_error(test_config: Config) -> None:
    with pytest.raises(JobError, match="2 running jobs are named 'alerts'"):
        jobrunner.resolve_job(test_config, "alerts")
    with pytest.raises(JobError, match="no running job is named 'aggreg'"):
        jobrunner.resolve_job(test_config, "aggreg")


@pytest.mark.parametrize("options", [
    JobOptions(),
    JobOptions(bounded=True, output_suffix="_v2", parallelism=2, extra={"telemetry_topic": "t-1"}, lake=False),
    JobOptions(bounded=True, output_suffix="_v2", lake_suffix="", lake_branch="replay_v2"),
])
def test_job_arguments_carry_every_option_to_the_cluster(options: JobOptions) -> None:
    """A job submitted to the cluster gets its options as arguments: every one must survive the trip."""
    parser = argparse.ArgumentParser()
    jobrunner.add_job_arguments(parser)
    assert jobrunner.options_from_args(parser.parse_args(jobrunner.job_arguments(options))) == options


def test_a_failed_flink_run_shows_the_job_scripts_python_error_not_only_the_java_trace() -> None:
    output = "\n".join([
        "Job has been submitted? no", "Traceback (most recent call last):", '  File "jobs/aggregate.py", line 78',
        "OSError: When getting information for key 'x': Couldn't connect to server",
        "org.apache.flink.client.program.ProgramAbortException: java.lang.RuntimeException: Python process exits",
        *[f"\tat org.apache.flink.Frame{i}" for i in range(40)]])
    excerpt = jobrunner._failure_excerpt(output)
    assert excerpt.splitlines()[0] == "Traceback (most recent call last):"
    assert excerpt.splitlines()[-1].startswith("OSError: When getting information")
    assert jobrunner._failure_excerpt("a\nb\nc", lines=2) == "b\nc"  # no traceback: the last lines
