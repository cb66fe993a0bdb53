"""Decode Confluent-framed Avro telemetry into one flat row type, never raising on bad input.

Why this exists: the Kafka topic mixes writer schema versions (v1, v2, ...) and may carry garbage.
Flink needs one row type and a dead-letter reason per bad record instead of a failed job, so every
payload is resolved against a single reader schema (the latest telemetry schema) and either yields
a flat row or a reason code from `Reason`.

Wire format (Confluent): byte 0 = magic 0, bytes 1-4 = big-endian schema id, then the Avro body.
Checks, in order: longer than `max_record_bytes` (schemas/avro/telemetry/limits.json) -> OVERSIZED
(dead-lettered without its payload); None/shorter than 5 bytes -> TOO_SHORT; first byte != 0 ->
BAD_MAGIC; lookup finds nothing or an unparseable schema -> UNKNOWN_SCHEMA_ID; writer not resolvable
to the reader -> RESOLUTION_FAILED; Avro decoding fails or leaves trailing bytes -> CORRUPT_BODY;
NaN/inf double, a string with a NUL byte, an empty id, a string over its length limit or a number
outside its declared range (limits.json) -> INVALID_VALUE with the field named; event time more than
`max_future_ms` after the reference time `now_ms` (the jobs use the Kafka record timestamp capped at
the wall clock) -> FUTURE_EVENT_TIME.

A registry that cannot be reached is *not* bad input: `RegistrySchemaLookup` raises
`SchemaRegistryUnavailable` so the job fails and restarts from its checkpoint instead of
dead-lettering good data. No pyflink import here: the PyFlink UDF wrapper lives with the job.
"""

from __future__ import annotations

import copy
import io
import json
import math
import re
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import fastavro
import pandas as pd
from fastavro._read_common import SchemaResolutionError

from udfs.limits import Limits, limits
from udfs.schema_lookup import SchemaLookup

MAGIC_BYTE = 0
HEADER_SIZE = 5
DAY_MS = 86_400_000
MAX_ERROR_CHARS = 500
DEFAULT_READER_SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas/avro/telemetry/v3.avsc"


def reference_time_ms(record_timestamp_ms: int | None, now_ms: int | None = None) -> int:
    """The reference time of the future-event-time check, as the jobs use it (LastDecode.java): the
    Kafka record timestamp capped at the wall clock. Deterministic in a replay for every record whose
    timestamp was not itself ahead of the clock; a forged future timestamp cannot widen the bound."""
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return now if record_timestamp_ms is None or record_timestamp_ms < 0 else min(record_timestamp_ms, now)


class Reason(StrEnum):
    """Dead-letter reason codes (the `reason` field of schemas/avro/dead_letters)."""

    BAD_MAGIC = "BAD_MAGIC"
    TOO_SHORT = "TOO_SHORT"
    UNKNOWN_SCHEMA_ID = "UNKNOWN_SCHEMA_ID"
    CORRUPT_BODY = "CORRUPT_BODY"
    RESOLUTION_FAILED = "RESOLUTION_FAILED"
    INVALID_VALUE = "INVALID_VALUE"
    FUTURE_EVENT_TIME = "FUTURE_EVENT_TIME"
    OVERSIZED = "OVERSIZED"


# The flat row type for the default reader schema (telemetry v3) + the writer schema id.
# Nested `location` is flattened to location_<field>; event_time is epoch milliseconds. A field added by
# a later version (v2: signal_rssi_dbm, location; v3: uptime_s) reads as its default, null, from older writers.
FLAT_FIELDS: list[tuple[str, str]] = [
    ("device_id", "STRING"),
    ("site_id", "STRING"),
    ("device_type", "STRING"),
    ("seq", "BIGINT"),
    ("event_time", "BIGINT"),
    ("status", "STRING"),
    ("firmware_version", "STRING"),
    ("temperature_c", "DOUBLE"),
    ("humidity_pct", "DOUBLE"),
    ("pressure_hpa", "DOUBLE"),
    ("vibration_mm_s", "DOUBLE"),
    ("power_w", "DOUBLE"),
    ("battery_pct", "DOUBLE"),
    ("signal_rssi_dbm", "INT"),
    ("location_lat", "DOUBLE"),
    ("location_lon", "DOUBLE"),
    ("location_alt_m", "DOUBLE"),
    ("uptime_s", "BIGINT"),
    ("schema_id", "INT"),
]
DLQ_FIELDS: list[tuple[str, str]] = [("dlq_reason", "STRING"), ("dlq_error", "STRING")]
# Columns of decode_batch's DataFrame, in order.
BATCH_FIELDS: list[tuple[str, str]] = FLAT_FIELDS + DLQ_FIELDS

_PRIMITIVE_TYPES = {
    "string": "STRING",
    "long": "BIGINT",
    "int": "INT",
    "double": "DOUBLE",
    "float": "DOUBLE",
    "boolean": "BOOLEAN",
    "bytes": "BYTES",
}
_OBJECT_REPR = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")
_STRIPPED_LOGICAL_TYPES = {"timestamp-millis", "local-timestamp-millis"}


