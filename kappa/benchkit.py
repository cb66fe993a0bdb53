"""Plumbing shared by the scripts in bench/ (they import the installed package, never each other)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kappa.config import Config
    from kappa.pipeline import Pipeline

# What the aggregation job computes, each read by a blackhole in the benches that time its logic alone
AGGREGATE_VIEWS = ("device_windows_1m", "site_windows_5m", "duplicate_counts_1m", "telemetry_late")


def aggregate_into_blackholes() -> Pipeline:
    """The aggregation job from its Kafka source on, its outputs (dead letters included) discarded."""
    from jobs import aggregate
    from kappa.pipeline import blackholes

    return aggregate.PIPELINE.with_sinks(blackholes(*AGGREGATE_VIEWS, "telemetry_dead_letters"))


def time_bounded_run(config: Config, pipeline: Pipeline, topic: str, job_name: str) -> float:
    """Wall seconds of one bounded run of `pipeline` over `topic` in a local MiniCluster (build, execute,
    wait): callers time two input sizes and divide, so start-up drops out (a marginal rate)."""
    from kappa.flinkenv import JobContext, JobOptions

    started = time.perf_counter()
    ctx = JobContext(config, JobOptions(bounded=True, extra={"telemetry_topic": topic}), job_name=job_name)
    pipeline.build(ctx).execute().wait()
    return time.perf_counter() - started


def marginal_rate(small: int, large: int, small_s: float, large_s: float) -> float | None:
    """Extra records over extra seconds, or None when the larger input did not take longer (start-up
    noise larger than the work: the sizes are too close or too small for this machine's load)."""
    extra_s = large_s - small_s
    return (large - small) / extra_s if extra_s > 0 else None


def _jvm_children() -> list:
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() == "java":
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def jvm_cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process's JVM children: PyFlink's gateway, which
    hosts the local MiniCluster and so every task of a local job. On a shared machine a job's CPU time is
    not inflated by other processes' load the way its wall time is."""
    import psutil

    total = 0.0
    for jvm in _jvm_children():
        try:
            times = jvm.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


class ThreadCpu:
    """CPU seconds of the JVM threads whose name starts with `prefix` (Linux keeps a thread's first 15
    characters), e.g. "Flink-Metric-Reporter" for the thread that runs Flink's metric reporters.

    A local job's MiniCluster, and its threads, end with the job, taking their CPU counters along, so
    they are sampled every `interval_s` while the job runs, keeping each thread's highest reading: at
    most the last interval of a thread's life goes uncounted. The sampling runs in a child process, not
    in a thread of this one: py4j sends its garbage-collection commands from whichever thread Python's GC
    runs in, which opens a second gateway connection, and then the planner may run on a JVM thread that
    lacks Calcite's thread-local metadata provider (FLINK-36298: `NullPointerException:
    metadataHandlerProvider`, seen twice in two runs with a sampling thread). Use as a context manager."""

    def __init__(self, prefix: str, interval_s: float = 0.2) -> None:
        self.prefix, self.interval_s = prefix[:15], interval_s
        self.seconds = 0.0  # set when the `with` block ends
        self._child: subprocess.Popen[str] | None = None

    def __enter__(self) -> ThreadCpu:
        code = "import sys; from kappa.benchkit import _sample_threads; _sample_threads(*sys.argv[1:])"
        self._child = subprocess.Popen(
            [sys.executable, "-c", code, str(os.getpid()), self.prefix, str(self.interval_s)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._child.stdout is not None
        if self._child.stdout.readline().strip() != "ready":  # its first sample is the baseline
            raise RuntimeError("the thread CPU sampler did not start")
        return self

    def __exit__(self, *_: object) -> None:
        assert self._child is not None
        out, _err = self._child.communicate("stop\n", timeout=30)
        self.seconds = float(out.strip() or 0.0)


def _sample_threads(parent_pid: str, prefix: str, interval_s: str) -> None:
    """ThreadCpu's child: prints "ready" after its first sample, then the CPU seconds the matching
    threads of `parent_pid`'s JVM children used until a line arrives on stdin."""
    import select

    import psutil

    seen: dict[tuple[int, int], float] = {}

    def sample() -> None:
        try:
            children = psutil.Process(int(parent_pid)).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for jvm in children:
            try:
                if jvm.name() != "java":
                    continue
                threads = jvm.threads()
            except psutil.NoSuchProcess:
                continue
            for thread in threads:
                try:
                    name = Path(f"/proc/{jvm.pid}/task/{thread.id}/comm").read_text().strip()
                except OSError:  # the thread ended meanwhile
                    continue
                if name.startswith(prefix):
                    key = (jvm.pid, thread.id)
                    seen[key] = max(seen.get(key, 0.0), thread.user_time + thread.system_time)

    sample()
    before = sum(seen.values())
    print("ready", flush=True)
    while not select.select([sys.stdin], [], [], float(interval_s))[0]:
        sample()
    sample()
    print(f"{sum(seen.values()) - before:.6f}", flush=True)
