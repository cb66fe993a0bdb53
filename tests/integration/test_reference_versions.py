"""The reference topics on the real stack, through the real CLI: `kappa rules` and `kappa devices`
write versions valid from an event time, the topics keep every version, seeding is idempotent, and
PostgreSQL's copy follows the topic."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from kappa import reference_log
from kappa.config import Config
from kappa.reference_log import parse_time_ms
from kappa.stack.postgres import connect
from tests.integration.test_devices import kappa

pytestmark = pytest.mark.integration


def test_both_topics_keep_every_version_and_seeding_is_idempotent(migrated: Config) -> None:
    for topic in (migrated.kafka.rules_topic, migrated.kafka.devices_topic):
        settings = reference_log.topic_settings(migrated, topic)
        assert (settings["cleanup.policy"], settings["retention.ms"]) == ("delete", "-1"), topic
    before = reference_log.read_all(migrated, migrated.kafka.rules_topic)
    result = kappa("db", "migrate")
    assert result.returncode == 0, result.stderr
    after = reference_log.read_all(migrated, migrated.kafka.rules_topic)
    assert after == before  # nothing written again
    epoch_defaults = sorted(r.key for r in after if r.value["valid_from_ms"] == 0 and r.value["device_id"] is None)
    assert epoch_defaults == ["environmental", "power", "thermal", "vibration"]


def test_rules_set_with_a_past_effective_time_list_and_history(migrated: Config, tmp_path: Path) -> None:
    device = f"rules-cli-{uuid.uuid4().hex[:6]}"
    rules_file = tmp_path / "thresholds.toml"
    rules_file.write_text(f'rule_version = "cli-{device}"\n[devices."{device}"]\ndevice_type = "thermal"\n'
                          "overheat_temp_c = 70.0\n")
    result = kappa("rules", "set", "--file", str(rules_file), "--effective", "2026-05-01T00:00:00Z")
    assert result.returncode == 0, result.stderr
    assert f"thermal/{device}" in result.stdout
    history = kappa("rules", "history")
    assert history.returncode == 0 and f"thermal/{device}" in history.stdout
    listed_after = kappa("rules", "list", "--at", "2026-05-01T00:00:00Z")
    listed_before = kappa("rules", "list", "--at", "2026-04-30T23:59:59Z")
    assert f"thermal/{device}" in listed_after.stdout.split("scheduled:")[0]
    assert f"thermal/{device}" not in listed_before.stdout.split("scheduled:")[0]
    assert f"scheduled: thermal/{device}" in listed_before.stdout
    with connect(migrated) as conn:
        version = conn.execute("SELECT valid_from, overheat_temp_c, overheat_count FROM alert_threshold_versions "
                               "WHERE rule_key = %s", (f"thermal/{device}",)).fetchall()
        in_force = conn.execute("SELECT overheat_temp_c, overheat_count, rule_version FROM alert_thresholds "
                                "WHERE device_id = %s", (device,)).fetchall()
    assert [(int(v[0].timestamp() * 1000), v[1], v[2]) for v in version] == [
        (parse_time_ms("2026-05-01T00:00:00Z"), 70.0, None)]
    assert in_force == [(70.0, 3, f"cli-{device}")]  # completed from the thermal default
    bad = tmp_path / "bad.toml"
    bad.write_text('rule_version = "x"\n[types.thermal]\noverheat_temp_c = 85.0\n')
    refused = kappa("rules", "set", "--file", str(bad))
    assert refused.returncode == 2 and "needs every threshold" in refused.stderr


def test_registering_moving_and_decommissioning_a_device_write_versions(migrated: Config) -> None:
    device = f"meta-{uuid.uuid4().hex[:6]}"
    assert kappa("devices", "add", device, "--site", "site-1", "--type", "thermal", "--model", "T1").returncode == 0
    moved = kappa("devices", "move", device, "--site", "site-2", "--effective", "2026-04-01T09:00:00Z")
    assert moved.returncode == 0, moved.stderr
    assert kappa("devices", "decommission", device).returncode == 0
    versions = [r.value for r in reference_log.read_all(migrated, migrated.kafka.devices_topic) if r.key == device]
    assert [(v["site_id"], v["model"], v["status"]) for v in versions] == [
        ("site-1", "T1", "active"), ("site-2", "T1", "active"), ("site-2", "T1", "decommissioned")]
    assert versions[0]["valid_from_ms"] == 0  # the first version: from the epoch
    assert versions[1]["valid_from_ms"] == parse_time_ms("2026-04-01T09:00:00Z")
    assert versions[2]["valid_from_ms"] > versions[1]["valid_from_ms"]  # now


def test_rules_against_an_unmigrated_database_is_one_clear_line(migrated: Config, tmp_path: Path) -> None:
    """An empty schema first in the search path stands for an unmigrated database: nothing is written."""
    with connect(migrated) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS unmigrated_rules")
        conn.commit()
    before = reference_log.read_all(migrated, migrated.kafka.rules_topic)
    for args in (("set", "--file", str(migrated.root / "rules" / "thresholds.toml")), ("list",)):
        env = {**os.environ, "KAPPA_PROFILE": "test", "PGOPTIONS": "-c search_path=unmigrated_rules"}
        result = subprocess.run([sys.executable, "-m", "kappa.cli", "rules", *args], capture_output=True, text=True,
                                env=env, timeout=120)
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.strip().splitlines() == [
            "error: the database is not migrated (no table alert_thresholds, alert_threshold_versions): "
            "run `kappa db migrate` first"], result.stderr
    assert reference_log.read_all(migrated, migrated.kafka.rules_topic) == before  # nothing written
