"""Flink options that give the aggregation job's group windows their allowed lateness.

Window table functions have no allowed lateness in Flink 2.0; group windows (GROUP BY TUMBLE(...)) take
it from the experimental `table.exec.emit.*` options (FLINK-21301). Those options make the planner
refuse window table functions in the same job, so they are set per job (jobs/aggregate.py and the golden
SQL fixtures), not in kappa.flinkenv for every job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kappa.config import Config

if TYPE_CHECKING:
    from pyflink.table import StreamTableEnvironment

LARGEST_WINDOW_S = 300  # sql/aggregates/windows.sql: the sites' five-minute windows


def state_ttl_s(config: Config) -> int:
    """How long (processing time) keyed state without windows lives: the copy count per (device, seq)
    and the newest event time per partition. A copy must still find its original while its window can
    be updated: allowed lateness + the largest window + the watermark delay."""
    job = config.job
    return job.allowed_lateness_s + LARGEST_WINDOW_S + job.watermark_delay_s


def late_update_options(config: Config) -> dict[str, str]:
    """Group windows fire at the watermark, then again on every reading within allowed lateness."""
    options = {"table.exec.state.ttl": f"{state_ttl_s(config)} s"}
    if config.job.allowed_lateness_s > 0:
        options |= {
            "table.exec.emit.allow-lateness": f"{config.job.allowed_lateness_s} s",
            "table.exec.emit.late-fire.enabled": "true",
            # 0 = fire on every late reading: a processing-time delay could still be pending when a
            # bounded run ends, and its update would be lost
            "table.exec.emit.late-fire.delay": "0 s",
        }
    return options


def allow_late_updates(t_env: StreamTableEnvironment, config: Config) -> None:
    for key, value in late_update_options(config).items():
        t_env.get_config().set(key, value)
