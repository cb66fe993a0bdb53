"""The device registry on the real stack: `kappa devices ...` changes who the broker lets in, at once.

Runs the real CLI (exit codes, output) against the test profile, then checks the effect with real MQTT
clients over TLS: added devices connect and publish under their own topic, decommissioned ones and old
passwords are refused at CONNECT, and a broker restart renders the files from the table again.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kappa.config import Config, read_env_file
from kappa.devices import store
from kappa.stack.mosquitto import MosquittoService, try_connect
from kappa.stack.postgres import connect
from tests.integration.mqtt_support import Session, bridge_password, settle, share_filter, unique, wait_for

pytestmark = pytest.mark.integration


def kappa(*args: str) -> subprocess.CompletedProcess[str]:
    """The real `kappa` command (profile test: the session's stack), as a user would run it."""
    return subprocess.run([sys.executable, "-m", "kappa.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "KAPPA_PROFILE": "test"}, timeout=120)


def passwords(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line and not line.startswith("#"))


def accepted(config: Config, device_id: str, password: str) -> bool:
    return try_connect(config, device_id, password) == "Success"


def test_add_then_the_device_publishes_under_its_own_topic(migrated: Config, tmp_path: Path) -> None:
    device_id, secrets = unique("dev"), tmp_path / "device-secrets.env"
    result = kappa("devices", "add", device_id, "--site", "site-7", "--type", "thermo", "--model", "T1",
                   "--installed-at", "2024-05-01T08:00:00Z", "--secrets-file", str(secrets))
    assert result.returncode == 0, result.stderr
    password = passwords(result.stdout)[device_id]
    assert read_env_file(secrets) == {device_id: password}
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    with connect(migrated) as conn:
        row = conn.execute("SELECT site_id, device_type, model, status, credential_hash FROM devices "
                           "WHERE device_id = %s", (device_id,)).fetchone()
        assert device_id in store.active_device_ids(conn)
    assert row is not None and row[:4] == ("site-7", "thermo", "T1", "active")
    assert row[4].startswith("$7$") and password not in row[4]  # only the hash is stored
    wait_for(lambda: accepted(migrated, device_id, password), "the new device accepted")

    bridge = Session(migrated, migrated.mqtt.bridge_user, bridge_password(migrated))
    device = Session(migrated, device_id, password)
    try:
        bridge.subscribe(share_filter(migrated, unique("group")))
        assert device.publish(migrated.mqtt.device_topic(device_id), [b'{"t": 21.5}']) == ["Success"]
        wait_for(lambda: len(bridge.messages) == 1, "the reading at the bridge")
        assert bridge.messages[0].topic == migrated.mqtt.device_topic(device_id)
    finally:
        device.close()
        bridge.close()

    shown = kappa("devices", "show", device_id)
    assert shown.returncode == 0
    assert "site-7" in shown.stdout and migrated.mqtt.device_topic(device_id) in shown.stdout
    assert password not in shown.stdout
    listed = kappa("devices", "list", "--status", "active")
    assert listed.returncode == 0 and device_id in listed.stdout


def test_decommission_refuses_the_device_at_connect(migrated: Config) -> None:
    device_id = unique("dev")
    added = kappa("devices", "add", device_id, "--site", "s", "--type", "t")
    password = passwords(added.stdout)[device_id]
    wait_for(lambda: accepted(migrated, device_id, password), "the device accepted")
    result = kappa("devices", "decommission", device_id)
    assert result.returncode == 0, result.stderr
    wait_for(lambda: try_connect(migrated, device_id, password) == "Not authorized", "the device refused")
    with connect(migrated) as conn:
        assert device_id not in store.active_device_ids(conn)
    assert device_id in kappa("devices", "list", "--status", "decommissioned").stdout
    again = kappa("devices", "decommission", device_id)
    assert again.returncode == 2 and "already decommissioned" in again.stderr
    rotate = kappa("devices", "rotate-credentials", device_id)
    assert rotate.returncode == 2 and "decommissioned" in rotate.stderr


def test_rotate_credentials_old_refused_new_accepted(migrated: Config, tmp_path: Path) -> None:
    device_id, secrets = unique("dev"), tmp_path / "secrets.env"
    old = passwords(kappa("devices", "add", device_id, "--site", "s", "--type", "t").stdout)[device_id]
    wait_for(lambda: accepted(migrated, device_id, old), "the device accepted")
    result = kappa("devices", "rotate-credentials", device_id, "--secrets-file", str(secrets))
    assert result.returncode == 0, result.stderr
    new = passwords(result.stdout)[device_id]
    assert new != old and read_env_file(secrets) == {device_id: new}
    wait_for(lambda: try_connect(migrated, device_id, old) == "Not authorized", "the old password refused")
    assert accepted(migrated, device_id, new)


def test_import_csv_registers_every_device(migrated: Config, tmp_path: Path) -> None:
    ids = [unique("imp") for _ in range(3)]
    csv_file, secrets = tmp_path / "fleet.csv", tmp_path / "fleet-secrets.env"
    rows = "".join(f"{d},site-{i},meter,M{i},2.{i},row {i},2024-01-0{i + 1}\n" for i, d in enumerate(ids))
    csv_file.write_text("device_id,site_id,device_type,model,firmware,location,installed_at\n" + rows)
    result = kappa("devices", "import", str(csv_file), "--secrets-file", str(secrets))
    assert result.returncode == 0, result.stderr
    creds = read_env_file(secrets)
    assert sorted(creds) == sorted(ids) and passwords(result.stdout) == creds
    with connect(migrated) as conn:
        rows = conn.execute("SELECT device_id, site_id, firmware, location, installed_at::date::text FROM devices "
                            "WHERE device_id = ANY(%s) ORDER BY site_id", (ids,)).fetchall()
    assert rows == [(d, f"site-{i}", f"2.{i}", f"row {i}", f"2024-01-0{i + 1}") for i, d in enumerate(ids)]
    wait_for(lambda: all(accepted(migrated, d, p) for d, p in creds.items()), "every imported device accepted")
    # a bad row anywhere: nothing of that file is imported
    bad = tmp_path / "bad.csv"
    fresh = unique("imp")
    bad.write_text(f"device_id,site_id,device_type\n{fresh},s,t\n{unique('imp')},s\n")
    failed = kappa("devices", "import", str(bad))
    assert failed.returncode == 2
    assert failed.stderr.strip() == f"error: {bad} line 3: expected 3 fields"
    assert fresh not in kappa("devices", "list").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("devices", "show", "no-such-device"), "error: unknown device 'no-such-device'"),
        (("devices", "decommission", "no-such-device"), "error: unknown device 'no-such-device'"),
        (("devices", "rotate-credentials", "no-such-device"), "error: unknown device 'no-such-device'"),
        (("devices", "add", "bad/id", "--site", "s", "--type", "t"), "error: invalid device id 'bad/id'"),
        (("devices", "add", "d1", "--site", "s", "--type", "t", "--installed-at", "soon"),
         "error: invalid installed_at 'soon'"),
        (("devices", "import", "/nonexistent/fleet.csv"), "error: cannot read /nonexistent/fleet.csv"),
        (("devices", "add", "d1", "--type", "t"), "error: Missing option '--site'"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(migrated: Config, args: tuple[str, ...], message: str) -> None:
    result = kappa(*args)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error") or "error:" in line]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_duplicate_add_is_refused(migrated: Config) -> None:
    device_id = unique("dev")
    first = kappa("devices", "add", device_id, "--site", "s", "--type", "t")
    assert first.returncode == 0
    second = kappa("devices", "add", device_id, "--site", "s2", "--type", "t")
    assert second.returncode == 2
    assert second.stderr.strip() == f"error: device(s) already registered: {device_id}"
    assert second.stdout == ""  # no password printed for a device that was not added


def test_broker_restart_renders_the_files_from_the_table(migrated: Config) -> None:
    device_id = unique("dev")
    password = passwords(kappa("devices", "add", device_id, "--site", "s", "--type", "t").stdout)[device_id]
    gone = unique("dev")
    gone_password = passwords(kappa("devices", "add", gone, "--site", "s", "--type", "t").stdout)[gone]
    assert kappa("devices", "decommission", gone).returncode == 0
    broker = MosquittoService(migrated)
    assert broker.stop()
    for path in (broker.data_dir / "passwords", broker.data_dir / "acl"):
        path.unlink()  # nothing left over: the start must render both from the registry
    assert broker.start()
    assert accepted(migrated, device_id, password)
    assert accepted(migrated, migrated.mqtt.bridge_user, bridge_password(migrated))
    assert try_connect(migrated, gone, gone_password) == "Not authorized"
    sub = Session(migrated, migrated.mqtt.bridge_user, bridge_password(migrated))
    pub = Session(migrated, device_id, password)
    try:
        sub.subscribe(share_filter(migrated, unique("group")))
        pub.publish(migrated.mqtt.device_topic(device_id), [b"after-restart"])
        assert settle(sub) == [b"after-restart"]
    finally:
        pub.close()
        sub.close()
