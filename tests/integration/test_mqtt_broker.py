"""The stack's MQTT broker (Mosquitto 2.0.11): TLS only, no anonymous clients, per-device ACLs, and
queued QoS-1 messages for a persistent session kept across disconnects and broker restarts."""

from __future__ import annotations

import socket
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from kappa.config import Config
from kappa.devices import admin, brokerfiles
from kappa.devices.model import Device
from kappa.stack import manager
from kappa.stack.mosquitto import MosquittoService, ca_file, tls_files, try_connect
from kappa.stack.postgres import connect
from tests.integration.mqtt_support import Session, bridge_password, settle, share_filter, unique, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def devices(migrated: Config) -> Iterator[dict[str, str]]:
    """Two devices registered through the registry (id -> password); the broker has reloaded its files."""
    with connect(migrated) as conn:
        added = admin.add(migrated, conn, [Device(unique("dev"), "site-1", "thermo") for _ in range(2)])
    creds = dict(added)
    wait_for(lambda: all(try_connect(migrated, d, p) == "Success" for d, p in creds.items()), "devices accepted")
    yield creds


def _listening_sockets(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on (IPv4 and IPv6), from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = fd.readlink().as_posix() if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A = LISTEN
                address, port = local.split(":")
                if table == "tcp":
                    address = socket.inet_ntoa(bytes.fromhex(address)[::-1])
                found.add((address, int(port, 16)))
    return found


def test_only_one_tls_listener_on_loopback(stack: Config) -> None:
    pid = MosquittoService(stack).process.pid()
    assert pid is not None
    assert _listening_sockets(pid) == {(stack.mqtt.host, stack.mqtt.port)}
    status = {name: state for name, state, _ in manager.status(stack)}
    assert status["mqtt"] == "up"


def test_plain_mqtt_is_refused(stack: Config) -> None:
    """A plain-TCP MQTT client gets no CONNACK: the only listener speaks TLS and drops it."""
    plain = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique("plain"))
    plain.username_pw_set(stack.mqtt.bridge_user, bridge_password(stack))
    answers: list[str] = []
    plain.on_connect = lambda _c, _u, _f, reason, _p: answers.append(str(reason))
    plain.connect(stack.mqtt.host, stack.mqtt.port, keepalive=10)
    results = [plain.loop(timeout=0.5) for _ in range(10)]
    assert answers == []
    assert any(rc != mqtt.MQTT_ERR_SUCCESS for rc in results)  # the broker closed the connection


def test_tls_needs_the_generated_ca(stack: Config) -> None:
    untrusted = ssl.create_default_context()  # system CAs only: the broker's certificate is not among them
    with socket.create_connection((stack.mqtt.host, stack.mqtt.port), timeout=5) as raw, \
            pytest.raises(ssl.SSLCertVerificationError):
        untrusted.wrap_socket(raw, server_hostname=stack.mqtt.host)
    trusted = ssl.create_default_context(cafile=str(ca_file(stack)))
    for name in (stack.mqtt.host, "localhost"):  # the certificate names both
        with socket.create_connection((stack.mqtt.host, stack.mqtt.port), timeout=5) as raw, \
                trusted.wrap_socket(raw, server_hostname=name) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    assert try_connect(stack, stack.mqtt.bridge_user, bridge_password(stack)) == "Success"


def test_key_files_are_private(stack: Config) -> None:
    files = tls_files(stack)
    for key in (files.ca_key, files.server_key, brokerfiles.password_file(stack), brokerfiles.acl_file(stack)):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE(ca_file(stack).stat().st_mode) & 0o044  # the CA certificate is for everyone


