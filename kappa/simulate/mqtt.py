"""Publishing a run as the devices themselves (`kappa simulate --via mqtt`).

Each simulated device is registered in the device registry (`kappa devices`) with its own password,
kept in a mode-600 secrets file in the data folder, and publishes its records to its own topic
(`<mqtt.topic_prefix>/<device_id>/telemetry`) over the broker's TLS listener at QoS 1, in the
simulated send order. A device that goes offline disconnects, and reconnects when its buffered
backlog is due; a reconnect storm drops every connection at once and opens them all again. Before a
device disconnects, the broker has acknowledged all it sent, so nothing is in flight across a
disconnect: what the broker acknowledged, the bridge forwards at least once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho

from kappa import waiting
from kappa.config import Config, read_env_file
from kappa.simulate.model import ProducedRecord, SimulationSpec, _Device

CONNECT_TIMEOUT_S = 20.0
ACK_TIMEOUT_S = 120.0


def secrets_path(config: Config) -> Path:
    """Where the simulated fleet's device passwords are kept (mode 600, `device_id=password` lines)."""
    return config.data_dir / "simulate" / "device-secrets.env"


def fleet_credentials(config: Config, devices: list[_Device], log: Callable[[str], None]) -> dict[str, str]:
    """device_id -> password for every simulated device: registered now if new, given a new password if
    the registry knows it but this data folder does not hold its password."""
    from kappa.devices import admin, store
    from kappa.devices.model import Device
    from kappa.stack.postgres import connect

    path = secrets_path(config)
    known = read_env_file(path)
    with connect(config) as conn:
        registered = {d.device_id: d for d in store.list_devices(conn)}
        new = [Device(d.device_id, d.site_id, d.device_type, firmware=d.firmware)
               for d in devices if d.device_id not in registered]
        if new:
            admin.add(config, conn, new, secrets_file=path)
            log(f"simulate: registered {len(new)} devices in the device registry (passwords in {path})")
        for d in devices:
            entry = registered.get(d.device_id)
            if entry is not None and (entry.status != "active" or d.device_id not in known):
                raise RuntimeError(
                    f"device {d.device_id} is registered but {'decommissioned' if entry.status != 'active' else ''}"
                    f"{'' if entry.status != 'active' else 'its password is not in ' + str(path)}; "
                    f"use another --seed/--devices, or `kappa devices rotate-credentials {d.device_id} "
                    f"--secrets-file {path}`")
    known = read_env_file(path)
    return {d.device_id: known[d.device_id] for d in devices}


class _DeviceClient:
    """One device's MQTT connection; counts what the broker has not acknowledged yet."""

    def __init__(self, config: Config, device_id: str, password: str) -> None:
        from kappa.stack.mosquitto import client

        self.config = config
        self.device_id = device_id
        self.topic = config.mqtt.device_topic(device_id)
        self.client = client(config, device_id, password, client_id=f"sim-{device_id}")
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.connected = False
        self._connack = threading.Event()
        self._refused: str | None = None
        self._pending = 0
        self._lock = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish

    def _on_connect(self, _c: paho.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        if str(reason) != "Success":
            self._refused = str(reason)
        self._connack.set()

    def _on_publish(self, _c: paho.Client, _u: object, _mid: int, _reason: object, _p: object) -> None:
        with self._lock:
            self._pending -= 1
            self._lock.notify_all()

    def connect(self) -> None:
        self._connack.clear()
        self._refused = None
        self.client.connect(self.config.mqtt.host, self.config.mqtt.port, keepalive=30)
        self.client.loop_start()  # the network thread of this connection; stopped at disconnect
        if not self._connack.wait(CONNECT_TIMEOUT_S):
            raise RuntimeError(f"{self.device_id}: no CONNACK from the broker within {CONNECT_TIMEOUT_S:.0f}s")
        if self._refused:
            raise RuntimeError(f"{self.device_id}: the broker refused the connection: {self._refused}")
        self.connected = True

    def publish(self, payload: bytes) -> None:
        if not self.connected:
            self.connect()
        with self._lock:
            self._pending += 1
        info = self.client.publish(self.topic, payload, qos=1)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"{self.device_id}: publish failed: {paho.error_string(info.rc)}")

    def wait_acked(self) -> None:
        deadline = waiting.Deadline(ACK_TIMEOUT_S)
        with self._lock:
            while self._pending > 0:
                if not self._lock.wait(deadline.remaining) and deadline.passed:
                    raise RuntimeError(f"{self.device_id}: {self._pending} publishes unacknowledged after "
                                       f"{ACK_TIMEOUT_S:.0f}s")

    def disconnect(self) -> None:
        if self.connected:
            self.wait_acked()
            self.client.disconnect()
            self.client.loop_stop()
            self.connected = False

    def close(self) -> None:
        self.disconnect()


def _offline_windows(records: list[ProducedRecord]) -> dict[str, tuple[int, int]]:
    """device -> (went offline, came back) in simulated send time, from its backlog records."""
    windows: dict[str, tuple[int, int]] = {}
    for r in records:
        if r.backlog:
            start, back = windows.get(r.device_id, (r.event_time, r.send_ms))
            windows[r.device_id] = (min(start, r.event_time), min(back, r.send_ms))
    return windows


def publish(config: Config, spec: SimulationSpec, records: list[ProducedRecord], credentials: dict[str, str],
            log: Callable[[str], None], advance: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Publish every record as its device, in order; returns counts of connections and disconnects."""
    clients = {device: _DeviceClient(config, device, password) for device, password in credentials.items()}
    windows = _offline_windows(records)
    storms = {round(len(records) * (k + 1) / (spec.reconnect_storms + 1)) for k in range(spec.reconnect_storms)}
    stats = {"connects": 0, "offline_disconnects": 0, "storms": 0}
    started = time.monotonic()
    try:
        for device_client in clients.values():
            device_client.connect()
            stats["connects"] += 1
        for i, record in enumerate(records, 1):
            if i in storms:
                for device_client in clients.values():
                    device_client.disconnect()
                for device_client in clients.values():
                    device_client.connect()
                    stats["connects"] += 1
                stats["storms"] += 1
                log(f"simulate: reconnect storm: {len(clients)} devices disconnected and reconnected")
            for device, (gone, back) in windows.items():
                if gone <= record.send_ms < back and clients[device].connected:
                    clients[device].disconnect()
                    stats["offline_disconnects"] += 1
            device_client = clients[record.device_id]
            if not device_client.connected:
                stats["connects"] += 1
            device_client.publish(record.value)
            if spec.rate:
                ahead = started + i / spec.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
            if advance is not None:
                advance(i, len(records))
            elif spec.progress_every and i % spec.progress_every == 0:
                log(f"simulate: published {i}/{len(records)} records")
        for device_client in clients.values():
            device_client.wait_acked()
    finally:
        for device_client in clients.values():
            try:
                device_client.close()
            except RuntimeError as exc:
                log(f"simulate: {exc}")
    return stats
