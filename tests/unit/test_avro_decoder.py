"""The Confluent-Avro decoder: every dead-letter reason, v1+v2+v3 into one row type, batch == scalar."""

from __future__ import annotations

import io
import json
import math
import random
import struct
from pathlib import Path

import fastavro
import pandas as pd
import pytest
import requests

from udfs.avro_decoder import BATCH_FIELDS, FLAT_FIELDS, AvroDecoder, Reason, decode, decode_batch
from udfs.limits import limits
from udfs.schema_lookup import DictSchemaLookup, RegistrySchemaLookup, SchemaRegistryUnavailable

pytestmark = pytest.mark.unit

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas/avro/telemetry"
V1 = (SCHEMAS / "v1.avsc").read_text()
V2 = (SCHEMAS / "v2.avsc").read_text()
V3 = (SCHEMAS / "v3.avsc").read_text()
# Same record name, but lacks site_id which the reader requires without a default.
NO_SITE = json.dumps(
    {
        "type": "record",
        "name": "Telemetry",
        "namespace": "io.kappa.iot",
        "fields": [{"name": "device_id", "type": "string"}],
    }
)
NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000


def frame(schema_id: int, schema: str, record: dict) -> bytes:
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(json.loads(schema)), record)
    return buf.getvalue()


def reading(**overrides: object) -> dict:
    rec = {
        "device_id": "dev-00001",
        "site_id": "site-01",
        "device_type": "environmental",
        "seq": 17,
        "event_time": NOW - 60_000,
        "status": "OK",
        "firmware_version": "1.5.0",
        "temperature_c": 21.5,
        "humidity_pct": 48.2,
        "pressure_hpa": 1012.9,
        "vibration_mm_s": None,
        "power_w": None,
        "battery_pct": 88.0,
        "signal_rssi_dbm": -71,
        "location": {"lat": 48.1, "lon": 11.5, "alt_m": 520.0},
    }
    rec.update(overrides)
    return rec


@pytest.fixture
def lookup() -> DictSchemaLookup:
    return DictSchemaLookup({1: V1, 2: V2, 3: NO_SITE, 4: "{not json", 5: V3})


@pytest.fixture
def decoder(lookup: DictSchemaLookup) -> AvroDecoder:
    return AvroDecoder(lookup)


def test_flat_fields_match_the_reader_schema(decoder: AvroDecoder) -> None:
    assert decoder.fields == FLAT_FIELDS
    assert BATCH_FIELDS[-2:] == [("dlq_reason", "STRING"), ("dlq_error", "STRING")]
    assert {t for _, t in FLAT_FIELDS} <= {"STRING", "BIGINT", "DOUBLE", "INT"}


def test_v2_decodes_to_a_flat_row(decoder: AvroDecoder) -> None:
    result = decode(frame(2, V2, reading()), decoder, now_ms=NOW)
    assert result.ok and result.reason is None and result.error is None
    assert result.row == {
        "device_id": "dev-00001",
        "site_id": "site-01",
        "device_type": "environmental",
        "seq": 17,
        "event_time": NOW - 60_000,
        "status": "OK",
        "firmware_version": "1.5.0",
        "temperature_c": 21.5,
        "humidity_pct": 48.2,
        "pressure_hpa": 1012.9,
        "vibration_mm_s": None,
        "power_w": None,
        "battery_pct": 88.0,
        "signal_rssi_dbm": -71,
        "location_lat": 48.1,
        "location_lon": 11.5,
        "location_alt_m": 520.0,
        "uptime_s": None,
        "schema_id": 2,
    }
    assert type(result.row["event_time"]) is int


