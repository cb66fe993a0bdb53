"""Watching a replay's Flink job: its state, how often it restarted and its last exception (from the
JobManager's REST API: the standalone cluster's, or the local MiniCluster's while it runs), and the
progress line printed while the replay runs."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from kappa.replay.offsets import OffsetRange

ENDED = frozenset({"FINISHED", "FAILED", "CANCELED", "SUSPENDED", "ENDED"})
ALIVE = frozenset({"INITIALIZING", "CREATED", "RUNNING", "RESTARTING", "RECONCILING"})


def exception_summary(text: str, limit: int = 500) -> str:
    """One line for a Java stack trace: its root cause (the last `Caused by:`), else its first line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    causes = [line.removeprefix("Caused by:").strip() for line in lines if line.startswith("Caused by:")]
    summary = causes[-1] if causes else (lines[0] if lines else "")
    return summary[:limit]


@dataclass(frozen=True)
class JobHealth:
    """What the JobManager says about a job: state, restarts so far and the last failure."""

    state: str
    restarts: int = 0
    last_exception: str | None = None  # one line (exception_summary)
    stacktrace: str | None = None  # the last failure in full

    def describe(self) -> str:
        if not self.restarts and not self.last_exception:
            return ""
        text = f"restarts {self.restarts}"
        return text + (f", last exception: {self.last_exception}" if self.last_exception else "")


def health_from_rest(details: Mapping[str, Any], exceptions: Mapping[str, Any],
                     metrics: list[Mapping[str, Any]] | None = None) -> JobHealth:
    """JobHealth from the answers of /jobs/<id>, /jobs/<id>/exceptions and /jobs/<id>/metrics?get=numRestarts.

    The restart metric lags (it is fetched every few seconds), so the exception history counts too:
    every failure of a job that is not FAILED was followed by a restart."""
    state = str(details.get("state", "UNKNOWN"))
    entries = list((exceptions.get("exceptionHistory") or {}).get("entries") or [])
    metric = next((int(float(m.get("value", 0))) for m in metrics or [] if m.get("id") == "numRestarts"), 0)
    restarts = max(metric, len(entries) - (1 if state == "FAILED" else 0))
    trace = str(entries[0].get("stacktrace") or entries[0].get("exceptionName") or "") if entries else ""
    trace = trace or str(exceptions.get("root-exception") or "")
    return JobHealth(state, max(0, restarts), exception_summary(trace) or None, trace or None)


def fetch_health(rest_url: str, job_id: str, timeout_s: float = 10.0) -> JobHealth | None:
    """The job's health from a JobManager's REST API; None when it does not answer (a local
    MiniCluster is gone once its job ended) or does not know the job."""
    def get(path: str) -> Any:
        response = requests.get(f"{rest_url}/jobs/{job_id}{path}", timeout=timeout_s)
        response.raise_for_status()
        return response.json()

    try:
        return health_from_rest(get(""), get("/exceptions?maxExceptions=20"), get("/metrics?get=numRestarts"))
    except (requests.RequestException, ValueError):
        return None


def minicluster_rest_url(job_client: Any) -> str | None:
    """The REST address of the local MiniCluster running `job_client`'s job. PyFlink's JobClient gives
    only the state; the MiniCluster behind it serves the same REST API as the cluster while the job
    lives (read through py4j; None if this Flink version hides it elsewhere)."""
    try:
        j_client = job_client._j_job_client
        field_ = j_client.getClass().getDeclaredField("miniCluster")
        field_.setAccessible(True)
        return str(field_.get(j_client).getRestAddress().get().toString()).rstrip("/")
    except Exception:  # noqa: BLE001 - py4j errors of any kind: watch through the JobClient only
        return None


@dataclass
class Progress:
    """Turns committed offsets into a progress line: done / total per partition, records/s, ETA, and
    the job's restarts and last exception when it has failed at least once."""

    rng: OffsetRange
    started: float = field(default_factory=time.monotonic)

    def done(self, committed: Mapping[int, int]) -> dict[int, int]:
        return {p: max(0, min(committed.get(p, self.rng.start[p]), self.rng.end[p]) - self.rng.start[p])
                for p in self.rng.end}

    def line(self, committed: Mapping[int, int], now: float | None = None, health: JobHealth | None = None) -> str:
        elapsed = max(1e-3, (now if now is not None else time.monotonic()) - self.started)
        done = self.done(committed)
        total = self.rng.total
        count = sum(done.values())
        parts = " ".join(f"p{p}:{done[p]}/{self.rng.end[p] - self.rng.start[p]}" for p in sorted(done))
        rate = count / elapsed
        eta = f"{(total - count) / rate:.0f}s" if rate > 0 else "?"
        if not committed:
            text = f"{parts}  (no checkpoint committed yet)  {elapsed:.0f}s elapsed"
        else:
            text = f"{parts}  {count}/{total} ({100 * count / max(total, 1):.0f}%)  {rate:.0f} records/s  ETA {eta}"
        if health is not None and health.state not in ("RUNNING", "FINISHED"):
            text += f"  job {health.state}"
        described = health.describe() if health is not None else ""
        return f"{text}  [{described}]" if described else text
