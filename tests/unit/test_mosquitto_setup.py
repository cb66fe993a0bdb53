"""The broker's generated set-up: mosquitto.conf, its small PKI, `$7$` password hashes, ACL and files."""

from __future__ import annotations

import base64
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509

from kappa.config import Config, load_config
from kappa.devices import brokerfiles
from kappa.devices.credentials import append_secrets, hash_password, verify_password
from kappa.stack import mosquitto
from kappa.stack.mqtt_tls import ensure_tls

pytestmark = pytest.mark.unit

# Written by Debian's `mosquitto_passwd -c -b pw.txt alice secret` (Mosquitto 2.0.11).
MOSQUITTO_PASSWD_ENTRY = (
    "$7$101$Y6Egkj7b6oNOBPRo$4gyuQ5SLuJYU+IDzVqD7AIKHPPZ5TaP3BEaFiKXNepii/RTdmzSu+bcGn4kTCCGj9EvvO0t0Qw3SIIcfpKotFw=="
)


@pytest.fixture()
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    loaded = load_config(profile="test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path)})
    monkeypatch.setenv(loaded.mqtt.bridge_password_env, "bridge-secret")
    return loaded


def _settings(conf: str) -> list[tuple[str, str]]:
    pairs = []
    for line in conf.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            pairs.append((key, value))
    return pairs


def test_conf_has_one_tls_listener_and_no_anonymous(config: Config, tmp_path: Path) -> None:
    conf = mosquitto.render_conf(config, tmp_path / "mqtt.log", tmp_path / "mqtt", run_as=None)
    settings = _settings(conf)
    values = dict(settings)
    assert [v for k, v in settings if k == "listener"] == [f"{config.mqtt.port} {config.mqtt.host}"]
    assert "port" not in values and "bind_address" not in values  # no default (plain) listener
    assert values["allow_anonymous"] == "false"
    assert values["certfile"] == str(mosquitto.tls_files(config).server_cert)
    assert values["cafile"] == str(mosquitto.ca_file(config))
    assert values["password_file"] == str(brokerfiles.password_file(config))
    assert values["acl_file"] == str(brokerfiles.acl_file(config))
    assert values["persistence"] == "true" and values["persistence_location"] == f"{tmp_path / 'mqtt'}/"
    assert values["log_dest"] == f"file {tmp_path / 'mqtt.log'}"
    assert "user" not in values


def test_conf_queues_enough_for_a_long_bridge_outage(config: Config, tmp_path: Path) -> None:
    values = dict(_settings(mosquitto.render_conf(config, tmp_path / "l", tmp_path, run_as="root")))
    assert int(values["max_queued_messages"]) >= 100_000
    assert int(values["max_queued_bytes"]) == 0 or int(values["max_queued_bytes"]) >= 100_000 * 4096
    assert values["max_inflight_messages"] == "1000"
    # oversized payloads must reach the bridge (to be dead-lettered), so the broker allows 4x
    assert int(values["message_size_limit"]) == 4 * config.mqtt.max_payload_bytes
    assert values["user"] == "root"


def test_tls_material_is_made_once_with_private_keys(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path / "tls", ["127.0.0.1", "127.0.0.1", "localhost"])
    for key in (files.ca_key, files.server_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    before = files.server_cert.read_bytes()
    assert ensure_tls(tmp_path / "tls", ["127.0.0.1"]).server_cert.read_bytes() == before  # kept


def test_hash_matches_mosquitto_passwd() -> None:
    salt = base64.b64decode(MOSQUITTO_PASSWD_ENTRY.split("$")[3])
    assert hash_password("secret", salt=salt) == MOSQUITTO_PASSWD_ENTRY
    assert verify_password("secret", MOSQUITTO_PASSWD_ENTRY)
    assert not verify_password("Secret", MOSQUITTO_PASSWD_ENTRY)
    fresh = hash_password("pw")
    assert fresh.startswith("$7$101$") and fresh != hash_password("pw")  # a new salt each time
    assert verify_password("pw", fresh)


def test_broker_files_bridge_always_present(config: Config) -> None:
    brokerfiles.write_files(config, [("dev-1", hash_password("p1"))])
    entries = dict(line.split(":", 1) for line in brokerfiles.password_file(config).read_text().splitlines())
    assert set(entries) == {config.mqtt.bridge_user, "dev-1"}
    assert verify_password("bridge-secret", entries[config.mqtt.bridge_user])
    assert verify_password("p1", entries["dev-1"])
    acl = brokerfiles.acl_file(config).read_text().splitlines()
    assert f"user {config.mqtt.bridge_user}" in acl
    assert f"topic read {config.mqtt.topic_prefix}/+/telemetry" in acl
    assert f"pattern write {config.mqtt.topic_prefix}/%u/telemetry" in acl
    assert not [line for line in acl if line.startswith(("topic write", "topic readwrite", "pattern read"))]
    for path in (brokerfiles.password_file(config), brokerfiles.acl_file(config)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    brokerfiles.write_files(config, [])
    assert [ln.split(":")[0] for ln in brokerfiles.password_file(config).read_text().splitlines()] == [
        config.mqtt.bridge_user]
    assert not list(brokerfiles.password_file(config).parent.glob(".*.tmp"))


def test_secrets_file_is_created_private_and_appended(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "device-secrets.env"
    append_secrets(path, [("a", "pa")])
    append_secrets(path, [("b", "pb")])
    assert path.read_text() == "a=pa\nb=pb\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
