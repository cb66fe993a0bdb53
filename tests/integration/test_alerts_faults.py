"""Exactly-once of the alerting job under failure: jobs/alerts.py runs bounded on the standalone
cluster, its TaskManager is killed with SIGKILL after the first completed checkpoint, and after
recovery the alerts table holds every alert exactly once, equal to a fault-free run over the same
topic, and a read_committed consumer of the alerts topic sees each alert id as many times as in the
fault-free run (one record per match: a repeat inside the cool-down bucket is a second record with
the same id, see test_alerts_job.py)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import pytest

from kappa import jobrunner, outputs
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.stack.postgres import connect
from tests.integration.cluster_support import run_with_taskmanager_kill
from tests.integration.test_alerts_job import T0, Fleet, _alerts, _committed_keys, _ms

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.slow]

DEVICES = 60
READINGS = 600  # per device, every 10 s: enough that the job is still running at the first checkpoint
PERIOD = 60  # readings between planted overheating runs of one device (600 s > the 300 s cool-down)
COOLDOWN_MS = 300_000
HOT, COOL = 90.0, 60.0  # thermal: above 85.0 on 3 consecutive readings


def _plant(tag: str) -> tuple[Fleet, Counter[tuple[str, int]], dict[tuple[str, int], tuple[int, int]]]:
    """Thermal devices with overheating runs spread over the whole stream; every other run is
    followed 80 s later by a second run (usually the same cool-down bucket: a suppressed repeat).
    Returns the fleet, the number of matches per (device, bucket) and the latest match per bucket."""
    fleet = Fleet(tag)
    matches: Counter[tuple[str, int]] = Counter()
    latest: dict[tuple[str, int], tuple[int, int]] = {}
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
        for start in runs:
            first, last = times[start], times[start + 2]
            key = (fleet.dev(name), first - first % COOLDOWN_MS)
            matches[key] += 1
            latest[key] = max(latest.get(key, (first, last)), (first, last))
    return fleet, matches, latest


def _rows(config: Config, suffix: str) -> list[dict[str, Any]]:
    with connect(config) as conn:
        rows = _alerts(conn, suffix)
    for row in rows:
        del row["updated_at"]  # wall clock of the upsert
    return rows


def test_taskmanager_kill9_alerts_exactly_once(migrated: Config) -> None:
    tag = uuid.uuid4().hex[:6]
    topic = f"telemetry-alerts-fault-{tag}"
    fault, clean = f"_alerts_fault_{tag}", f"_alerts_clean_{tag}"
    with connect(migrated) as conn:
        for suffix in (fault, clean):
            outputs.create_versioned_tables(conn, suffix, outputs.ALERT_TABLES)
    fleet, matches, latest = _plant(tag)
    fleet.produce(migrated, topic)
    began = time.monotonic()

    options = JobOptions(bounded=True, output_suffix=fault, extra={"telemetry_topic": topic})
    run_with_taskmanager_kill(migrated, "alerts", options)
    print(f"fault run finished after {time.monotonic() - began:.1f} s", flush=True)
    # the oracle: the same topic, fault-free, in a local MiniCluster
    clean_options = JobOptions(bounded=True, output_suffix=clean, extra={"telemetry_topic": topic})
    jobrunner.run_local(migrated, "alerts", clean_options, wait=True)

    print(f"clean run finished after {time.monotonic() - began:.1f} s", flush=True)
    got, want = _rows(migrated, fault), _rows(migrated, clean)
    assert len({r["alert_id"] for r in got}) == len(got)
    assert sorted(got, key=lambda r: r["alert_id"]) == sorted(want, key=lambda r: r["alert_id"])
    # ... and the fault-free run raised exactly the planted alerts (the latest match per bucket)
    planted = {(dev, *latest[(dev, bucket)]) for dev, bucket in matches}
    assert {(r["device_id"], _ms(r["first_event_time"]), _ms(r["last_event_time"])) for r in want} == planted
    assert {r["alert_type"] for r in want} == {"OVERHEATING"}

    topic_fault = Counter(k.decode() for k in _committed_keys(migrated, f"{migrated.kafka.alerts_topic}{fault}"))
    topic_clean = Counter(k.decode() for k in _committed_keys(migrated, f"{migrated.kafka.alerts_topic}{clean}"))
    duplicated, lost = topic_fault - topic_clean, topic_clean - topic_fault
    assert topic_fault == topic_clean, f"duplicated {sorted(duplicated.items())[:5]}; lost {sorted(lost.items())[:5]}"
    assert sorted(topic_clean.values()) == sorted(matches.values()), "one record per match"
    assert set(topic_clean) == {r["alert_id"] for r in want}
