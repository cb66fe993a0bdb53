"""Fault injection on the standalone cluster, shared by the exactly-once tests of each job."""

from __future__ import annotations

from kappa import jobrunner, waiting
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.stack import manager
from kappa.stack.flink import FlinkService


def run_with_taskmanager_kill(config: Config, job: str, options: JobOptions, timeout_s: float = 300) -> str:
    """Submit a bounded job, SIGKILL the TaskManager as soon as one checkpoint has completed,
    restart it, and wait until the job finishes; returns the job id.

    Everything after that checkpoint is lost from the operators' memory and must be recovered from
    the checkpoint and the log. Fails if the job had already finished (the input was too small)."""
    job_id = jobrunner.submit(config, job, options)
    # a liveness bound: a loaded 2-core machine took over 120 s
    waiting.wait_until(lambda: jobrunner.completed_checkpoints(config, job_id) >= 1, timeout_s=300, interval_s=0.1,
                       what="a checkpoint", on_timeout=lambda _: AssertionError("no checkpoint completed"))
    assert jobrunner.job_state(config, job_id) == "RUNNING", "job finished before the fault: use more data"
    flink = manager.service(config, "flink")
    assert isinstance(flink, FlinkService)
    registered = flink.registered_taskmanagers()  # 1, or more with flink.taskmanagers > 1
    assert flink.taskmanager.kill9() is not None
    # Restart only once the JobManager has dropped the dead TaskManager (heartbeat timeout): a new
    # one at the same RPC address while the old one is still registered got stuck in Pekko's
    # "read-only association" and never registered (seen with the alerting job, Flink 2.0.2).
    waiting.wait_until(lambda: flink.registered_taskmanagers() < registered, timeout_s=120, what="the TaskManager gone",
                       on_timeout=lambda _: AssertionError("the JobManager never noticed the killed TaskManager"))
    flink.start_taskmanager()
    assert jobrunner.wait_for_state(config, job_id, {"FINISHED"}, timeout_s=timeout_s) == "FINISHED"
    return job_id
