"""Python code shipped to Flink workers: pure functions, no pyflink imports, testable alone."""

from udfs.avro_decoder import (
    BATCH_FIELDS,
    FLAT_FIELDS,
    AvroDecoder,
    DecodeResult,
    Reason,
    decode,
    decode_batch,
)
from udfs.schema_lookup import DictSchemaLookup, RegistrySchemaLookup, SchemaLookup, SchemaRegistryUnavailable

__all__ = [
    "BATCH_FIELDS",
    "FLAT_FIELDS",
    "AvroDecoder",
    "DecodeResult",
    "DictSchemaLookup",
    "Reason",
    "RegistrySchemaLookup",
    "SchemaLookup",
    "SchemaRegistryUnavailable",
    "decode",
    "decode_batch",
]
