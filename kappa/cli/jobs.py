"""`kappa run | submit | jobs | stop | cancel`: one job, two ways to run it, and cluster control."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import click

from kappa.cli.common import job_options, make_job_options, pass_config
from kappa.config import PROJECT_ROOT

if TYPE_CHECKING:
    from kappa.config import Config

WAIT_POLL_S = 2.0
# the job scripts (kappa.jobrunner.available_jobs, without importing the job runner for a help text)
_JOBS_HELP = ", ".join(sorted(p.stem for p in (PROJECT_ROOT / "jobs").glob("*.py") if not p.stem.startswith("_")))


@click.command(help=f"run a job in a local MiniCluster (development, tests). JOB: {_JOBS_HELP}")
@click.argument("job", metavar="JOB")
@job_options
@pass_config
def run(config: Config, job: str, bounded: bool, output_suffix: str, parallelism: int | None, no_lake: bool,
        lake_suffix: str | None, lake_branch: str | None, extra: dict[str, str]) -> int:
    from kappa import jobrunner

    options = make_job_options(bounded, output_suffix, parallelism, no_lake, extra, lake_suffix, lake_branch)
    click.echo(f"running job {job} in a local MiniCluster{' (bounded)' if options.bounded else ''} ...")
    result = jobrunner.run_local(config, job, options, wait=True)
    client = result.get_job_client()
    click.echo(f"job {job} finished" + (f" (id {client.get_job_id()})" if client else ""))
    return 0


@click.command(help=f"submit a job to the standalone Flink cluster. JOB: {_JOBS_HELP}")
@click.argument("job", metavar="JOB")
@click.option("--from-savepoint", metavar="PATH", help="restore state from this savepoint")
@click.option("--wait", is_flag=True,
              help="follow the job to its end state (with --bounded: until it has read to the end); "
                   "exit 1 with the job's exception if it did not finish")
@click.option("--timeout", type=float, metavar="SECONDS",
              help="with --wait: give up (exit 1, job left running) after this long")
@job_options
@pass_config
def submit(config: Config, job: str, from_savepoint: str | None, wait: bool, timeout: float | None, bounded: bool,
           output_suffix: str, parallelism: int | None, no_lake: bool, lake_suffix: str | None,
           lake_branch: str | None, extra: dict[str, str]) -> int:
    from kappa import jobrunner

    options = make_job_options(bounded, output_suffix, parallelism, no_lake, extra, lake_suffix, lake_branch)
    job_id = jobrunner.submit(config, job, options, savepoint=from_savepoint)
    click.echo(f"submitted {job}: job id {job_id}")
    click.echo(f"web UI: {config.flink.rest_url}/#/job/running/{job_id}/overview")
    if not wait:
        return 0
    return follow(config, job, job_id, timeout)


def follow(config: Config, name: str, job_id: str, timeout_s: float | None) -> int:
    """Print the job's state changes (with restarts and the last exception) until it ends: 0 when it
    FINISHED, 1 with its exception when it ended otherwise or did not end within `timeout_s`."""
    from kappa import waiting
    from kappa.jobrunner import JobError
    from kappa.replay.watch import ENDED, JobHealth, fetch_health

    last = ""

    def ended() -> JobHealth | None:
        nonlocal last
        health = fetch_health(config.flink.rest_url, job_id)
        if health is None:
            raise JobError(f"the cluster no longer answers for job {job_id} ({config.flink.rest_url})")
        line = f"job {name}: {health.state}" + (f" ({health.describe()})" if health.describe() else "")
        if line != last:
            click.echo(f"  {line}")
            last = line
        return health if health.state in ENDED else None

    try:
        health = waiting.wait_until(ended, timeout_s=math.inf if timeout_s is None else timeout_s,
                                    interval_s=WAIT_POLL_S, what=f"job {name} to end")
    except waiting.WaitTimeout:
        click.echo(f"error: job {name} ({job_id}) still {last.split(': ', 1)[-1]} after {timeout_s:.0f}s; "
                   "left running", err=True)
        return 1
    if health.state == "FINISHED":
        from kappa import bounded

        bounded.commit_saved(config, job_id)  # a bounded run's groups end where it read
        return 0
    cause = health.last_exception or "no exception recorded"
    click.echo(f"error: job {name} ({job_id}) ended {health.state}: {cause}", err=True)
    return 1


@click.command(help="list the cluster's jobs with their state")
@pass_config
def jobs(config: Config) -> int:
    from kappa import jobrunner

    found = jobrunner.list_jobs(config)
    if not found:
        click.echo("no jobs on the cluster")
    for job in found:
        click.echo(f"{job.job_id}  {job.state:<10} {job.name}")
    return 0


@click.command(help="stop a cluster job gracefully. JOB: job id, or job name (its newest running job)")
@click.argument("job", metavar="JOB")
@click.option("--savepoint", is_flag=True, help="take a savepoint (print its path)")
@pass_config
def stop(config: Config, job: str, savepoint: bool) -> int:
    from kappa import jobrunner

    found = jobrunner.resolve_job(config, job)
    if savepoint:
        location = jobrunner.stop_with_savepoint(config, found.job_id)
        click.echo(f"stopped {found.job_id}; savepoint: {location}")
        click.echo(f"resume with: kappa submit JOB --from-savepoint {location}")
    else:
        jobrunner.cancel(config, found.job_id)
        click.echo(f"cancelled {found.job_id} (no savepoint requested)")
    return 0


@click.command(help="cancel a cluster job immediately (no savepoint). JOB: job id, or job name")
@click.argument("job", metavar="JOB")
@pass_config
def cancel(config: Config, job: str) -> int:
    from kappa import jobrunner

    found = jobrunner.resolve_job(config, job)
    jobrunner.cancel(config, found.job_id)
    click.echo(f"cancelled {found.job_id}")
    return 0
