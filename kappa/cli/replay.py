"""`kappa replay run | compare | promote | versions | drop`: options and printing only; the work is done
by kappa.replay's modules."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kappa.cli.common import pass_config, set_option
from kappa.cli.progress import reporting

if TYPE_CHECKING:
    from kappa.config import Config

@click.group(help="reprocess the log into versioned outputs, compare, promote")
def replay() -> None:
    pass


@replay.command(help="run JOB over the topic's offsets now into its outputs suffixed _VERSION")
@click.argument("job")
@click.option("--as", "version", required=True, metavar="VERSION", help="e.g. v2 -> tables *_v2")
@click.option("--from", "from_spec", default="earliest", show_default=True, metavar="earliest|ISO-TIMESTAMP")
@click.option("--to", "to_spec", metavar="ISO-TIMESTAMP", help="default: the end offsets at start")
@click.option("--topic", help="input topic (default: kafka.telemetry_topic)")
@click.option("--cluster", is_flag=True, help="run on the standalone cluster (default: local)")
@click.option("--follow", is_flag=True,
              help="unbounded from the same start (implies --cluster): return once caught up with the end "
                   "offsets at start, leaving the job running as the version's live job")
@click.option("--parallelism", type=int)
@click.option("--max-restarts", type=int, metavar="N",
              help="give up (cancel the job, mark the version failed) once the job restarted N times "
                   "(default: job.restart_max_failures)")
@set_option("SQL placeholder value for this version, e.g. watermark_delay_s=30 (repeatable)")
@pass_config
def run(config: Config, job: str, version: str, from_spec: str, to_spec: str | None, topic: str | None,
        cluster: bool, follow: bool, parallelism: int | None, max_restarts: int | None,
        extra: dict[str, str]) -> int:
    from kappa.replay import offsets, runner, versions

    versions.check_version(version)
    rng = offsets.capture_range(config, topic or config.kafka.telemetry_topic, from_spec, to_spec)
    with reporting(f"replay {job} {version}") as (say, advance):
        runner.run_replay(config, job, version, rng, cluster=cluster or follow, follow=follow, extra=extra,
                          parallelism=parallelism, max_restarts=max_restarts, log=say,
                          advance=advance)
    return 0


@replay.command(help="compare two versions' outputs ('live' = no suffix), and their Iceberg archives "
                     "('live' = main, a version = its branch replay_VERSION)")
@click.argument("job")
@click.argument("left", metavar="V1")
@click.argument("right", metavar="V2")
@click.option("--csv", "csv_path", metavar="PATH", help="also write the comparison as CSV")
@pass_config
def compare(config: Config, job: str, left: str, right: str, csv_path: str | None) -> int:
    from kappa import outputs
    from kappa.replay import ReplayError, lake_compare
    from kappa.replay import compare as comparing
    from kappa.stack.postgres import connect

    declared = outputs.job_outputs(job)
    with connect(config) as conn:
        diffs = comparing.compare_versions(conn, job, left, right)
        click.echo(comparing.format_diffs(left, right, diffs))
        if declared.lake:
            try:
                lake_diffs = lake_compare.compare_lake(config, conn, job, left, right, declared.lake)
            except ReplayError as exc:
                click.echo(f"Iceberg archive not compared: {exc}", err=True)
            else:
                click.echo(f"\nIceberg archive ({config.lake.namespace}): {lake_compare.lake_ref(left)} vs "
                           f"{lake_compare.lake_ref(right)}")
                click.echo(comparing.format_diffs(left, right, lake_diffs))
                diffs += [dataclasses.replace(d, table=f"iceberg:{d.table}") for d in lake_diffs]
    if csv_path:
        comparing.write_csv(Path(csv_path), left, right, diffs)
        click.echo(f"written {csv_path}", err=True)
    return 0


@replay.command(help="switch the job's reader views to VERSION ('live' switches back) after moving main of its "
                     "Iceberg tables to the version's branch (a fast-forward; refused if main moved on since the "
                     "fork, unless --replace)")
@click.argument("job")
@click.argument("version")
@click.option("--replace", is_flag=True,
              help="set main of the Iceberg tables to the branch even if main moved on since the fork (stop the "
                   "live job first: main's commits since the fork leave its history)")
@pass_config
def promote(config: Config, job: str, version: str, replace: bool) -> int:
    from kappa.replay import offsets, versions
    from kappa.replay import promote as promoting
    from kappa.replay.versions import LIVE
    from kappa.stack.postgres import connect

    with connect(config) as conn:
        previous = next((v.version for v in versions.versions(conn, job) if v.promoted), LIVE)
        for line in promoting.promote_lake(config, conn, job, version, replace=replace):
            click.echo(f"iceberg {line}")
        switched = promoting.promote(conn, job, version)
        chosen = None if version == LIVE else versions.get_version(conn, job, version)
    click.echo(f"{', '.join(switched) or 'no reader views'} now read "
               f"{'the live tables' if chosen is None else version}")
    if chosen is not None and chosen.job_id is not None:
        state = promoting.cluster_job_state(config, chosen.job_id)
        if state != "RUNNING":
            click.echo(f"WARNING: {version}'s Flink job {chosen.job_id} is {state}: its tables do not advance",
                       err=True)
        click.echo(f"{version}'s job {chosen.job_id} is already live ({state}): no follow-on job to start; "
                   + promoting.stop_hint(config, job, previous), err=True)
    if version == LIVE and outputs_lake(job):
        click.echo("the Iceberg tables' main is not moved back (a promotion is not undone there; time travel "
                   "reads the snapshots before it while they are kept)", err=True)
    elif chosen is not None and chosen.job_id is None:
        order = " (before: both would write main of the Iceberg tables)" if outputs_lake(job) else ""
        click.echo(f"the {version} tables end at the replay's end offsets {offsets.format_offsets(chosen.end)}; "
                   "to keep them current, start its live job there (with the SQL it was replayed with), "
                   f"then stop the old live job{order}:\n  " + promoting.follow_on_command(config, chosen), err=True)
    return 0


def outputs_lake(job: str) -> bool:
    from kappa import outputs

    return bool(outputs.job_outputs(job).lake)


@replay.command("versions", help="list replay versions")
@click.argument("job", required=False)
@pass_config
def versions_(config: Config, job: str | None) -> int:
    from kappa.replay import offsets, promote, versions
    from kappa.stack.postgres import connect

    with connect(config) as conn:
        found = versions.versions(conn, job)
    if not found:
        click.echo("no replay versions (readers see the live tables)")
        return 0
    for v in found:
        promoted = "*" if v.promoted else " "
        span = f"{v.from_spec}..{v.to_spec or 'end at start'}" + (" and on (--follow)" if v.follows else "")
        live = f" job {v.job_id} {promote.cluster_job_state(config, v.job_id)}" if v.job_id else ""
        click.echo(f"{promoted} {v.job:<10} {v.version:<12} {v.state:<9} {v.topic} "
                   f"{offsets.format_offsets(v.start)} -> {offsets.format_offsets(v.end)} ({span}) "
                   f"created {v.created_at:%Y-%m-%d %H:%M:%S}{live}")
        if v.state == "failed" and v.error:
            click.echo(f"    failed: {v.error.splitlines()[0][:300]}")
    if not any(v.promoted for v in found):
        click.echo("(no version promoted: readers see the live tables)")
    return 0


@replay.command(help="drop a version's tables, output topics and archives")
@click.argument("job")
@click.argument("version")
@click.option("--cancel-job", is_flag=True, help="cancel the version's running --follow job first (refused otherwise)")
@pass_config
def drop(config: Config, job: str, version: str, cancel_job: bool) -> int:
    from kappa.replay import promote
    from kappa.stack.postgres import connect

    with connect(config) as conn:
        gone = promote.drop(config, conn, job, version, cancel_job=cancel_job)
    click.echo("dropped: " + (", ".join(gone) or "nothing but the record"))
    return 0

