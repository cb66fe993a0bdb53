"""Registry changes as one step each: write the table, then re-render the broker's files and reload it,
and write the device's new metadata version to the devices topic (kappa/devices/versions.py).

Passwords are generated here, hashed, and handed back once to the caller (the CLI prints them and may
append them to a mode-600 secrets file); only the hash is stored.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from kappa.config import Config
from kappa.devices import brokerfiles, store, versions
from kappa.devices.credentials import append_secrets, generate_password, hash_password
from kappa.devices.model import Device, parse_csv
from kappa.errors import KappaError


def add(config: Config, conn: psycopg.Connection, devices: list[Device],
        secrets_file: Path | None = None) -> list[tuple[str, str]]:
    """Register devices (all or none) with a fresh password each; returns (device_id, password)."""
    passwords = [(device.device_id, generate_password()) for device in devices]
    store.add(conn, [(device, hash_password(pw)) for device, (_, pw) in zip(devices, passwords, strict=True)])
    _after_change(config, conn, passwords, secrets_file)
    versions.publish(config, [(device, 0) for device in devices])  # a first version: valid from the epoch
    return passwords


def import_csv(config: Config, conn: psycopg.Connection, path: Path,
               secrets_file: Path | None = None) -> list[tuple[str, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise KappaError(f"cannot read {path}: {exc.strerror}") from None
    return add(config, conn, parse_csv(text, config.mqtt.bridge_user, source=str(path)), secrets_file)


def rotate(config: Config, conn: psycopg.Connection, device_id: str,
           secrets_file: Path | None = None) -> str:
    """A new password for an active device; the old one is refused once the broker has reloaded."""
    password = generate_password()
    store.set_credential(conn, device_id, hash_password(password))
    _after_change(config, conn, [(device_id, password)], secrets_file)
    return password


def decommission(config: Config, conn: psycopg.Connection, device_id: str) -> Device:
    device = store.decommission(conn, device_id)
    brokerfiles.sync(config, conn)
    versions.publish_now(config, [device])
    return device


def move(config: Config, conn: psycopg.Connection, device_id: str, changes: dict[str, str],
         valid_from_ms: int | None = None) -> Device:
    """Change a device's site/model/firmware/location; jobs see it from `valid_from_ms` (default now)."""
    device = store.update(conn, device_id, changes)
    versions.publish_now(config, [device], valid_from_ms)
    return device


def _after_change(config: Config, conn: psycopg.Connection, passwords: list[tuple[str, str]],
                  secrets_file: Path | None) -> None:
    if secrets_file is not None:
        append_secrets(secrets_file, passwords)
    brokerfiles.sync(config, conn)
