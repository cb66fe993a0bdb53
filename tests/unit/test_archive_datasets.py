"""Pure parts of the archive's datasets: Avro field types to Arrow, and decoding an aggregate record
in the Confluent wire format with the writer schema by id."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import pyarrow as pa
import pytest

from kappa.archive_datasets import AggregateDecoder, avro_arrow_type, epoch_ms
from udfs.schema_lookup import DictSchemaLookup

pytestmark = pytest.mark.unit

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas/avro/aggregates/v1.avsc").read_text())


def _framed(schema_id: int, record: dict[str, object]) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(SCHEMA), record)
    return b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()


def test_avro_types_map_to_arrow() -> None:
    assert avro_arrow_type("string") == pa.string()
    assert avro_arrow_type(["null", "double"]) == pa.float64()
    assert avro_arrow_type({"type": "long", "logicalType": "timestamp-millis"}) == pa.timestamp("ms")
    assert avro_arrow_type({"type": "long"}) == pa.int64()


def test_epoch_ms_of_ints_and_naive_utc_datetimes() -> None:
    assert epoch_ms(1_767_225_600_000) == 1_767_225_600_000
    assert epoch_ms(datetime(2026, 1, 1)) == 1_767_225_600_000
    assert epoch_ms(datetime(2026, 1, 1, tzinfo=UTC)) == 1_767_225_600_000


def test_aggregate_record_decodes_by_schema_id_with_naive_utc_times() -> None:
    lookup = DictSchemaLookup({7: json.dumps(SCHEMA)})
    decoder = AggregateDecoder(lookup, SCHEMA)
    start = datetime(2026, 1, 1, 3, 4, tzinfo=UTC)
    record = {"device_id": "d1", "site_id": "s1", "device_type": "thermal", "window_start": start,
              "window_end": datetime(2026, 1, 1, 3, 5, tzinfo=UTC), "reading_count": 6, "temperature_c_avg": 21.5}
    row = decoder.decode(_framed(7, record), 0)
    assert row is not None
    assert row["window_start"] == datetime(2026, 1, 1, 3, 4) and row["reading_count"] == 6
    assert row["schema_id"] == 7 and row["humidity_pct_min"] is None
    pa.Table.from_pylist([dict(row, kafka_partition=0, kafka_offset=1)], schema=decoder.schema)  # fits the schema
    assert decoder.decode(_framed(8, record), 0) is None  # unknown id
    assert decoder.decode(b"\x01abcd", 0) is None and decoder.decode(None, 0) is None
    decoder.decode(_framed(7, record), 0)
    assert lookup.calls == [7, 8]  # writer schemas cached per id
