"""Exactly-once of the alerting job under failure: jobs/alerts.py runs bounded on the standalone
cluster, its TaskManager is killed with SIGKILL after the first completed checkpoint, and after
recovery the alerts table holds every alert exactly once, equal to a fault-free run over the same
topic, and a read_committed consumer of the alerts topic sees each alert id as many times as in the
fault-free run (one record per alert: repeats inside the cool-down are suppressed)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import pytest

from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.stack.postgres import connect
from tests.integration.cluster_support import run_with_taskmanager_kill
from tests.integration.scratch import Names, run_bounded, versioned_outputs
from tests.integration.test_alerts_job import T0, Fleet, _alerts, _committed_keys, _ms

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.slow]

DEVICES = 60
READINGS = 600  # per device, every 10 s: enough that the job is still running at the first checkpoint
PERIOD = 60  # readings between planted overheating runs of one device (600 s > the 300 s cool-down)
COOLDOWN_MS = 300_000
HOT, COOL = 90.0, 60.0  # thermal: above 85.0 on 3 consecutive readings


def _plant(tag: str) -> tuple[Fleet, set[tuple[str, int, int]], int]:
    """Thermal devices with overheating runs spread over the whole stream; every other run is
    followed 80 s later by a second run, inside the cool-down of the first (suppressed).
    Returns the fleet, the alerts expected (device, first ms, last ms) and the runs planted."""
    fleet = Fleet(tag)
    expected: set[tuple[str, int, int]] = set()
    planted = 0
    for d in range(DEVICES):
        name = f"f{d:03d}"
        hot_at: set[int] = set()
        runs: list[int] = []
        for j, start in enumerate(range(10 + d % 17, READINGS - 20, PERIOD)):
            runs.append(start)
            if j % 2 == 0:
                runs.append(start + 8)
        for start in runs:
            hot_at |= {start, start + 1, start + 2}
        times = fleet.series(name, "thermal", [HOT if k in hot_at else COOL for k in range(READINGS)],
                             start=T0 + d * 97)
        quiet_until = None
        for start in sorted(runs):  # the cool-down, computed independently of the job
            first, last = times[start], times[start + 2]
            planted += 1
            if quiet_until is None or first >= quiet_until:
                expected.add((fleet.dev(name), first, last))
                quiet_until = last + COOLDOWN_MS
    return fleet, expected, planted


def _rows(config: Config, suffix: str) -> list[dict[str, Any]]:
    with connect(config) as conn:
        rows = _alerts(conn, suffix)
    for row in rows:
        del row["updated_at"]  # wall clock of the upsert
    return rows


def test_taskmanager_kill9_alerts_exactly_once(migrated: Config) -> None:
    tag = uuid.uuid4().hex[:6]
    topic = Names("alerts-fault", tag).topic
    fault = versioned_outputs(migrated, Names("alerts-fault", tag).suffix, "alerts")
    clean = versioned_outputs(migrated, Names("alerts-clean", tag).suffix, "alerts")
    fleet, expected, planted = _plant(tag)
    fleet.produce(migrated, topic)
    began = time.monotonic()

    options = JobOptions(bounded=True, output_suffix=fault, extra={"telemetry_topic": topic})
    run_with_taskmanager_kill(migrated, "alerts", options)
    print(f"fault run finished after {time.monotonic() - began:.1f} s", flush=True)
    # the oracle: the same topic, fault-free, in a local MiniCluster
    run_bounded(migrated, "alerts", topic, clean)

    print(f"clean run finished after {time.monotonic() - began:.1f} s", flush=True)
    got, want = _rows(migrated, fault), _rows(migrated, clean)
    assert len({r["alert_id"] for r in got}) == len(got)
    assert sorted(got, key=lambda r: r["alert_id"]) == sorted(want, key=lambda r: r["alert_id"])
    # ... and the fault-free run raised exactly the planted alerts that pass the cool-down
    assert {(r["device_id"], _ms(r["first_event_time"]), _ms(r["last_event_time"])) for r in want} == expected
    assert len(expected) < planted, "some runs fall inside a cool-down"
    assert {r["alert_type"] for r in want} == {"OVERHEATING"}

    topic_fault = Counter(k.decode() for k in _committed_keys(migrated, f"{migrated.kafka.alerts_topic}{fault}"))
    topic_clean = Counter(k.decode() for k in _committed_keys(migrated, f"{migrated.kafka.alerts_topic}{clean}"))
    duplicated, lost = topic_fault - topic_clean, topic_clean - topic_fault
    assert topic_fault == topic_clean, f"duplicated {sorted(duplicated.items())[:5]}; lost {sorted(lost.items())[:5]}"
    assert set(topic_clean) == {r["alert_id"] for r in want}
    assert set(topic_clean.values()) == {1}, "one record per alert"
