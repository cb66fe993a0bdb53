"""Plumbing shared by the scripts in bench/ (they import the installed package, never each other)."""

from __future__ import annotations

import time
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


def jvm_cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process's JVM children: PyFlink's gateway, which
    hosts the local MiniCluster and so every task of a local job. On a shared 2-core machine a job's CPU
    time varies far less between runs than its wall time (another process's load delays it without
    adding to it), so a cost that is small against the noise shows in CPU seconds first."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() == "java":
                times = child.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total