def test_v1_and_v2_writers_decode_into_one_row_type(decoder: AvroDecoder) -> None:
    v1 = decoder.decode(frame(1, V1, reading()), NOW)
    v2 = decoder.decode(frame(2, V2, reading(location=None)), NOW)
    assert v1.ok and v2.ok
    assert list(v1.row) == list(v2.row) == [name for name, _ in FLAT_FIELDS]
    assert v1.row["signal_rssi_dbm"] is None and v1.row["location_lat"] is None
    assert v1.row["schema_id"] == 1 and v2.row["schema_id"] == 2
    assert v2.row["signal_rssi_dbm"] == -71 and v2.row["location_alt_m"] is None
    common = {k for k in v1.row if k not in ("schema_id", "signal_rssi_dbm") and not k.startswith("location")}
    assert {k: v1.row[k] for k in common} == {k: v2.row[k] for k in common}


def test_v3_adds_uptime_that_older_writers_read_as_null(decoder: AvroDecoder) -> None:
    """The reader is v3 (the latest): v3's uptime_s comes through, v1 and v2 records read it as its
    default, null, and every other field is the same whichever version wrote it."""
    v1, v2 = decoder.decode(frame(1, V1, reading()), NOW), decoder.decode(frame(2, V2, reading()), NOW)
    v3 = decoder.decode(frame(5, V3, reading(uptime_s=86_400)), NOW)
    assert v1.ok and v2.ok and v3.ok, (v1.error, v2.error, v3.error)
    assert list(v3.row) == [name for name, _ in FLAT_FIELDS] and FLAT_FIELDS[-2:] == [
        ("uptime_s", "BIGINT"), ("schema_id", "INT")]
    assert (v1.row["uptime_s"], v2.row["uptime_s"], v3.row["uptime_s"], v3.row["schema_id"]) == (None, None, 86_400, 5)
    assert {k: v for k, v in v3.row.items() if k not in ("uptime_s", "schema_id")} == {
        k: v for k, v in v2.row.items() if k not in ("uptime_s", "schema_id")}
    assert decoder.decode(frame(5, V3, reading()), NOW).row["uptime_s"] is None  # v3 firmware without it
    negative = decoder.decode(frame(5, V3, reading(uptime_s=-1)), NOW)
    assert (negative.reason, negative.error) == (Reason.INVALID_VALUE, "uptime_s is outside its range in limits.json")
    batch = decode_batch(pd.Series([frame(1, V1, reading()), frame(5, V3, reading(uptime_s=7))]), decoder, now_ms=NOW)
    assert batch["uptime_s"].tolist() == [None, 7]


@pytest.mark.parametrize("payload", [None, b"", b"\x00", b"\x00\x00\x00\x02"])
def test_too_short(decoder: AvroDecoder, payload: bytes | None) -> None:
    result = decoder.decode(payload, NOW)
    assert (result.ok, result.reason, result.row) == (False, Reason.TOO_SHORT, None)
    assert result.error


@pytest.mark.parametrize("payload", [b'{"device_id": "dev-1"}', b"\x01\x00\x00\x00\x02abc"])
def test_bad_magic(decoder: AvroDecoder, payload: bytes) -> None:
    assert decoder.decode(payload, NOW).reason is Reason.BAD_MAGIC


def test_unknown_schema_id(decoder: AvroDecoder) -> None:
    unknown = decoder.decode(frame(99, V2, reading()), NOW)
    assert unknown.reason is Reason.UNKNOWN_SCHEMA_ID and unknown.schema_id == 99
    unparseable = decoder.decode(frame(2, V2, reading())[:1] + struct.pack(">I", 4) + b"\x00", NOW)
    assert unparseable.reason is Reason.UNKNOWN_SCHEMA_ID and "not a valid Avro schema" in unparseable.error


def test_corrupt_body_truncated_at_every_length(decoder: AvroDecoder) -> None:
    good = frame(2, V2, reading())
    for cut in range(5, len(good)):
        result = decoder.decode(good[:cut], NOW)
        assert result.reason is Reason.CORRUPT_BODY, cut


