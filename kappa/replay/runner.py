"""Running a replay: the job over exactly a captured offset range, into the outputs its OUTPUTS declare
with the version's suffix, on a local MiniCluster or the standalone cluster, watched until it ends
(or, with --follow, until it has caught up). A job that keeps failing ends the replay: the version is
marked failed with the job's exception, the job is cancelled, and the caller gets a ReplayError.

A bounded replay of a job with Iceberg tables writes them on the branch `replay_<version>` of the live
tables (kappa.lake_branch forks it first): main never sees a replay's commits, failed or not."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from kappa import jobrunner, lake_branch, outputs, waiting
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.replay import ReplayError
from kappa.replay.offsets import (
    OffsetRange,
    caught_up,
    committed_offsets,
    forget_group,
    format_offsets,
    source_options,
    startup_options,
)
from kappa.replay.versions import Version, get_version, lake_ref, record_job, register, set_state, version_suffix
from kappa.replay.watch import ENDED, JobHealth, Progress, exception_summary, fetch_health, minicluster_rest_url

_CANCEL_TIMEOUT_S = 120.0


def replay_options(rng: OffsetRange, suffix: str, extra: Mapping[str, str] | None = None,
                   parallelism: int | None = None, follow: bool = False) -> JobOptions:
    """The job's options for a replay of `rng`: bounded by its end, or (`follow`) from its start with no end."""
    source = startup_options(rng.start) if follow else source_options(rng.start, rng.end)
    return JobOptions(bounded=not follow, output_suffix=suffix, parallelism=parallelism, extra={
        **(extra or {}), "telemetry_topic": rng.topic, "source_options": source})


def _status_name(status: Any) -> str:
    return str(getattr(status, "name", status)).rsplit(".", 1)[-1]


class _LocalRun:
    """A replay in a MiniCluster inside this process: the state from PyFlink's JobClient, restarts and
    exceptions from the MiniCluster's REST API while the job lives."""

    def __init__(self, config: Config, job: str, options: JobOptions) -> None:
        self.result = jobrunner.run_local(config, job, options, wait=False)
        self.client = self.result.get_job_client()
        self.job_id = str(self.client.get_job_id()) if self.client is not None else "local"
        self.rest_url = minicluster_rest_url(self.client) if self.client is not None else None
        self.last = JobHealth("CREATED")

    def health(self) -> JobHealth:
        # the per-job MiniCluster shuts down when the job ends: then ask the result (finish)
        try:
            state = _status_name(self.client.get_job_status().result()) if self.client is not None else "ENDED"
        except Exception:  # noqa: BLE001 - py4j error once the MiniCluster is gone
            state = "ENDED"
        seen = fetch_health(self.rest_url, self.job_id, timeout_s=5) if self.rest_url and state not in ENDED else None
        self.last = seen or JobHealth(state, self.last.restarts, self.last.last_exception, self.last.stacktrace)
        return self.last

    def finish(self, state: str) -> None:
        try:
            self.result.wait()  # returns at once when the job finished; raises its failure otherwise
        except Exception as exc:
            raise ReplayError(f"the replay's job failed: {exception_summary(str(exc))}") from exc

    def cancel(self) -> None:
        try:
            if self.client is not None:
                self.client.cancel().result()
        except Exception:  # noqa: BLE001 - already gone
            pass


class _ClusterRun:
    """A replay submitted (detached) to the standalone cluster, watched through its REST API."""

    def __init__(self, config: Config, job: str, options: JobOptions) -> None:
        self.config = config
        self.job_id = jobrunner.submit(config, job, options)

    def health(self) -> JobHealth:
        found = fetch_health(self.config.flink.rest_url, self.job_id)
        # no answer: job_state raises the reason (cluster down, job unknown)
        return found or JobHealth(jobrunner.job_state(self.config, self.job_id))

    def finish(self, state: str) -> None:
        if state != "FINISHED":
            reason = self.health().last_exception or "no exception recorded"
            raise ReplayError(f"Flink job {self.job_id} ended {state}: {reason}")

    def cancel(self) -> None:
        """A replay given up (failing job, timeout, Ctrl-C) must not keep writing into a version marked failed."""
        try:
            if jobrunner.job_state(self.config, self.job_id) not in ENDED:
                jobrunner.cancel(self.config, self.job_id)
                jobrunner.wait_for_state(self.config, self.job_id, {"CANCELED", "FAILED", "FINISHED"},
                                         timeout_s=_CANCEL_TIMEOUT_S)
        except jobrunner.JobError:
            pass


