"""Avro parsing, canonical form and compatibility levels, delegated to the Apache `avro` checker.

The canonical form is the schema as `avro` re-serializes it (compact JSON, full names, docs, defaults,
logical types and custom properties kept). It is what the registry stores and what decides whether two
registrations are "the same schema": whitespace and `{"type": "int"}` vs `"int"` do not matter, a new
default or doc does (unlike Avro's Parsing Canonical Form, which drops defaults a reader depends on).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import avro.errors
import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from kappa.registry.errors import invalid_level, invalid_schema

DEFAULT_LEVEL = "BACKWARD"
LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)


def normalize_level(raw: object) -> str:
    """Validate a level (case-insensitive, as Confluent accepts it); raises 42203 otherwise."""
    if isinstance(raw, str) and raw.upper() in LEVELS:
        return raw.upper()
    raise invalid_level(raw)


def parse_avro(text: str) -> avro.schema.Schema:
    """Parse with the Apache parser; any failure is a 42201 with the parser's reason."""
    try:
        return avro.schema.parse(text)
    except (avro.errors.AvroException, json.JSONDecodeError, TypeError, ValueError, KeyError) as exc:
        raise invalid_schema(f"{type(exc).__name__}: {exc}") from exc


def canonical(text: str) -> str:
    """The stored/compared form of an Avro schema (see module docstring)."""
    return json.dumps(parse_avro(text).to_json(), separators=(",", ":"))


def fingerprint(canonical_text: str, schema_type: str = "AVRO") -> str:
    """Key of the unique constraint that gives one global id per distinct schema."""
    return hashlib.sha256(f"{schema_type}\0{canonical_text}".encode()).hexdigest()


def _reader_can_read(reader: str, writer: str) -> list[str]:
    """Empty when `reader` can decode everything written with `writer`, else the checker's reasons."""
    result = ReaderWriterCompatibilityChecker().get_compatibility(parse_avro(reader), parse_avro(writer))
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = ", ".join(sorted({k.value for k in result.incompatibilities}))
    where = ", ".join(sorted(result.locations))
    what = "; ".join(sorted(result.messages))
    return [f"{kinds} at {where}: {what}"]


def check(level: str, new: str, previous: Sequence[tuple[int, str]]) -> list[str]:
    """Reasons `new` may not follow `previous` ((version, schema) oldest first, non-deleted) at `level`.

    Non-transitive levels look at the latest previous version only, *_TRANSITIVE at all of them.
    BACKWARD: the new schema reads old data; FORWARD: old schemas read new data; FULL: both.
    """
    level = normalize_level(level)
    if level == "NONE" or not previous:
        return []
    against = previous if level.endswith("_TRANSITIVE") else previous[-1:]
    base = level.removesuffix("_TRANSITIVE")
    messages: list[str] = []
    for version, old in against:
        if base in ("BACKWARD", "FULL"):
            messages += [
                f"{level}: new schema cannot read data written with version {version}: {reason}"
                for reason in _reader_can_read(new, old)
            ]
        if base in ("FORWARD", "FULL"):
            messages += [
                f"{level}: version {version} cannot read data written with the new schema: {reason}"
                for reason in _reader_can_read(old, new)
            ]
    return messages