@dataclass(frozen=True, slots=True)
class DecodeResult:
    """Outcome of one payload: `row` when ok, else `reason` + `error`."""

    ok: bool
    row: dict[str, Any] | None = None
    reason: Reason | None = None
    error: str | None = None
    schema_id: int | None = None


def _fail(reason: Reason, error: str, schema_id: int | None = None) -> DecodeResult:
    return DecodeResult(False, None, reason, error[:MAX_ERROR_CHARS], schema_id)


def _strip_timestamp_logical_types(schema: Any) -> Any:
    """Drop timestamp-millis annotations so fastavro returns epoch millis, not datetimes."""
    if isinstance(schema, list):
        return [_strip_timestamp_logical_types(s) for s in schema]
    if isinstance(schema, dict):
        out = {k: _strip_timestamp_logical_types(v) for k, v in schema.items()}
        if out.get("logicalType") in _STRIPPED_LOGICAL_TYPES and out.get("type") == "long":
            del out["logicalType"]
        return out
    return schema


def _non_null(schema: Any) -> Any:
    if isinstance(schema, list):
        branches = [s for s in schema if s != "null"]
        if len(branches) != 1:
            raise ValueError(f"only [null, T] unions are supported in the reader schema: {schema}")
        return branches[0]
    return schema


def _type_name(schema: Any) -> str:
    schema = _non_null(schema)
    if isinstance(schema, dict):
        if schema.get("type") == "enum":
            return "STRING"
        schema = schema.get("type")
    if schema not in _PRIMITIVE_TYPES:
        raise ValueError(f"unsupported reader field type {schema!r}")
    return _PRIMITIVE_TYPES[schema]


def flat_layout(reader_schema: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...], str]]:
    """(flat name, path into the decoded record, type name) for each leaf of the reader schema."""
    layout: list[tuple[str, tuple[str, ...], str]] = []
    for field in reader_schema["fields"]:
        ftype = _non_null(field["type"])
        if isinstance(ftype, dict) and ftype.get("type") == "record":
            for sub in ftype["fields"]:
                layout.append(
                    (f"{field['name']}_{sub['name']}", (field["name"], sub["name"]), _type_name(sub["type"]))
                )
        else:
            layout.append((field["name"], (field["name"],), _type_name(field["type"])))
    return layout


def load_reader_schema(path: Path | str | None = None) -> dict[str, Any]:
    """The job's reader schema: by default the latest telemetry schema in schemas/avro."""
    return json.loads(Path(path or DEFAULT_READER_SCHEMA_PATH).read_text())


def _epoch_ms(value: Any) -> Any:
    if isinstance(value, datetime):  # a logical type we did not strip
        return int(value.timestamp() * 1000)
    return value


