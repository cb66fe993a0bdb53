"""`kappa status` sections from Flink's REST answers and Prometheus queries (fakes here; the real stack
in tests/integration/test_metrics.py)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import pytest

from kappa.cli.status import render
from kappa.status import JobRow, Section, _guarded, duration, flink_jobs, prometheus_vector

pytestmark = pytest.mark.unit
REST = "http://flink"


def _flink(url: str) -> Any:
    answers: dict[str, Any] = {
        f"{REST}/jobs/overview": {"jobs": [
            {"jid": "a1", "name": "aggregate", "state": "RUNNING", "start-time": 1_000_000},
            {"jid": "b2", "name": "alerts", "state": "RESTARTING", "start-time": 1_500_000},
            {"jid": "c3", "name": "old", "state": "CANCELED", "start-time": 0}]},
        f"{REST}/jobs/a1/metrics?get=numRestarts": [{"id": "numRestarts", "value": "0"}],
        f"{REST}/jobs/b2/metrics?get=numRestarts": [{"id": "numRestarts", "value": "4"}],
        f"{REST}/jobs/a1/checkpoints": {"latest": {"completed": {"latest_ack_timestamp": 1_597_000}}},
        f"{REST}/jobs/b2/checkpoints": {"latest": {"completed": None}},
    }
    return answers[url]


def test_jobs_with_uptime_restarts_and_checkpoint_age_cancelled_ones_left_out() -> None:
    rows = flink_jobs(REST, _flink, now_ms=1_600_000)
    assert rows == [
        JobRow("alerts", "RESTARTING", 0.0, 4, None),
        JobRow("aggregate", "RUNNING", 600.0, 0, 3.0),
    ]
    assert rows[1].cells() == ("aggregate", "RUNNING", "10m", "0", "3s")
    assert rows[0].cells()[-1] == "none yet"


def test_prometheus_vector_and_a_section_that_cannot_be_read() -> None:
    def prom(url: str) -> Any:
        assert unquote(url.split("query=", 1)[1]) == "sum by (group) (kappa_consumer_lag_records)"
        return {"data": {"result": [{"metric": {"group": "kappa-aggregate"}, "value": [0, "12"]}]}}

    assert prometheus_vector("http://p", "sum by (group) (kappa_consumer_lag_records)", prom) == [
        ({"group": "kappa-aggregate"}, 12.0)]

    def broken(section: Section) -> None:
        section.rows.append(("half", "filled"))
        raise ConnectionError("connection refused")

    section = _guarded(Section("lag", ("group", "records")), broken)
    assert section.rows == [] and "connection refused" in section.problem
    text = render([section, Section("jobs", ("job", "state"), [("aggregate", "FAILED")])], colour=False)
    assert "(cannot read: ConnectionError: connection refused)" in text
    assert "aggregate  FAILED" in text
    coloured = render([Section("jobs", ("job", "state"), [("aggregate", "FAILED")])], colour=True)
    assert "\033[31mFAILED\033[0m" in coloured


def test_durations_read_naturally() -> None:
    assert [duration(s) for s in (5, 119, 600, 7199, 9000, -3)] == ["5s", "119s", "10m", "120m", "2.5h", "0s"]


def test_problems_name_each_cause_and_json_carries_them() -> None:
    from kappa.cli.status import as_json
    from kappa.status import problems

    sections = [
        Section("services", ("service", "state", "address"), [("kafka", "up", "x"), ("prometheus", "stopped", "y")]),
        Section("jobs", ("job", "state"), [("aggregate", "RUNNING"), ("alerts", "RESTARTING")]),
        Section("lag", ("group", "records", "event time", "job running"),
                [("kappa-aggregate", "0", "0s", "no"), ("kappa-alerts", "12", "3m", "no"),
                 ("kappa-smoke", "40", "1s", "yes")]),
        Section("last 5 minutes", ("what", "value"),
                [("records aggregated", "10"), ("ALERT firing", "KappaLagGrowing")]),
        Section("archive", ("x",), problem="ConnectionError: refused"),
    ]
    found = problems(sections)
    assert found == [
        "cannot read archive: ConnectionError: refused",
        "service prometheus is stopped",
        "job alerts is RESTARTING",
        "kappa-alerts is 12 records behind and no running job reads it",
        "alert KappaLagGrowing is firing",
    ]
    assert problems(sections[:1] + sections[2:3]) == [
        "service prometheus is stopped", "kappa-alerts is 12 records behind and no running job reads it"]
    document = json.loads(as_json(sections, found))
    assert document["healthy"] is False and document["problems"] == found
    assert document["sections"]["jobs"]["rows"][1] == ["alerts", "RESTARTING"]
    assert document["sections"]["archive"]["problem"] == "ConnectionError: refused"
