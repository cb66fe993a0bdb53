"""Exactly-once of the alerting job under failure: jobs/alerts.py runs bounded on the standalone
cluster, its TaskManager is killed with SIGKILL after the first completed checkpoint, and after
recovery the alerts table holds every alert exactly once, each row equal to the one computed here from
the planted overheating runs, the cool-down and the default rules, and a read_committed consumer of
the alerts topic sees each of those alert ids once, and no other (repeats inside the cool-down are
suppressed). (A fault-free run of the job was the oracle before: 60-120 s more of the slowest test.)"""

from __future__ import annotations

import hashlib
import time
import tomllib
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.stack.postgres import connect
from tests.integration.cluster_support import run_with_taskmanager_kill
from tests.integration.scratch import Names, versioned_outputs
from tests.integration.test_alerts_job import T0, Fleet, _alerts, _committed_keys

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.slow]

DEVICES = 60
READINGS = 1200  # per device, every 10 s: enough that the job is still running at the first checkpoint
# (400 was not, once object reuse made the job faster: it finished before its first checkpoint)
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
        del row["updated_at"], row["trigger_values"]  # the wall clock of the upsert; the JSON text (parsed below)
    return rows


def _expected_rows(config: Config, expected: set[tuple[str, int, int]]) -> list[dict[str, Any]]:
    """Every column of each expected alert, computed here (the oracle), from the default rules the stack
    seeded (valid from the epoch): rules/thresholds.toml."""
    rules = tomllib.loads((config.root / "rules" / "thresholds.toml").read_text())
    version, thermal = rules["rule_version"], rules["types"]["thermal"]
    assert HOT > thermal["overheat_temp_c"] > COOL

    def at(epoch_ms: int) -> datetime:
        return datetime.fromtimestamp(epoch_ms / 1000, UTC).replace(tzinfo=None)

    return [{"alert_id": hashlib.md5(f"{device}|OVERHEATING|{version}|{first}".encode()).hexdigest(),
             "device_id": device, "site_id": "site-g", "alert_type": "OVERHEATING", "severity": "CRITICAL",
             "first_event_time": at(first), "last_event_time": at(last), "rule_version": version,
             "detected_at": at(last),  # the event time the pattern completed
             "trigger_values_json": {"max_temperature_c": HOT, "threshold_c": thermal["overheat_temp_c"],
                                     "readings": float(thermal["overheat_count"])}}
            for device, first, last in expected]


def test_taskmanager_kill9_alerts_exactly_once(migrated: Config) -> None:
    tag = uuid.uuid4().hex[:6]
    topic = Names("alerts-fault", tag).topic
    fault = versioned_outputs(migrated, Names("alerts-fault", tag).suffix, "alerts")
    fleet, expected, planted = _plant(tag)
    assert len(expected) < planted, "some runs fall inside a cool-down"
    fleet.produce(migrated, topic)
    began = time.monotonic()

    options = JobOptions(bounded=True, output_suffix=fault, extra={"telemetry_topic": topic})
    run_with_taskmanager_kill(migrated, "alerts", options)
    print(f"fault run finished after {time.monotonic() - began:.1f} s", flush=True)

    got, want = _rows(migrated, fault), _expected_rows(migrated, expected)
    assert len({r["alert_id"] for r in got}) == len(got)
    by_id = {r["alert_id"]: r for r in got}
    missing = [w for w in want if w["alert_id"] not in by_id]
    extra = sorted(by_id.keys() - {w["alert_id"] for w in want})
    assert not missing and not extra, f"lost {missing[:3]}; unexpected {[by_id[i] for i in extra[:3]]}"
    for row in want:
        assert by_id[row["alert_id"]] == row, (by_id[row["alert_id"]], row)

    topic_fault = Counter(k.decode() for k in _committed_keys(migrated, f"{migrated.kafka.alerts_topic}{fault}"))
    duplicated = {key: n for key, n in topic_fault.items() if n > 1}
    assert not duplicated, f"duplicated on the topic: {sorted(duplicated.items())[:5]}"
    assert set(topic_fault) == {r["alert_id"] for r in want}, "one record per alert, none lost"
