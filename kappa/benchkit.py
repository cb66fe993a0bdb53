"""Plumbing shared by the scripts in bench/ (they import the installed package, never each other)."""

from __future__ import annotations

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
    characters), e.g. "Flink-MetricReg" for the metric registry's thread, which runs the reporters.

    A local job's MiniCluster, and its threads, end with the job, taking their CPU counters along, so a
    background thread samples them every `interval_s` while the job runs and keeps each thread's highest
    reading: at most the last interval of a thread's life goes uncounted. Use as a context manager."""

    def __init__(self, prefix: str, interval_s: float = 0.2) -> None:
        import threading

        self.prefix, self.interval_s = prefix[:15], interval_s
        self._seen: dict[tuple[int, int], float] = {}  # (pid, tid) -> CPU seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="thread-cpu", daemon=True)

    def _sample(self) -> None:
        import psutil

        for jvm in _jvm_children():
            try:
                threads = jvm.threads()
            except psutil.NoSuchProcess:
                continue
            for thread in threads:
                try:
                    name = Path(f"/proc/{jvm.pid}/task/{thread.id}/comm").read_text().strip()
                except OSError:  # the thread ended meanwhile
                    continue
                if name.startswith(self.prefix):
                    key = (jvm.pid, thread.id)
                    self._seen[key] = max(self._seen.get(key, 0.0), thread.user_time + thread.system_time)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> ThreadCpu:
        self._sample()
        self._before = sum(self._seen.values())
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        """CPU seconds the matching threads used inside the `with` block."""
        return sum(self._seen.values()) - self._before
