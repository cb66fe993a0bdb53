"""What the archive archives: decoded raw telemetry, and the 1-minute aggregates the aggregation job
writes to its exactly-once Avro topic. Each dataset says how a Kafka record becomes a row and how
rows are laid out in Hive partitions; the commit protocol and the manifest are the same for both."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import fastavro
import pyarrow as pa

from kappa.config import Config
from kappa.registry import READ, credentials
from udfs.avro_decoder import AvroDecoder, reference_time_ms
from udfs.schema_lookup import RegistrySchemaLookup, SchemaLookup

ARROW_TYPES = {"STRING": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "INT": pa.int32()}
SOURCE_COLUMNS = [("kafka_partition", pa.int32()), ("kafka_offset", pa.int64())]
AGGREGATES_READER_SCHEMA = "aggregates/v2.avsc"  # the latest version of the aggregates-1m-value subject


@dataclass(frozen=True)
class Dataset:
    """How a dataset is laid out: `<prefix>/<date_key>=D/hour=HH[/<tail_column>=V]/`, by `time_column`."""

    name: str
    default_prefix: str
    view: str  # DuckDB view name in `kappa query`
    time_column: str
    date_key: str
    tail_column: str | None
    # An upsert topic's key: the archive holds every version, its view only the last one per key (the
    # aggregation job updates a window when a reading within allowed lateness arrives). Versions of a
    # key are in one Kafka partition, so the last is the one with the highest offset.
    key: tuple[str, ...] = ()

    def default_topic(self, config: Config) -> str:
        return config.kafka.telemetry_topic if self.name == "telemetry" else config.kafka.aggregates_topic


TELEMETRY = Dataset("telemetry", "telemetry", "telemetry", "event_time", "event_date", "device_type")
AGGREGATES = Dataset("aggregates", "aggregates-1m", "aggregates_1m", "window_start", "window_date", None,
                     key=("device_id", "window_start"))
DATASETS = {d.name: d for d in (TELEMETRY, AGGREGATES)}


class Decoder(Protocol):
    schema: pa.Schema

    def decode(self, value: bytes | None, timestamp_ms: int) -> dict[str, Any] | None:
        """The row of a record (without the Kafka position columns), or None if it is not archived."""


class TelemetryDecoder:
    """The project's telemetry decoder with the jobs' rules: what the jobs dead-letter (undecodable, or
    an event time more than job.max_clock_skew_s ahead of the record timestamp capped at the wall
    clock) is not archived; dead letters have their own topic."""

    def __init__(self, lookup: SchemaLookup, max_clock_skew_ms: int) -> None:
        self.decoder = AvroDecoder(lookup, max_future_ms=max_clock_skew_ms)
        self.schema = pa.schema([(name, ARROW_TYPES[kind]) for name, kind in self.decoder.fields] + SOURCE_COLUMNS)

    def decode(self, value: bytes | None, timestamp_ms: int) -> dict[str, Any] | None:
        result = self.decoder.decode(value, now_ms=reference_time_ms(timestamp_ms))
        return dict(result.row) if result.ok and result.row is not None else None


class AggregateDecoder:
    """Confluent-framed Avro (magic 0, schema id, body) read with the registry's writer schema and the
    project's reader schema (the latest, schemas/avro/aggregates/v2.avsc); timestamps as naive UTC. A record
    written with an older schema gets the reader's defaults for fields added since (v1 records: a null
    device_model), so files archived before hold no such column and readers union them by name."""

    def __init__(self, lookup: SchemaLookup, reader_schema: dict[str, Any]) -> None:
        self.lookup = lookup
        self.reader = fastavro.parse_schema(reader_schema)
        self.writers: dict[int, Any] = {}
        self.schema = pa.schema([(f["name"], avro_arrow_type(f["type"])) for f in reader_schema["fields"]]
                                + [("schema_id", pa.int32())] + SOURCE_COLUMNS)

    def decode(self, value: bytes | None, timestamp_ms: int) -> dict[str, Any] | None:
        if not value or len(value) < 5 or value[0] != 0:
            return None
        schema_id = int.from_bytes(value[1:5], "big")
        writer = self._writer(schema_id)
        if writer is None:
            return None
        row = fastavro.schemaless_reader(io.BytesIO(value[5:]), writer, self.reader)
        assert isinstance(row, dict)
        row = {k: v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) else v for k, v in row.items()}
        row["schema_id"] = schema_id
        return row

    def _writer(self, schema_id: int) -> Any:
        if schema_id not in self.writers:
            text = self.lookup(schema_id)
            self.writers[schema_id] = fastavro.parse_schema(json.loads(text)) if text else None
        return self.writers[schema_id]


def avro_arrow_type(avro: Any) -> pa.DataType:
    """Arrow type of a flat Avro field type (primitives, timestamp-millis, nullable unions)."""
    if isinstance(avro, list):
        (inner,) = [t for t in avro if t != "null"]
        return avro_arrow_type(inner)
    if isinstance(avro, dict):
        return pa.timestamp("ms") if avro.get("logicalType") == "timestamp-millis" else avro_arrow_type(avro["type"])
    return {"string": pa.string(), "long": pa.int64(), "int": pa.int32(), "double": pa.float64(),
            "float": pa.float32(), "boolean": pa.bool_()}[avro]


def epoch_ms(value: Any) -> int:
    """Epoch milliseconds of a row's time column (epoch ms already, or a naive UTC datetime)."""
    if isinstance(value, datetime):
        return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp() * 1000)
    return int(value)


def decoder_for(dataset: Dataset, config: Config) -> Decoder:
    lookup = RegistrySchemaLookup(config.registry.url, auth=credentials(config, READ))
    if dataset.name == "telemetry":
        return TelemetryDecoder(lookup, config.job.max_clock_skew_s * 1000)
    reader = json.loads((config.root / "schemas" / "avro" / AGGREGATES_READER_SCHEMA).read_text())
    return AggregateDecoder(lookup, reader)