def _watch(run: _LocalRun | _ClusterRun, rng: OffsetRange, committed: Callable[[], dict[int, int]],
           progress: Progress, *, follow: bool, interval_s: float, timeout_s: float, max_restarts: int | None,
           say: Callable[[str], None], advance: Callable[[int, int], None] | None = None) -> JobHealth:
    """Wait until the job ends (bounded) or its committed offsets reach the captured end (`follow`),
    printing a progress line every `interval_s` (or moving `advance(done, total)`, a progress bar, with a
    line only while the job has restarts or an exception to report). Raises ReplayError when the job restarted
    `max_restarts` times, ended before catching up (`follow`), or ran past `timeout_s`."""
    deadline = waiting.Deadline(timeout_s)
    last = 0.0
    while True:
        health = run.health()
        if health.state in ENDED:
            if follow:
                run.finish(health.state)  # raises the exception of a FAILED or CANCELED job
                raise ReplayError(f"Flink job {run.job_id} ended {health.state} before catching up")
            return health
        if max_restarts is not None and health.restarts >= max_restarts:
            raise ReplayError(f"Flink job {run.job_id} keeps failing ({health.restarts} restarts): "
                              f"{health.last_exception or 'no exception recorded'}")
        due = time.monotonic() - last >= interval_s
        offsets = committed() if follow or due else {}
        if follow and caught_up(rng, offsets):
            say("  " + progress.line(offsets, health=health))
            return health
        if deadline.passed:
            raise ReplayError(f"replay still {health.state} after {timeout_s:.0f}s"
                              + (f" ({health.describe()})" if health.describe() else ""))
        if due:
            last = time.monotonic()
            if advance is None or health.describe():
                say("  " + progress.line(offsets, health=health))
            if advance is not None:
                advance(sum(progress.done(offsets).values()), rng.total)
        time.sleep(0.5)


def run_replay(config: Config, job: str, version: str, rng: OffsetRange, *, cluster: bool = False,
               follow: bool = False, extra: Mapping[str, str] | None = None, parallelism: int | None = None,
               interval_s: float = 5.0, timeout_s: float = 24 * 3600,
               max_restarts: int | None = None, log: Callable[[str], None] | None = None,
               advance: Callable[[int, int], None] | None = None) -> Version:
    """Create the version's outputs (the job's OUTPUTS, suffixed), record it, run the job (SQL of
    `config.sql_dir`) over exactly `rng` locally or on the standalone cluster, and mark it
    finished/failed (with the job's exception).

    With `follow` (cluster only) the job has no end: this returns once it has caught up with
    `rng.end`, marks the version `following` and leaves the job running as the version's live job.
    A job that writes the Iceberg archive writes the branch `replay_<version>` of the live tables
    (kappa.lake_branch), or with `follow` the version's own tables (`<table><suffix>`). A job
    that restarted `max_restarts` times (default: job.restart_max_failures) is cancelled.
    `advance(done, total)`, when given, shows the records read (committed offsets against the range's
    ends) instead of the periodic progress lines."""
    if follow and not cluster:
        raise ReplayError("--follow leaves the version's job running: it needs the standalone cluster (--cluster)")
    say = log or (lambda m: print(m, file=sys.stderr, flush=True))
    suffix = version_suffix(version)
    declared = outputs.job_outputs(job)
    from kappa.stack.postgres import connect

    with connect(config) as conn:
        register(conn, job, version, rng)
        declared.create_tables(conn, suffix)
    options = replay_options(rng, suffix, extra, parallelism, follow)
    # a bounded replay writes the live Iceberg tables' branch replay_<version>, never main (kappa.lake_branch);
    # a --follow version keeps running after it, so it keeps versioned tables <name>_<version>
    branch = lake_ref(version) if declared.lake and not follow else None
    if branch is not None:
        options = dataclasses.replace(options, lake_suffix="", lake_branch=branch)
    group = f"{config.job.group_prefix}-{job}{suffix}"
    forget_group(config, group)
    progress = Progress(rng)
    partitions = sorted(rng.end)
    say(f"replay {job} as {version}: {rng.topic} {format_offsets(rng.start)} -> "
        f"{format_offsets(rng.end) + (' and on (--follow)' if follow else '')} "
        f"({rng.total} records), SQL {config.sql_dir}, outputs {', '.join(declared.table_names(suffix))}"
        f"{f', Iceberg branch {branch}' if branch else ''}, "
        f"{'cluster ' + config.flink.rest_url if cluster else 'local MiniCluster'}")
    run: _LocalRun | _ClusterRun | None = None
    try:
        if branch is not None:
            lake_branch.fork(config, declared.lake, branch, rng.start, whole_log=rng.from_spec == "earliest",
                             say=lambda m: say("  " + m))
        run = _ClusterRun(config, job, options) if cluster else _LocalRun(config, job, options)
        if isinstance(run, _ClusterRun):
            say(f"submitted as Flink job {run.job_id}")
            if follow:
                with connect(config) as conn:
                    record_job(conn, job, version, run.job_id)
        health = _watch(run, rng, lambda: committed_offsets(config, group, rng.topic, partitions), progress,
                        follow=follow, interval_s=interval_s, timeout_s=timeout_s,
                        max_restarts=config.job.restart_max_failures if max_restarts is None else max_restarts,
                        say=say, advance=advance)
        if not follow:
            run.finish(health.state)
    except BaseException as exc:
        if run is not None:
            run.cancel()
        with connect(config) as conn:
            set_state(conn, job, version, "failed", str(exc)[:2000])
        raise
    elapsed = time.monotonic() - progress.started
    with connect(config) as conn:
        set_state(conn, job, version, "following" if follow else "finished")
        done = get_version(conn, job, version)
    rate = f"{rng.total} records in {elapsed:.1f}s ({rng.total / max(elapsed, 1e-3):.0f} records/s)"
    if follow:
        say(f"replay {job} {version} caught up with {format_offsets(rng.end)}: {rate}; Flink job {done.job_id} "
            f"keeps running as {version}'s live job (state following); compare with "
            f"`kappa replay compare {job} live {version}`, then `kappa replay promote {job} {version}`")
    else:
        say(f"replay {job} {version} finished: {rate}; compare with `kappa replay compare {job} live {version}`")
    return done
