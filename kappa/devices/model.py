"""A device as the registry knows it, the rules its fields follow, and the CSV import format.

Device ids become MQTT usernames and topic levels (`<prefix>/<device_id>/telemetry`) and file entries
(`id:hash`), so they are restricted to letters, digits, '.', '_' and '-': no '/', '+', '#', ':' or
spaces that would change what a topic or an ACL pattern means.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, fields

from kappa.errors import KappaError

DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
REQUIRED = ("device_id", "site_id", "device_type")
OPTIONAL = ("model", "firmware", "location", "installed_at")
CSV_COLUMNS = REQUIRED + OPTIONAL


class DeviceError(KappaError):
    """A user mistake about a device (bad id, unknown id, duplicate, bad CSV row); one line."""


@dataclass(frozen=True)
class Device:
    device_id: str
    site_id: str
    device_type: str
    model: str | None = None
    firmware: str | None = None
    location: str | None = None
    installed_at: dt.datetime | None = None
    status: str = "active"


def check_device_id(device_id: str, reserved: str) -> str:
    """The id if it may be a device's MQTT username; `reserved` is the bridge's username."""
    if not DEVICE_ID.match(device_id):
        raise DeviceError(
            f"invalid device id {device_id!r}: use 1-128 letters, digits, '.', '_' or '-' (starting with a "
            "letter or digit)"
        )
    if device_id == reserved:
        raise DeviceError(f"device id {device_id!r} is the bridge's MQTT username; choose another")
    return device_id


def parse_time(value: str) -> dt.datetime:
    """ISO-8601 date or date-time; without a zone it is taken as UTC."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise DeviceError(f"invalid installed_at {value!r}: want ISO-8601, e.g. 2024-05-01T08:00:00Z") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def make_device(values: dict[str, str | None], reserved: str) -> Device:
    """A Device from text fields (CLI options or a CSV row); empty optional fields become NULL."""
    clean = {k: (v.strip() if isinstance(v, str) else v) or None for k, v in values.items()}
    for name in REQUIRED:
        if not clean.get(name):
            raise DeviceError(f"{name} is required")
    installed = clean.get("installed_at")
    return Device(
        device_id=check_device_id(str(clean["device_id"]), reserved),
        site_id=str(clean["site_id"]),
        device_type=str(clean["device_type"]),
        model=clean.get("model"),
        firmware=clean.get("firmware"),
        location=clean.get("location"),
        installed_at=parse_time(installed) if installed else None,
    )


def parse_csv(text: str, reserved: str, source: str = "CSV") -> list[Device]:
    """Devices from a CSV with a header row of registry column names; errors name the line."""
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    if not header:
        raise DeviceError(f"{source}: empty file (want a header row: {','.join(CSV_COLUMNS)})")
    unknown = [name for name in header if name not in CSV_COLUMNS]
    missing = [name for name in REQUIRED if name not in header]
    if unknown or missing:
        problem = f"unknown column(s) {', '.join(unknown)}" if unknown else f"missing column(s) {', '.join(missing)}"
        raise DeviceError(f"{source} line 1: {problem}; allowed: {','.join(CSV_COLUMNS)}")
    reader.fieldnames = header
    devices: list[Device] = []
    first_line: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if None in row or any(value is None for value in row.values()):
            raise DeviceError(f"{source} line {line}: expected {len(header)} fields")
        if not any(value.strip() for value in row.values() if isinstance(value, str)):
            continue  # a blank line
        try:
            device = make_device(dict(row), reserved)
        except DeviceError as exc:
            raise DeviceError(f"{source} line {line}: {exc}") from None
        if device.device_id in first_line:
            raise DeviceError(
                f"{source} line {line}: device {device.device_id} already on line {first_line[device.device_id]}"
            )
        first_line[device.device_id] = line
        devices.append(device)
    if not devices:
        raise DeviceError(f"{source}: no devices after the header row")
    return devices


FIELD_NAMES = tuple(f.name for f in fields(Device))