def test_wrong_password_and_anonymous_are_refused(stack: Config, devices: dict[str, str]) -> None:
    device = next(iter(devices))
    assert try_connect(stack, device, devices[device]) == "Success"
    assert try_connect(stack, device, "not-" + devices[device]) == "Not authorized"
    assert try_connect(stack, stack.mqtt.bridge_user, "wrong") == "Not authorized"
    assert try_connect(stack, None, None) == "Not authorized"
    assert try_connect(stack, unique("nobody"), devices[device]) == "Not authorized"


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["v3.1.1", "v5"])
def test_device_reaches_the_bridge_only_under_its_own_topic(
    stack: Config, devices: dict[str, str], protocol: int
) -> None:
    """Mosquitto 2.0.11 answers a QoS-1 publish it denies by ACL with a PUBACK: 'Success' for MQTT 3.1.1
    (the protocol has no way to say no), 'Not authorized' (0x87) for MQTT v5; the connection stays
    open and the message reaches nobody."""
    me, other = list(devices)
    bridge = Session(stack, stack.mqtt.bridge_user, bridge_password(stack), protocol=mqtt.MQTTv5)
    device = Session(stack, me, devices[me], protocol=protocol)
    try:
        bridge.subscribe(share_filter(stack, unique("group")))
        assert bridge.suback == [["Granted QoS 1"]]
        denied = device.publish(stack.mqtt.device_topic(other), [b"spoofed-1", b"spoofed-2"])
        assert denied == (["Success"] * 2 if protocol == mqtt.MQTTv311 else ["Not authorized"] * 2)
        assert device.publish(f"{stack.mqtt.topic_prefix}/{me}/other", [b"wrong-leaf"]) == denied[:1]
        assert device.publish(stack.mqtt.device_topic(me), [b"own-1", b"own-2"]) == ["Success"] * 2
        wait_for(lambda: len(bridge.messages) >= 2, "the device's own readings at the bridge")
        assert settle(bridge) == [b"own-1", b"own-2"]
        assert {m.topic for m in bridge.messages} == {stack.mqtt.device_topic(me)}
        assert device.client.is_connected()
    finally:
        device.close()
        bridge.close()


def test_a_device_cannot_read_other_devices(stack: Config, devices: dict[str, str]) -> None:
    me, other = list(devices)
    snoop = Session(stack, me, devices[me])
    sender = Session(stack, other, devices[other])
    try:
        snoop.subscribe(f"{stack.mqtt.topic_prefix}/#")
        assert sender.publish(stack.mqtt.device_topic(other), [b"private"]) == ["Success"]
        assert settle(snoop) == []
    finally:
        snoop.close()
        sender.close()


def _persistent_bridge(stack: Config, client_id: str, protocol: int) -> Session:
    return Session(stack, stack.mqtt.bridge_user, bridge_password(stack), client_id=client_id,
                   protocol=protocol, clean=False, session_expiry_s=3600)


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["v3.1.1", "v5"])
def test_queued_for_a_disconnected_persistent_session(
    stack: Config, devices: dict[str, str], protocol: int
) -> None:
    me = next(iter(devices))
    client_id, group = unique("bridge"), unique("group")
    bridge = _persistent_bridge(stack, client_id, protocol)
    bridge.subscribe(share_filter(stack, group))
    bridge.close()
    sent = [f"offline-{i}".encode() for i in range(500)]
    device = Session(stack, me, devices[me])
    try:
        assert device.publish(stack.mqtt.device_topic(me), sent) == ["Success"] * len(sent)
    finally:
        device.close()
    back = _persistent_bridge(stack, client_id, protocol)
    try:
        wait_for(lambda: len(back.messages) >= len(sent), "the queued messages")
        assert settle(back) == sent  # all of them, in order, none twice
        assert all(m.qos == 1 for m in back.messages)
    finally:
        back.close()


def test_broker_restart_keeps_the_queue(stack: Config, devices: dict[str, str]) -> None:
    me = next(iter(devices))
    client_id, group = unique("bridge"), unique("group")
    bridge = _persistent_bridge(stack, client_id, mqtt.MQTTv311)
    bridge.subscribe(share_filter(stack, group))
    bridge.close()
    sent = [f"before-restart-{i}".encode() for i in range(200)]
    device = Session(stack, me, devices[me])
    try:
        assert device.publish(stack.mqtt.device_topic(me), sent) == ["Success"] * len(sent)
    finally:
        device.close()
    broker = MosquittoService(stack)
    assert broker.stop()
    assert broker.start()
    back = _persistent_bridge(stack, client_id, mqtt.MQTTv311)
    try:
        wait_for(lambda: len(back.messages) >= len(sent), "the queued messages after the restart")
        assert settle(back) == sent
    finally:
        back.close()
