"""Running a job from `jobs/` both ways from one code path, and managing jobs on the cluster.

`kappa run JOB` builds the job in this process (PyFlink starts a local MiniCluster); `kappa submit JOB`
hands the same job file to `flink run`, whose client calls the same `build`. Cluster management
(list, stop with savepoint, cancel) goes through the JobManager's REST API.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import requests

from kappa import bounded, waiting
from kappa.config import PROJECT_ROOT, Config, get_config
from kappa.errors import KappaError
from kappa.flinkenv import JobContext, JobOptions
from kappa.stack.flink import flink_env, pyflink_home

if TYPE_CHECKING:
    from pyflink.table import StatementSet, TableResult

JOBS_DIR = PROJECT_ROOT / "jobs"
BuildFn = Callable[[JobContext], "StatementSet"]


class JobError(KappaError):
    """A job could not be found, submitted or controlled."""


def available_jobs() -> list[str]:
    return sorted(p.stem for p in JOBS_DIR.glob("*.py") if not p.stem.startswith("_"))


def load_job(name: str) -> ModuleType:
    if name not in available_jobs():
        raise JobError(f"unknown job {name!r}; jobs in {JOBS_DIR}: {', '.join(available_jobs())}")
    module = importlib.import_module(f"jobs.{name}")
    if not hasattr(module, "build"):
        raise JobError(f"jobs/{name}.py has no build(ctx) function")
    return module


def execute(build: BuildFn, config: Config, options: JobOptions, wait: bool) -> TableResult:
    """Build the job and start it on whatever Flink this process is attached to."""
    ctx = JobContext(config, options, job_name=Path(inspect.getfile(build)).stem)
    result = build(ctx).execute()
    if wait:
        result.wait()
        bounded.commit(config, ctx.bounded_reads)
    elif ctx.bounded_reads:  # detached: committed by whoever sees the job FINISHED (wait_for_state)
        client = result.get_job_client()
        if client is not None:
            bounded.save(config, str(client.get_job_id()), ctx.bounded_reads)
    return result


def run_local(config: Config, name: str, options: JobOptions, wait: bool = True) -> TableResult:
    """Run a job in a local MiniCluster inside this process (development, tests)."""
    return execute(load_job(name).build, config, options, wait)


def job_arguments(options: JobOptions) -> list[str]:
    """The job script's own arguments for `options` (inverse of `parse_job_arguments`)."""
    argv = []
    if options.bounded:
        argv.append("--bounded")
    if options.output_suffix:
        argv += ["--output-suffix", options.output_suffix]
    if options.parallelism:
        argv += ["--parallelism", str(options.parallelism)]
    if not options.lake:
        argv.append("--no-lake")
    if options.lake_suffix is not None:
        argv.append(f"--lake-suffix={options.lake_suffix}")  # one token: an empty argument may not survive `flink run`
    if options.lake_branch:
        argv += ["--lake-branch", options.lake_branch]
    for key, value in options.extra.items():
        argv += ["--set", f"{key}={value}"]
    return argv


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bounded", action="store_true",
                        help="read Kafka up to the end offsets at start, then finish")
    parser.add_argument("--output-suffix", default="", help="versioned outputs, e.g. _v2 (replays)")
    parser.add_argument("--parallelism", type=int, help="override flink.parallelism")
    parser.add_argument("--no-lake", action="store_true",
                        help="leave out the Iceberg archive's inserts (jobs that write one)")
    parser.add_argument("--lake-suffix", help="the Iceberg tables' suffix (default: --output-suffix)")
    parser.add_argument("--lake-branch", help="write the Iceberg tables' branch of this name (replays)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="extra SQL placeholder value (repeatable)")


def options_from_args(args: argparse.Namespace) -> JobOptions:
    extra = dict(item.split("=", 1) for item in args.set)
    return JobOptions(bounded=args.bounded, output_suffix=args.output_suffix,
                      parallelism=args.parallelism, extra=extra, lake=not args.no_lake,
                      lake_suffix=args.lake_suffix, lake_branch=args.lake_branch)


def main_for(build: BuildFn, argv: Sequence[str] | None = None) -> None:
    """Entry point of a job script, for `flink run -py jobs/NAME.py` (and `python jobs/NAME.py`)."""
    parser = argparse.ArgumentParser(description="run this kappa-iot job")
    add_job_arguments(parser)
    args = parser.parse_args(argv)
    detached = os.environ.get("KAPPA_DETACHED") == "1"
    execute(build, get_config(), options_from_args(args), wait=not detached)


# --- the standalone cluster -------------------------------------------------------------------

@dataclass(frozen=True)
class ClusterJob:
    job_id: str
    name: str
    state: str
    start_time_ms: int


def _failure_excerpt(output: str, lines: int = 25) -> str:
    """What a failed `flink run` said: the job script's Python traceback when there is one (the Java
    stack trace of PythonDriver that follows it only says "Python process exits with code: 1"),
    otherwise the output's last lines."""
    text = output.splitlines()
    starts = [i for i, line in enumerate(text) if line.startswith("Traceback (most recent call last)")]
    if starts:
        traceback = text[starts[-1]:]
        end = next((i for i, line in enumerate(traceback) if line.startswith(("org.apache.flink", "SLF4J"))),
                   len(traceback))
        return "\n".join(traceback[:end][-40:])
    return "\n".join(text[-lines:])


def submit(config: Config, name: str, options: JobOptions, savepoint: str | None = None) -> str:
    """Submit `jobs/NAME.py` to the standalone cluster (detached); returns the Flink job id. A savepoint
    older than what the job's Iceberg sinks already committed is refused (kappa.savepoints)."""
    load_job(name)
    if savepoint and options.lake:
        from kappa import savepoints

        savepoints.check_restore(config, name, options.output_suffix, savepoint)
    flink = config.flink
    env = flink_env(config)
    env["KAPPA_DETACHED"] = "1"
    env["KAPPA_PROFILE"] = config.profile
    # the client process plans the job from SQL files: the ones of *this* config, not its environment's
    env["KAPPA_PATHS__SQL_DIR"] = str(config.sql_dir)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    argv = [
        "bash", str(pyflink_home() / "bin" / "flink"), "run",
        "-m", f"{flink.host}:{flink.rest_port}",
        "-d",
        *(["-s", savepoint] if savepoint else []),
        "-pyexec", sys.executable,
        "-pyclientexec", sys.executable,
        "-pyfs", ",".join(str(PROJECT_ROOT / d) for d in ("kappa", "jobs", "udfs")),
        "-py", str(JOBS_DIR / f"{name}.py"),
        *job_arguments(options),
    ]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=PROJECT_ROOT)
    match = re.search(r"JobID ([0-9a-f]{32})", result.stdout + result.stderr)
    if result.returncode != 0 or not match:
        raise JobError(f"flink run failed for job {name} (exit {result.returncode}):\n"
                       f"{_failure_excerpt(result.stdout + result.stderr)}")
    return match.group(1)


