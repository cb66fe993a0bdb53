"""The `devices` table (db/migrations/0010_devices.sql): every read and write of the registry is here.

Functions take an open psycopg connection (autocommit, as `kappa.stack.postgres.connect` gives) and
run each change in its own transaction; callers then re-render the broker's files (brokerfiles.sync).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psycopg
import psycopg.errors

from kappa.devices.model import FIELD_NAMES, Device, DeviceError

_COLUMNS = ", ".join(FIELD_NAMES)
_INSERT_COLUMNS = ("device_id", "site_id", "device_type", "model", "firmware", "location", "installed_at",
                   "credential_hash")


class RegistryMissing(DeviceError):
    """The devices table does not exist yet."""


def require_table(conn: psycopg.Connection) -> None:
    if conn.execute("SELECT to_regclass('devices')").fetchone() == (None,):
        raise RegistryMissing("the devices table does not exist: run `kappa db migrate` first")


def table_exists(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT to_regclass('devices')").fetchone() != (None,)


def active_device_ids(conn: psycopg.Connection) -> set[str]:
    """Ids of every device that may publish (the bridge dead-letters the others as UNKNOWN_DEVICE)."""
    return {row[0] for row in conn.execute("SELECT device_id FROM devices WHERE status = 'active'")}


def broker_entries(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(device_id, credential_hash) of active devices with a credential: the broker's password file."""
    rows = conn.execute(
        "SELECT device_id, credential_hash FROM devices "
        "WHERE status = 'active' AND credential_hash IS NOT NULL ORDER BY device_id"
    )
    return [(row[0], row[1]) for row in rows]


def _row(device: Device, credential_hash: str) -> tuple[object, ...]:
    return (device.device_id, device.site_id, device.device_type, device.model, device.firmware,
            device.location, device.installed_at, credential_hash)


def add(conn: psycopg.Connection, devices: Iterable[tuple[Device, str]]) -> int:
    """Insert (device, credential_hash) pairs in one transaction: all of them or none."""
    pairs = list(devices)
    require_table(conn)
    ids = [device.device_id for device, _ in pairs]
    with conn.transaction():
        taken = conn.execute("SELECT device_id FROM devices WHERE device_id = ANY(%s) ORDER BY device_id",
                             (ids,)).fetchall()
        if taken:
            listing = ", ".join(row[0] for row in taken[:5]) + (" ..." if len(taken) > 5 else "")
            raise DeviceError(f"device(s) already registered: {listing}")
        placeholders = ", ".join(["%s"] * len(_INSERT_COLUMNS))
        with conn.cursor() as cur, _duplicates_as_errors():
            cur.executemany(
                f"INSERT INTO devices ({', '.join(_INSERT_COLUMNS)}) VALUES ({placeholders})",
                [_row(device, credential_hash) for device, credential_hash in pairs],
            )
    return len(pairs)


@contextmanager
def _duplicates_as_errors() -> Iterator[None]:
    """A concurrent `add` of the same id (between our check and insert) is the same user mistake."""
    try:
        yield
    except psycopg.errors.UniqueViolation as exc:
        raise DeviceError(f"device already registered ({exc.diag.message_detail})") from None


def get(conn: psycopg.Connection, device_id: str) -> Device | None:
    require_table(conn)
    row = conn.execute(f"SELECT {_COLUMNS} FROM devices WHERE device_id = %s", (device_id,)).fetchone()
    return Device(*row) if row else None


def require(conn: psycopg.Connection, device_id: str) -> Device:
    device = get(conn, device_id)
    if device is None:
        raise DeviceError(f"unknown device {device_id!r} (see `kappa devices list`)")
    return device


def list_devices(conn: psycopg.Connection, status: str | None = None) -> list[Device]:
    require_table(conn)
    if status:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM devices WHERE status = %s ORDER BY device_id", (status,))
    else:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM devices ORDER BY device_id")
    return [Device(*row) for row in rows]


def decommission(conn: psycopg.Connection, device_id: str) -> Device:
    """Mark a device decommissioned and drop its credential: it can no longer connect (after a reload)."""
    device = require(conn, device_id)
    if device.status == "decommissioned":
        raise DeviceError(f"device {device_id} is already decommissioned")
    conn.execute(
        "UPDATE devices SET status = 'decommissioned', credential_hash = NULL, updated_at = now() "
        "WHERE device_id = %s",
        (device_id,),
    )
    return require(conn, device_id)


def set_credential(conn: psycopg.Connection, device_id: str, credential_hash: str) -> None:
    """Replace an active device's credential (the old password stops working after a reload)."""
    device = require(conn, device_id)
    if device.status != "active":
        raise DeviceError(f"device {device_id} is decommissioned; it gets no credentials")
    conn.execute("UPDATE devices SET credential_hash = %s, updated_at = now() WHERE device_id = %s",
                 (credential_hash, device_id))


def update(conn: psycopg.Connection, device_id: str, changes: dict[str, str]) -> Device:
    """Change a device's site, model, firmware or location (a move): the registry keeps the latest."""
    allowed = {"site_id", "model", "firmware", "location"}
    if not changes or set(changes) - allowed:
        raise DeviceError(f"nothing to change, or not changeable: {', '.join(sorted(set(changes) - allowed))}")
    require(conn, device_id)
    assignments = ", ".join(f"{name} = %s" for name in changes)
    conn.execute(f"UPDATE devices SET {assignments}, updated_at = now() WHERE device_id = %s",
                 (*changes.values(), device_id))
    return require(conn, device_id)
