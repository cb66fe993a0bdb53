"""`kappa run | submit | jobs | stop | cancel`: one job, two ways to run it, and cluster control."""

from __future__ import annotations

import argparse
import sys
import time

from kappa import bounded, jobrunner
from kappa.config import Config
from kappa.jobrunner import JobError
from kappa.replay.watch import ENDED, fetch_health

WAIT_POLL_S = 2.0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    jobs_help = ", ".join(jobrunner.available_jobs())
    run = subparsers.add_parser("run", help="run a job in a local MiniCluster (development, tests)")
    run.add_argument("job", help=f"job name ({jobs_help})")
    jobrunner.add_job_arguments(run)
    run.set_defaults(func=_run)

    submit = subparsers.add_parser("submit", help="submit a job to the standalone Flink cluster")
    submit.add_argument("job", help=f"job name ({jobs_help})")
    submit.add_argument("--from-savepoint", metavar="PATH", help="restore state from this savepoint")
    submit.add_argument("--wait", action="store_true",
                        help="follow the job to its end state (with --bounded: until it has read to the end); "
                             "exit 1 with the job's exception if it did not finish")
    submit.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="with --wait: give up (exit 1, job left running) after this long")
    jobrunner.add_job_arguments(submit)
    submit.set_defaults(func=_submit)

    subparsers.add_parser("jobs", help="list the cluster's jobs with their state").set_defaults(func=_jobs)

    stop = subparsers.add_parser("stop", help="stop a cluster job gracefully")
    stop.add_argument("job", help="job id, or job name (newest running job with that name)")
    stop.add_argument("--savepoint", action="store_true", help="take a savepoint (print its path)")
    stop.set_defaults(func=_stop)

    cancel = subparsers.add_parser("cancel", help="cancel a cluster job immediately (no savepoint)")
    cancel.add_argument("job", help="job id, or job name")
    cancel.set_defaults(func=_cancel)


def _run(args: argparse.Namespace, config: Config) -> int:
    options = jobrunner.options_from_args(args)
    print(f"running job {args.job} in a local MiniCluster{' (bounded)' if options.bounded else ''} ...")
    result = jobrunner.run_local(config, args.job, options, wait=True)
    client = result.get_job_client()
    print(f"job {args.job} finished" + (f" (id {client.get_job_id()})" if client else ""))
    return 0


def _submit(args: argparse.Namespace, config: Config) -> int:
    options = jobrunner.options_from_args(args)
    job_id = jobrunner.submit(config, args.job, options, savepoint=args.from_savepoint)
    print(f"submitted {args.job}: job id {job_id}")
    print(f"web UI: {config.flink.rest_url}/#/job/running/{job_id}/overview")
    if not args.wait:
        return 0
    return _follow(config, args.job, job_id, args.timeout)


def _follow(config: Config, name: str, job_id: str, timeout_s: float | None) -> int:
    """Print the job's state changes (with restarts and the last exception) until it ends."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last = ""
    while deadline is None or time.monotonic() < deadline:
        health = fetch_health(config.flink.rest_url, job_id)
        if health is None:
            raise JobError(f"the cluster no longer answers for job {job_id} ({config.flink.rest_url})")
        line = f"job {name}: {health.state}" + (f" ({health.describe()})" if health.describe() else "")
        if line != last:
            print(f"  {line}", flush=True)
            last = line
        if health.state in ENDED:
            if health.state == "FINISHED":
                bounded.commit_saved(config, job_id)  # a bounded run's groups end where it read
                return 0
            cause = health.last_exception or "no exception recorded"
            print(f"error: job {name} ({job_id}) ended {health.state}: {cause}", file=sys.stderr)
            return 1
        time.sleep(WAIT_POLL_S)
    print(f"error: job {name} ({job_id}) still {last.split(': ', 1)[-1]} after {timeout_s:.0f}s; left running",
          file=sys.stderr)
    return 1


def _jobs(args: argparse.Namespace, config: Config) -> int:
    jobs = jobrunner.list_jobs(config)
    if not jobs:
        print("no jobs on the cluster")
    for job in jobs:
        print(f"{job.job_id}  {job.state:<10} {job.name}")
    return 0


def _stop(args: argparse.Namespace, config: Config) -> int:
    job = jobrunner.resolve_job(config, args.job)
    if args.savepoint:
        location = jobrunner.stop_with_savepoint(config, job.job_id)
        print(f"stopped {job.job_id}; savepoint: {location}")
        print(f"resume with: kappa submit JOB --from-savepoint {location}")
    else:
        jobrunner.cancel(config, job.job_id)
        print(f"cancelled {job.job_id} (no savepoint requested)")
    return 0


def _cancel(args: argparse.Namespace, config: Config) -> int:
    job = jobrunner.resolve_job(config, args.job)
    jobrunner.cancel(config, job.job_id)
    print(f"cancelled {job.job_id}")
    return 0
