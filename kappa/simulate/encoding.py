"""Readings as Avro records, flat rows and Confluent frames; schema ids from the registry."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import fastavro
import requests

from kappa.simulate.model import SCHEMA_DIR, _Reading

# ----------------------------------------------------------------------------- encoding


def _parsed_schema(root: Path, version: int) -> Any:
    return fastavro.parse_schema(json.loads((root / SCHEMA_DIR / f"v{version}.avsc").read_text()))


def _avro_record(r: _Reading, version: int, event_time: int | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "device_id": r.device.device_id,
        "site_id": r.device.site_id,
        "device_type": r.device.device_type,
        "seq": r.seq,
        "event_time": r.event_time if event_time is None else event_time,
        "status": r.status,
        "firmware_version": r.device.firmware,
        **r.values,
    }
    if version >= 2:
        rec["signal_rssi_dbm"] = r.rssi
        rec["location"] = dict(r.device.location)
    if version >= 3:
        rec["uptime_s"] = uptime_s(r)
    return rec


REBOOT_EVERY_MS = 7 * 86_400_000


def uptime_s(r: _Reading) -> int:
    """A v3 device's uptime at the reading: each device reboots weekly, at its own time of the week."""
    return (r.event_time + r.device.index * 3_600_000) % REBOOT_EVERY_MS // 1000


def _flat_row(rec: dict[str, Any], schema_id: int) -> dict[str, Any]:
    row = {k: v for k, v in rec.items() if k != "location"}
    row.setdefault("signal_rssi_dbm", None)
    loc = rec.get("location") or {}
    for sub in ("lat", "lon", "alt_m"):
        row[f"location_{sub}"] = loc.get(sub)
    row["uptime_s"] = row.pop("uptime_s", None)  # after location, as the decoder's row has it
    row["schema_id"] = schema_id
    return row


def _frame(schema_id: int, parsed: Any, rec: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(buf, parsed, rec)
    return buf.getvalue()




# ----------------------------------------------------------------------------- registry and Kafka


def register_schema(url: str, subject: str, schema: str, *, auto: bool, auth: tuple[str, str] | None,
                    verify: str | bool = True) -> int:
    """The id of `schema` under `subject`: registered if `auto`, else looked up (must exist). `verify`: the
    CA file the registry's certificate is checked against (`kappa.registry.ca_file`)."""
    path = f"/subjects/{subject}/versions" if auto else f"/subjects/{subject}"
    response = requests.post(
        url.rstrip("/") + path,
        json={"schema": schema},
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        auth=auth,
        verify=verify,
        timeout=30,
    )
    if response.status_code != 200:
        action = "register" if auto else "look up"
        raise RuntimeError(
            f"cannot {action} schema under {subject}: {response.status_code} {response.text[:300]}"
        )
    return int(response.json()["id"])


