"""Two TaskManagers on the session's cluster, and where a job's subtasks ran (the parallel-jobs tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests

from kappa import jobrunner, waiting
from kappa.config import Config
from kappa.stack import manager
from kappa.stack.flink import FlinkService


def flink_service(config: Config) -> FlinkService:
    flink = manager.service(config, "flink")
    assert isinstance(flink, FlinkService)
    return flink


def _wait_registered(flink: FlinkService, wanted: int, timeout_s: float = 120) -> None:
    waiting.wait_until(  # a liveness bound, not a measurement
        lambda: flink.registered_taskmanagers() == wanted, timeout_s=timeout_s, what=f"{wanted} TaskManagers",
        on_timeout=lambda _: AssertionError(f"{flink.registered_taskmanagers()} TaskManagers registered, not {wanted}"))


@contextmanager
def taskmanagers(config: Config, count: int) -> Iterator[FlinkService]:
    """At least `count` TaskManagers registered for the duration: the ones missing are started (ports of
    their index, kappa/stack/flink.py) and stopped again, by PID, so the session's other tests get the
    cluster as configured (the fault tests count its TaskManagers)."""
    flink = flink_service(config)
    configured = config.flink.taskmanagers
    added = list(range(configured, count))
    for index in added:
        flink.start_taskmanager(index)
    try:
        _wait_registered(flink, max(count, configured))
        yield flink
    finally:
        for index in added:
            flink.taskmanager_process(index).stop()
        _wait_registered(flink, configured)


def subtask_placement(config: Config, job_id: str) -> dict[str, set[str]]:
    """Vertex name -> the TaskManagers its subtasks ran on (REST, also for a finished job)."""
    placement: dict[str, set[str]] = {}
    for vertex in jobrunner.job_details(config, job_id)["vertices"]:
        response = requests.get(f"{config.flink.rest_url}/jobs/{job_id}/vertices/{vertex['id']}/taskmanagers",
                                timeout=10)
        response.raise_for_status()
        answer = response.json()
        placement[vertex["name"]] = {tm["taskmanager-id"] for tm in answer["taskmanagers"]}
    return placement


def vertex_parallelism(config: Config, job_id: str) -> dict[str, int]:
    return {v["name"]: int(v["parallelism"]) for v in jobrunner.job_details(config, job_id)["vertices"]}
