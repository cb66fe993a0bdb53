"""What `kappa status` shows on one screen: services, Flink jobs, lag per job, and the last 5 minutes.

Each section is gathered independently, and one that cannot be read says why instead of failing
the screen: an operator runs this precisely when something is wrong. Jobs come from Flink's REST
API; lag, rates and dead letters from the stack's Prometheus (which scrapes kappa.metrics).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from kappa.config import Config

GetJson = Callable[[str], Any]  # absolute URL -> decoded JSON body (raises on failure)


def http_json(url: str) -> Any:
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return response.json()


@dataclass
class Section:
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    problem: str = ""  # why the section could not be read; rows are then empty


@dataclass(frozen=True)
class JobRow:
    name: str
    state: str
    uptime_s: float
    restarts: int
    checkpoint_age_s: float | None  # None: no checkpoint completed yet

    def cells(self) -> tuple[str, ...]:
        age = "none yet" if self.checkpoint_age_s is None else duration(self.checkpoint_age_s)
        return (self.name, self.state, duration(self.uptime_s), str(self.restarts), age)


def duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def flink_jobs(rest_url: str, get: GetJson = http_json, now_ms: int | None = None) -> list[JobRow]:
    """Jobs that are not finished, plus failed ones (a failure must stay visible), newest first."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    rows = []
    for job in get(f"{rest_url}/jobs/overview")["jobs"]:
        if job["state"] in ("FINISHED", "CANCELED"):
            continue
        job_id = job["jid"]
        metrics = {m["id"]: m.get("value") for m in get(f"{rest_url}/jobs/{job_id}/metrics?get=numRestarts")}
        latest = (get(f"{rest_url}/jobs/{job_id}/checkpoints").get("latest") or {}).get("completed") or {}
        acked = latest.get("latest_ack_timestamp")
        rows.append(JobRow(
            name=job["name"], state=job["state"],
            uptime_s=(now_ms - int(job["start-time"])) / 1000 if job["state"] == "RUNNING" else 0.0,
            restarts=int(float(metrics.get("numRestarts") or 0)),
            checkpoint_age_s=(now_ms - int(acked)) / 1000 if acked else None,
        ))
    return sorted(rows, key=lambda r: r.uptime_s)


def prometheus_vector(prometheus_url: str, promql: str, get: GetJson = http_json) -> list[tuple[dict[str, str], float]]:
    body = get(f"{prometheus_url}/api/v1/query?query={quote(promql)}")
    return [(item["metric"], float(item["value"][1])) for item in body["data"]["result"]]


def _guarded(section: Section, fill: Callable[[Section], None]) -> Section:
    try:
        fill(section)
    except Exception as exc:  # noqa: BLE001 - a section that cannot be read says why, the screen goes on
        section.rows.clear()
        section.problem = f"{type(exc).__name__}: {exc}"[:200]
    return section


def problems(sections: list[Section]) -> list[str]:
    """What makes the pipeline unhealthy, one sentence each (empty: healthy)."""
    found = [f"cannot read {s.title}: {s.problem}" for s in sections if s.problem]
    by_title = {s.title: s for s in sections}
    for name, state, *_ in by_title["services"].rows if "services" in by_title else []:
        if state not in ("up", "external"):
            found.append(f"service {name} is {state}")
    for name, state, *_ in by_title["jobs"].rows if "jobs" in by_title else []:
        if state in ("FAILED", "FAILING", "RESTARTING"):
            found.append(f"job {name} is {state}")
    for group, records, _, running in by_title["lag"].rows if "lag" in by_title else []:
        if running == "no" and int(records) > 0:
            found.append(f"{group} is {records} records behind and no running job reads it")
    for what, value in by_title["last 5 minutes"].rows if "last 5 minutes" in by_title else []:
        if what == "ALERT firing":
            found.append(f"alert {value} is firing")
    return found


def gather(config: Config, get: GetJson = http_json) -> list[Section]:
    from kappa.stack import manager

    prom = config.metrics.prometheus_url

    def services(section: Section) -> None:
        section.rows = [tuple(row) for row in manager.status(config)]

    def jobs(section: Section) -> None:
        section.rows = [row.cells() for row in flink_jobs(config.flink.rest_url, get)]

    def lag(section: Section) -> None:
        records = prometheus_vector(prom, "sum by (group) (kappa_consumer_lag_records)", get)
        behind = prometheus_vector(prom, "max by (group) (kappa_consumer_lag_seconds)", get)
        seconds = {m["group"]: v for m, v in behind}
        running = {m["group"]: v for m, v in prometheus_vector(prom, "kappa_consumer_group_job_running", get)}
        section.rows = [(m["group"], f"{v:.0f}", duration(seconds.get(m["group"], 0.0)),
                         {1.0: "yes", 0.0: "no"}.get(running.get(m["group"], -1.0), "?"))
                        for m, v in sorted(records, key=lambda item: item[0]["group"])]

    def last_5m(section: Section) -> None:
        stages = prometheus_vector(prom, "delta(kappa_pipeline_records[5m])", get)
        section.rows = [(f"records {m['stage']}", f"{max(v, 0):.0f}") for m, v in sorted(
            stages, key=lambda item: item[0]["stage"])]
        for m, v in prometheus_vector(prom, "delta(kappa_dead_letters[5m]) > 0", get):
            section.rows.append((f"dead letters {m['reason']}", f"{v:.0f}"))
        for _, v in prometheus_vector(prom, "kappa_active_devices", get):
            section.rows.append(("active devices", f"{v:.0f}"))
        for m, _ in prometheus_vector(prom, 'ALERTS{alertstate="firing"}', get):
            section.rows.append(("ALERT firing", m.get("alertname", "?")))

    return [
        _guarded(Section("services", ("service", "state", "address")), services),
        _guarded(Section("jobs", ("job", "state", "uptime", "restarts", "last checkpoint")), jobs),
        _guarded(Section("lag", ("consumer group", "records", "event time", "job running")), lag),
        _guarded(Section("last 5 minutes", ("what", "value")), last_5m),
    ]