def _rest(config: Config, method: str, path: str, **kwargs: object) -> dict:
    url = f"{config.flink.rest_url}{path}"
    try:
        response = requests.request(method, url, timeout=10, **kwargs)  # type: ignore[arg-type]
    except requests.ConnectionError as exc:
        raise JobError(f"Flink REST API not reachable at {config.flink.rest_url}: is the cluster up? "
                       "(kappa stack up)") from exc
    if response.status_code >= 400:
        raise JobError(f"Flink REST {method} {path} -> {response.status_code}: {response.text[:300]}")
    return dict(response.json()) if response.content else {}


def list_jobs(config: Config) -> list[ClusterJob]:
    overview = _rest(config, "GET", "/jobs/overview")
    return [
        ClusterJob(j["jid"], j["name"], j["state"], int(j.get("start-time", 0)))
        for j in sorted(overview.get("jobs", []), key=lambda j: -int(j.get("start-time", 0)))
    ]


def resolve_job(config: Config, name_or_id: str) -> ClusterJob:
    """A cluster job by id, or the running job of exactly that name (`aggregate` is the live job,
    `aggregate_v2` a replayed version's: a prefix must never pick the other one)."""
    jobs = list_jobs(config)
    for job in jobs:
        if job.job_id == name_or_id:
            return job
    running = [j for j in jobs if j.name == name_or_id and j.state in ("RUNNING", "CREATED", "RESTARTING")]
    if len(running) > 1:
        ids = ", ".join(j.job_id for j in running)
        raise JobError(f"{len(running)} running jobs are named {name_or_id!r} ({ids}): give the job id")
    if running:
        return running[0]
    raise JobError(f"no running job is named {name_or_id!r}; see `kappa jobs` for names and ids")


