"""Device metadata as versions in Kafka (topic kafka.devices_topic): what the registry says about a
device (site, type, model, ...) and from which event time, so jobs join a reading with the metadata in
force when it was taken (sql/telemetry/device_versions.sql). A device's first version is valid from
the epoch (its readings before registration get it too); a move or a decommissioning is valid from
the time given (default now). Same topic rules as the alert thresholds: see kappa/reference_log.py.
"""

from __future__ import annotations

import time

import psycopg

from kappa import reference_log
from kappa.config import Config
from kappa.devices import store
from kappa.devices.model import Device


def record(device: Device, valid_from_ms: int) -> tuple[str, dict[str, object]]:
    return device.device_id, {
        "device_key": device.device_id, "device_id": device.device_id, "site_id": device.site_id,
        "device_type": device.device_type, "model": device.model, "firmware": device.firmware,
        "location": device.location, "status": device.status, "valid_from_ms": valid_from_ms,
        "valid_from_utc": reference_log.iso(valid_from_ms)}


def publish(config: Config, devices: list[tuple[Device, int]]) -> None:
    """Write one version per (device, valid_from_ms)."""
    reference_log.publish(config, config.kafka.devices_topic, [record(d, ms) for d, ms in devices])


def publish_now(config: Config, devices: list[Device], valid_from_ms: int | None = None) -> None:
    publish(config, [(d, int(time.time() * 1000) if valid_from_ms is None else valid_from_ms) for d in devices])


def seed(config: Config, conn: psycopg.Connection) -> list[Device]:
    """Idempotent: every registered device without a version in the topic gets one valid from the epoch."""
    reference_log.ensure_topic(config, config.kafka.devices_topic)
    if not store.table_exists(conn):
        return []
    known = {r.key for r in reference_log.read_all(config, config.kafka.devices_topic)}
    missing = [d for d in store.list_devices(conn, None) if d.device_id not in known]
    if missing:
        publish(config, [(d, 0) for d in missing])
    return missing