def test_corrupt_body_trailing_bytes_and_garbage(decoder: AvroDecoder) -> None:
    good = frame(2, V2, reading())
    trailing = decoder.decode(good + b"\x00\x01", NOW)
    assert trailing.reason is Reason.CORRUPT_BODY and "trailing" in trailing.error
    bad_enum = bytearray(good)
    bad_enum[5 + 1 + len("dev-00001") + 1 + len("site-01")] = 0x7E  # device_type index 63
    assert decoder.decode(bytes(bad_enum), NOW).reason is Reason.CORRUPT_BODY


def test_resolution_failed(decoder: AvroDecoder) -> None:
    payload = frame(3, NO_SITE, {"device_id": "dev-1"})
    result = decoder.decode(payload, NOW)
    assert result.reason is Reason.RESOLUTION_FAILED and "site_id" in result.error


@pytest.mark.parametrize(
    "overrides",
    [
        {"temperature_c": math.nan},
        {"humidity_pct": math.inf},
        {"battery_pct": -math.inf},
        {"location": {"lat": math.nan, "lon": 1.0, "alt_m": None}},
    ],
)
def test_invalid_value(decoder: AvroDecoder, overrides: dict) -> None:
    result = decoder.decode(frame(2, V2, reading(**overrides)), NOW)
    assert result.reason is Reason.INVALID_VALUE and result.row is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"device_id": "dev\x00-1"}, "device_id contains a NUL byte"),
        ({"site_id": "site\x00"}, "site_id contains a NUL byte"),
        ({"device_id": ""}, "device_id is empty"),
        ({"site_id": "s" * 129}, "site_id is 129 characters long (limit 128)"),
        ({"device_id": "d" * 200}, "device_id is 200 characters long (limit 128)"),
        ({"firmware_version": "1" * 65}, "firmware_version is 65 characters long (limit 64)"),
        ({"humidity_pct": 1e300}, "humidity_pct is outside its range in limits.json"),
        ({"battery_pct": -5.0}, "battery_pct is outside its range in limits.json"),
        ({"signal_rssi_dbm": 40}, "signal_rssi_dbm is outside its range in limits.json"),
        ({"location": {"lat": 91.0, "lon": 1.0, "alt_m": None}}, "location_lat is outside its range in limits.json"),
    ],
)
def test_poison_pills_are_invalid_values_with_the_field_named(
    decoder: AvroDecoder, overrides: dict, message: str
) -> None:
    result = decoder.decode(frame(2, V2, reading(**overrides)), NOW)
    assert (result.reason, result.error) == (Reason.INVALID_VALUE, message)
    assert "\x00" not in (result.error or "")


def test_limits_are_inclusive_and_unicode_counts_code_points(decoder: AvroDecoder) -> None:
    edge = reading(device_id="\u00e9" * 128, humidity_pct=100.0, battery_pct=0.0, firmware_version="")
    assert decoder.decode(frame(2, V2, edge), NOW).ok


def test_oversized_record_is_dead_lettered_before_decoding(decoder: AvroDecoder) -> None:
    limit = limits().max_record_bytes
    big = frame(2, V2, reading(firmware_version="f" * limit))
    result = decoder.decode(big, NOW)
    assert result.reason is Reason.OVERSIZED and str(limit) in (result.error or "")
    assert decoder.decode(b"\x07" * limit, NOW).reason is Reason.BAD_MAGIC  # at the limit: decoded as usual


def test_future_bound_is_configurable_and_inclusive(lookup: DictSchemaLookup) -> None:
    payload = frame(2, V2, reading(event_time=NOW + DAY))
    assert AvroDecoder(lookup).decode(payload, NOW).ok
    assert AvroDecoder(lookup, max_future_ms=1000).decode(payload, NOW).reason is Reason.FUTURE_EVENT_TIME
    ahead = AvroDecoder(lookup).decode(frame(2, V2, reading(event_time=NOW + DAY + 1)), NOW)
    assert ahead.reason is Reason.FUTURE_EVENT_TIME and ahead.row is None
    assert ahead.error == f"event_time {NOW + DAY + 1} is {DAY + 1} ms after the reference time {NOW} (bound {DAY} ms)"