def job_details(config: Config, job_id: str) -> dict:
    return _rest(config, "GET", f"/jobs/{job_id}")


def job_state(config: Config, job_id: str) -> str:
    return str(job_details(config, job_id).get("state", "UNKNOWN"))


def wait_for_state(config: Config, job_id: str, states: set[str], timeout_s: float,
                   progress: Callable[[str], None] | None = None) -> str:
    """Poll the job until it reaches one of `states` (or a terminal failure)."""
    last = ""

    def reached() -> str | None:
        nonlocal last
        state = job_state(config, job_id)
        if state != last and progress:
            progress(state)
        last = state
        if state in states:
            return state
        if state in ("FAILED", "CANCELED"):
            exceptions = _rest(config, "GET", f"/jobs/{job_id}/exceptions")
            root = str(exceptions.get("root-exception", ""))[:2000]
            raise JobError(f"job {job_id} ended {state}:\n{root}")
        return None

    state = waiting.wait_until(reached, timeout_s=timeout_s, interval_s=1.0, what=f"job {job_id}",
                               on_timeout=lambda _: JobError(f"job {job_id} still {last} after {timeout_s:.0f}s"))
    if state == "FINISHED":  # a bounded run: its groups end where it read (kappa.bounded)
        bounded.commit_saved(config, job_id)
    return state


def stop_with_savepoint(config: Config, job_id: str, timeout_s: float = 120.0, drain: bool = False) -> str:
    """Stop gracefully, taking a savepoint; returns the savepoint path.

    `drain` first advances event time to the end (every open window fires), for a job that will
    not be resumed; without it, open windows stay in the savepoint for the next run.
    """
    trigger = _rest(config, "POST", f"/jobs/{job_id}/stop", json={"targetDirectory": _savepoint_dir(config),
                                                                   "drain": drain})
    return _savepoint_location(config, job_id, trigger["request-id"], timeout_s)


def trigger_savepoint(config: Config, job_id: str, timeout_s: float = 120.0) -> str:
    """Take a savepoint of a running job and leave it running; returns the savepoint path."""
    trigger = _rest(config, "POST", f"/jobs/{job_id}/savepoints",
                    json={"target-directory": _savepoint_dir(config), "cancel-job": False})
    return _savepoint_location(config, job_id, trigger["request-id"], timeout_s)


def _savepoint_dir(config: Config) -> str:
    return (config.data_dir / "flink" / "savepoints").resolve().as_uri()


def _savepoint_location(config: Config, job_id: str, request_id: str, timeout_s: float) -> str:
    def completed() -> dict[str, Any] | None:
        status = _rest(config, "GET", f"/jobs/{job_id}/savepoints/{request_id}")
        return dict(status.get("operation", {})) if status.get("status", {}).get("id") == "COMPLETED" else None

    operation = waiting.wait_until(completed, timeout_s=timeout_s, interval_s=1.0, what=f"savepoint of {job_id}",
                                   on_timeout=lambda _: JobError(
                                       f"savepoint of job {job_id} did not complete within {timeout_s:.0f}s"))
    if "failure-cause" in operation:
        raise JobError(f"savepoint failed: {operation['failure-cause'].get('stack-trace', '')[:1500]}")
    return str(operation["location"])


def completed_checkpoints(config: Config, job_id: str) -> int:
    return int(_rest(config, "GET", f"/jobs/{job_id}/checkpoints").get("counts", {}).get("completed", 0))


def cancel(config: Config, job_id: str) -> None:
    _rest(config, "PATCH", f"/jobs/{job_id}?mode=cancel")