class AvroDecoder:
    """Decodes Confluent-framed payloads into flat rows of the reader schema.

    Parsed writer schemas (and unknown ids) are cached per id, so the lookup is called once per id.
    """

    def __init__(
        self,
        lookup: SchemaLookup,
        reader_schema: Mapping[str, Any] | str | None = None,
        *,
        max_future_ms: int = DAY_MS,
        event_time_field: str = "event_time",
        record_limits: Limits | None = None,
    ) -> None:
        if reader_schema is None:
            reader_schema = load_reader_schema()
        elif isinstance(reader_schema, str):
            reader_schema = json.loads(reader_schema)
        assert isinstance(reader_schema, Mapping)
        self._lookup = lookup
        self._reader = fastavro.parse_schema(
            _strip_timestamp_logical_types(copy.deepcopy(dict(reader_schema)))
        )
        self._layout = flat_layout(reader_schema)
        self.fields: list[tuple[str, str]] = [(name, t) for name, _, t in self._layout] + [
            ("schema_id", "INT")
        ]
        self._double_fields = [name for name, _, t in self._layout if t == "DOUBLE"]
        self._event_time_field = event_time_field
        self.max_future_ms = max_future_ms
        self.limits = record_limits or limits()
        # id -> parsed writer schema, or an error text when the id is unknown / unparseable.
        self._writers: dict[int, Any] = {}

    def _writer(self, schema_id: int) -> Any:
        cached = self._writers.get(schema_id)
        if cached is not None:
            return cached
        text = self._lookup(schema_id)  # SchemaRegistryUnavailable propagates on purpose
        if text is None:
            parsed: Any = f"schema id {schema_id} is not registered"
        else:
            try:
                parsed = fastavro.parse_schema(_strip_timestamp_logical_types(json.loads(text)))
            except Exception as exc:  # noqa: BLE001 - any parse failure means unusable
                parsed = f"schema id {schema_id} is not a valid Avro schema: {exc}"
        self._writers[schema_id] = parsed
        return parsed

    def decode(
        self, payload: bytes | bytearray | memoryview | None, now_ms: int | None = None
    ) -> DecodeResult:
        """Decode one payload; never raises except when the schema registry is unreachable."""
        if payload is not None and len(payload) > self.limits.max_record_bytes:
            return _fail(
                Reason.OVERSIZED,
                f"payload is {len(payload)} bytes; the limit is {self.limits.max_record_bytes} (limits.json)",
            )
        if payload is None or len(payload) < HEADER_SIZE:
            size = "null" if payload is None else f"{len(payload)} bytes"
            return _fail(
                Reason.TOO_SHORT, f"payload is {size}; a Confluent frame needs at least {HEADER_SIZE}"
            )
        data = bytes(payload)
        if data[0] != MAGIC_BYTE:
            return _fail(Reason.BAD_MAGIC, f"first byte is 0x{data[0]:02x}, expected magic byte 0x00")
        (schema_id,) = struct.unpack(">i", data[1:HEADER_SIZE])
        writer = self._writer(schema_id)
        if isinstance(writer, str):
            return _fail(Reason.UNKNOWN_SCHEMA_ID, writer, schema_id)
        body = io.BytesIO(data[HEADER_SIZE:])
        try:
            record = fastavro.schemaless_reader(body, writer, self._reader)
        except SchemaResolutionError as exc:
            return _fail(Reason.RESOLUTION_FAILED, f"schema id {schema_id}: {exc}", schema_id)
        except Exception as exc:  # noqa: BLE001 - EOFError, UnicodeDecodeError, IndexError, ...
            text = _OBJECT_REPR.sub("the payload", str(exc))  # no memory addresses: errors must replay
            return _fail(
                Reason.CORRUPT_BODY, f"{type(exc).__name__} at body byte {body.tell()}: {text}", schema_id
            )
        trailing = len(data) - HEADER_SIZE - body.tell()
        if trailing:
            return _fail(Reason.CORRUPT_BODY, f"{trailing} trailing bytes after the Avro record", schema_id)
        if not isinstance(record, dict):
            return _fail(
                Reason.RESOLUTION_FAILED, f"schema id {schema_id} does not decode to a record", schema_id
            )
        row = self._flatten(record)
        row["schema_id"] = schema_id
        problem = self._invalid(row)
        if problem:
            return _fail(Reason.INVALID_VALUE, problem, schema_id)
        problem = self._ahead(row, time.time_ns() // 1_000_000 if now_ms is None else now_ms)
        if problem:
            return _fail(Reason.FUTURE_EVENT_TIME, problem, schema_id)
        return DecodeResult(True, row, None, None, schema_id)

    def _flatten(self, record: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name, path, _ in self._layout:
            value: Any = record
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            row[name] = _epoch_ms(value)
        return row

    def _invalid(self, row: dict[str, Any]) -> str | None:
        for name in self._double_fields:
            value = row[name]
            if value is not None and not math.isfinite(value):
                return f"{name} is {value}"
        for name, value in row.items():  # in field order, as the Java decoder checks them
            problem = self.limits.string_problem(name, value) or self.limits.range_problem(name, value)
            if problem:
                return problem
        return None

    def _ahead(self, row: dict[str, Any], now_ms: int) -> str | None:
        event_time = row.get(self._event_time_field)
        if isinstance(event_time, int) and event_time > now_ms + self.max_future_ms:
            return (
                f"{self._event_time_field} {event_time} is {event_time - now_ms} ms after the reference time "
                f"{now_ms} (bound {self.max_future_ms} ms)"
            )
        return None

    def decode_batch(self, payloads: pd.Series, now_ms: int | None = None) -> pd.DataFrame:
        """Vectorized form for a Flink pandas UDF: one row per payload, columns = BATCH_FIELDS.

        Integer columns are object dtype (Python int or None) and DOUBLE columns float64 (NaN =
        null), the shapes PyFlink's pandas->Arrow conversion accepts with a null mask.
        One `now_ms` is used for the whole batch.
        """
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        names = [name for name, _ in self.fields]
        columns: dict[str, list[Any]] = {name: [] for name in names + ["dlq_reason", "dlq_error"]}
        for payload in payloads:
            result = self.decode(payload, now)
            row = result.row or {}
            for name in names:
                columns[name].append(row.get(name))
            columns["dlq_reason"].append(None if result.reason is None else str(result.reason))
            columns["dlq_error"].append(result.error)
        frame = {}
        for name, type_name in self.fields + DLQ_FIELDS:
            dtype = "float64" if type_name == "DOUBLE" else object
            frame[name] = pd.Series(columns[name], dtype=dtype, index=payloads.index)
        return pd.DataFrame(frame)


def decode(payload: bytes | None, decoder: AvroDecoder, *, now_ms: int | None = None) -> DecodeResult:
    """Scalar API: decode one payload with `decoder` (which holds the lookup and caches)."""
    return decoder.decode(payload, now_ms)


def decode_batch(payloads: pd.Series, decoder: AvroDecoder, *, now_ms: int | None = None) -> pd.DataFrame:
    """Batch API for pandas UDFs; same results as `decode` row by row."""
    return decoder.decode_batch(payloads, now_ms)
