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


def test_telemetry_archive_applies_the_jobs_event_time_rules() -> None:
    """The archive keeps exactly what the jobs keep: an event time more than the clock-skew bound
    ahead of the record timestamp (capped at the wall clock) is not archived."""
    from kappa.archive_datasets import TelemetryDecoder
    from tests.unit.test_avro_decoder import V2, frame, reading

    decoder = TelemetryDecoder(DictSchemaLookup({2: V2}), max_clock_skew_ms=60_000)
    now = int(datetime.now(UTC).timestamp() * 1000)
    on_time = decoder.decode(frame(2, V2, reading(event_time=now - 1_000)), now)
    assert on_time is not None and on_time["event_time"] == now - 1_000
    assert decoder.decode(frame(2, V2, reading(event_time=now + 59_000)), now) is not None
    assert decoder.decode(frame(2, V2, reading(event_time=now + 61_000)), now) is None
    # a record timestamp ahead of the clock does not widen the bound
    assert decoder.decode(frame(2, V2, reading(event_time=now + 10 * 60_000)), now + 3_600_000) is None
    assert decoder.decode(b"not avro", now) is None


def test_reference_time_is_the_record_timestamp_capped_at_the_clock() -> None:
    from udfs.avro_decoder import reference_time_ms

    assert reference_time_ms(1_000, now_ms=5_000) == 1_000
    assert reference_time_ms(9_000, now_ms=5_000) == 5_000
    assert reference_time_ms(None, now_ms=5_000) == 5_000
    assert reference_time_ms(-1, now_ms=5_000) == 5_000


V2_SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas/avro/aggregates/v2.avsc").read_text())


def test_archive_reads_v1_and_v2_aggregates_with_the_latest_reader_schema() -> None:
    """The archive's reader is v2 (kappa.archive_datasets.AGGREGATES_READER_SCHEMA): records the job wrote
    with v1 read device_model as null, v2 records carry it; Parquet files archived before (v1 reader, no
    such column) and after concatenate as compaction does, the old rows null."""
    from kappa.archive_datasets import AGGREGATES_READER_SCHEMA

    assert AGGREGATES_READER_SCHEMA == "aggregates/v2.avsc"
    decoder = AggregateDecoder(DictSchemaLookup({1: json.dumps(SCHEMA), 2: json.dumps(V2_SCHEMA)}), V2_SCHEMA)
    start = datetime(2026, 1, 1, 3, 4, tzinfo=UTC)
    record = {"device_id": "d1", "site_id": "s1", "device_type": "thermal", "window_start": start,
              "window_end": datetime(2026, 1, 1, 3, 5, tzinfo=UTC), "reading_count": 6}
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(V2_SCHEMA), dict(record, device_model="M-2"))
    old = decoder.decode(_framed(1, record), 0)
    new = decoder.decode(b"\x00" + (2).to_bytes(4, "big") + body.getvalue(), 0)
    assert old is not None and new is not None
    assert (old["device_model"], old["schema_id"], new["device_model"], new["schema_id"]) == (None, 1, "M-2", 2)
    assert "device_model" in decoder.schema.names
    before = pa.Table.from_pylist([dict(_decoded_v1(record), kafka_partition=0, kafka_offset=1)],
                                  schema=AggregateDecoder(DictSchemaLookup({}), SCHEMA).schema)
    after = pa.Table.from_pylist([dict(new, kafka_partition=0, kafka_offset=2)], schema=decoder.schema)
    merged = pa.concat_tables([before, after], promote_options="default")  # as kappa.archive_compact
    assert merged.column("device_model").to_pylist() == [None, "M-2"]


def _decoded_v1(record: dict[str, object]) -> dict[str, object]:
    row = AggregateDecoder(DictSchemaLookup({1: json.dumps(SCHEMA)}), SCHEMA).decode(_framed(1, record), 0)
    assert row is not None and "device_model" not in row
    return row