def test_lookup_called_once_per_id(decoder: AvroDecoder, lookup: DictSchemaLookup) -> None:
    for _ in range(5):
        decoder.decode(frame(1, V1, reading()), NOW)
        decoder.decode(frame(2, V2, reading()), NOW)
        decoder.decode(frame(99, V2, reading()), NOW)  # unknown ids are cached too
    assert sorted(lookup.calls) == [1, 2, 99]


def test_never_raises_on_garbage(decoder: AvroDecoder) -> None:
    rng = random.Random(7)
    for _ in range(3000):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
        header = struct.pack(">bI", 0, rng.choice([1, 2, 3]))
        result = decoder.decode(header + body, NOW)
        assert result.ok or result.reason in set(Reason)


def test_batch_matches_scalar(decoder: AvroDecoder) -> None:
    good = frame(2, V2, reading())
    payloads = [
        good,
        frame(1, V1, reading(seq=18)),
        None,
        b"{}",
        b"\x00\x00\x00\x00\x63\x00",
        good[:-2],
        frame(3, NO_SITE, {"device_id": "x"}),
        frame(2, V2, reading(temperature_c=math.nan)),
        frame(2, V2, reading(signal_rssi_dbm=None, location=None, battery_pct=None)),
    ]
    series = pd.Series(payloads, index=range(10, 10 + len(payloads)), dtype=object)
    frame_out = decode_batch(series, decoder, now_ms=NOW)
    assert list(frame_out.columns) == [name for name, _ in BATCH_FIELDS]
    assert list(frame_out.index) == list(series.index)
    for (_, row), payload in zip(frame_out.iterrows(), payloads, strict=True):
        scalar = decoder.decode(payload, NOW)
        assert row["dlq_reason"] == (None if scalar.ok else str(scalar.reason))
        assert row["dlq_error"] == scalar.error
        for name, type_name in FLAT_FIELDS:
            expected = (scalar.row or {}).get(name)
            if type_name == "DOUBLE" and expected is None:
                assert math.isnan(row[name]), name
            else:
                assert row[name] == expected, name
    assert frame_out["temperature_c"].dtype == "float64"
    assert frame_out["seq"].dtype == object and frame_out["seq"].iloc[2] is None


class _Response:
    def __init__(self, status: int, body: object) -> None:
        self.status_code, self._body, self.text = status, body, json.dumps(body)

    def json(self) -> object:
        return self._body


class _Session:
    def __init__(self, responses: dict[int, _Response | Exception]) -> None:
        self.responses, self.urls = responses, []

    def get(self, url: str, **_: object) -> _Response:
        self.urls.append(url)
        answer = self.responses[int(url.rsplit("/", 1)[1])]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_registry_lookup_caches_and_separates_outages_from_unknown_ids() -> None:
    session = _Session(
        {
            2: _Response(200, {"schema": V2}),
            7: _Response(404, {"error_code": 40403, "message": "Schema not found"}),
            8: _Response(500, {"message": "boom"}),
            9: requests.ConnectionError("refused"),
        }
    )
    lookup = RegistrySchemaLookup("http://127.0.0.1:1/", session=session)  # type: ignore[arg-type]
    assert lookup(2) == V2 and lookup(2) == V2
    assert session.urls == ["http://127.0.0.1:1/schemas/ids/2"]
    assert lookup(7) is None
    for schema_id in (8, 9):
        with pytest.raises(SchemaRegistryUnavailable):
            lookup(schema_id)
    decoder = AvroDecoder(lookup)
    assert decoder.decode(frame(2, V2, reading()), NOW).ok
    with pytest.raises(SchemaRegistryUnavailable):
        decoder.decode(frame(9, V2, reading()), NOW)
