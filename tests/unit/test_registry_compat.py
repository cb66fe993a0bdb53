"""Compatibility levels of the project's schema registry, as decided by the Apache avro checker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kappa.registry import compat
from kappa.registry.errors import RegistryError
from kappa.schemas import load_subjects, read_schema

pytestmark = pytest.mark.unit


def record(*fields: dict[str, object], name: str = "Reading") -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "io.test", "fields": list(fields)})


V1 = record({"name": "device_id", "type": "string"}, {"name": "value", "type": "double"})
ADDED_WITH_DEFAULT = record(
    {"name": "device_id", "type": "string"},
    {"name": "value", "type": "double"},
    {"name": "unit", "type": ["null", "string"], "default": None},
)
ADDED_NO_DEFAULT = record(
    {"name": "device_id", "type": "string"},
    {"name": "value", "type": "double"},
    {"name": "unit", "type": "string"},
)
REMOVED_VALUE = record({"name": "device_id", "type": "string"})
VALUE_AS_STRING = record({"name": "device_id", "type": "string"}, {"name": "value", "type": "string"})
VALUE_AS_FLOAT = record({"name": "device_id", "type": "string"}, {"name": "value", "type": "float"})


def ok(level: str, new: str, *previous: str) -> bool:
    return not compat.check(level, new, list(enumerate(previous, start=1)))


def test_added_field_with_default_is_fully_compatible() -> None:
    for level in ("BACKWARD", "FORWARD", "FULL"):
        assert ok(level, ADDED_WITH_DEFAULT, V1), level


def test_added_field_without_default_breaks_backward_only() -> None:
    reasons = compat.check("BACKWARD", ADDED_NO_DEFAULT, [(1, V1)])
    assert len(reasons) == 1
    assert "reader_field_missing_default_value" in reasons[0] and "unit" in reasons[0]
    assert "version 1" in reasons[0]
    assert ok("FORWARD", ADDED_NO_DEFAULT, V1)  # old readers ignore the extra field
    assert not ok("FULL", ADDED_NO_DEFAULT, V1)


def test_removed_field_without_default_breaks_forward_only() -> None:
    assert ok("BACKWARD", REMOVED_VALUE, V1)  # the new reader skips what it no longer knows
    reasons = compat.check("FORWARD", REMOVED_VALUE, [(1, V1)])
    assert reasons and "value" in reasons[0] and "version 1 cannot read" in reasons[0]
    assert not ok("FULL", REMOVED_VALUE, V1)


def test_type_change() -> None:
    reasons = compat.check("BACKWARD", VALUE_AS_STRING, [(1, V1)])
    assert reasons and "type_mismatch" in reasons[0] and "/fields/1" in reasons[0]
    # float -> double is a promotion: a double reader reads float data, not the other way round
    assert ok("FORWARD", VALUE_AS_FLOAT, V1)
    assert not ok("BACKWARD", VALUE_AS_FLOAT, V1)


def test_none_accepts_anything() -> None:
    assert ok("NONE", VALUE_AS_STRING, V1)


def test_transitive_checks_every_previous_version() -> None:
    # v1 -> v2 drops `value`, v3 re-adds it as a string without default: v3 reads v2 data
    # (BACKWARD vs latest only) but not v1 data, where `value` is a double.
    v3 = record({"name": "device_id", "type": "string"}, {"name": "value", "type": "string", "default": ""})
    assert ok("BACKWARD", v3, V1, REMOVED_VALUE)
    reasons = compat.check("BACKWARD_TRANSITIVE", v3, [(1, V1), (2, REMOVED_VALUE)])
    assert len(reasons) == 1 and "version 1" in reasons[0]


def test_renamed_record_is_incompatible() -> None:
    assert not ok("BACKWARD", record({"name": "device_id", "type": "string"}, name="Other"), REMOVED_VALUE)


def test_enum_symbol_added_breaks_forward_unless_default() -> None:
    def with_enum(symbols: list[str], default: str | None = None) -> str:
        enum: dict[str, object] = {"type": "enum", "name": "Level", "symbols": symbols}
        if default:
            enum["default"] = default
        return record({"name": "level", "type": enum})

    old, new = with_enum(["LOW", "HIGH"]), with_enum(["LOW", "HIGH", "CRITICAL"])
    assert ok("BACKWARD", new, old)
    assert not ok("FORWARD", new, old)
    assert ok("FORWARD", new, with_enum(["LOW", "HIGH"], default="LOW"))


def test_levels_are_validated() -> None:
    assert compat.normalize_level("full_transitive") == "FULL_TRANSITIVE"
    with pytest.raises(RegistryError) as info:
        compat.normalize_level("SIDEWAYS")
    assert info.value.error_code == 42203 and info.value.http_status == 422


def test_canonical_form_ignores_layout_but_keeps_defaults() -> None:
    spaced = json.dumps(json.loads(V1), indent=4)
    assert compat.canonical(spaced) == compat.canonical(V1)
    long_form = V1.replace('"type": "string"', '"type": {"type": "string"}')
    assert compat.canonical(long_form) == compat.canonical(V1)
    with_default = record(
        {"name": "device_id", "type": "string"}, {"name": "value", "type": "double", "default": 0}
    )
    assert compat.canonical(with_default) != compat.canonical(V1)
    assert compat.fingerprint(compat.canonical(spaced)) == compat.fingerprint(compat.canonical(V1))


def test_invalid_schema_is_42201() -> None:
    for bad in ("{not json", '{"type": "record", "name": "X"}', '"no-such-type"'):
        with pytest.raises(RegistryError) as info:
            compat.canonical(bad)
        assert info.value.error_code == 42201, bad


def test_load_subjects_and_offline_history(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "v1.avsc").write_text(V1)
    (tmp_path / "r" / "v2.avsc").write_text(ADDED_NO_DEFAULT)
    (tmp_path / "subjects.toml").write_text(
        '[subjects."r-value"]\ncompatibility = "backward"\nversions = ["r/v1.avsc", "r/v2.avsc"]\n'
    )
    [spec] = load_subjects(tmp_path)
    assert spec.subject == "r-value" and spec.compatibility == "BACKWARD"
    assert [p.name for p in spec.versions] == ["v1.avsc", "v2.avsc"]
    schemas = [read_schema(p) for p in spec.versions]
    assert compat.check(spec.compatibility, schemas[1], [(1, schemas[0])])  # v2 breaks BACKWARD

    (tmp_path / "subjects.toml").write_text('[subjects."x"]\nversions = ["r/missing.avsc"]\n')
    with pytest.raises(ValueError, match="missing schema file"):
        load_subjects(tmp_path)


def test_repository_schema_history_is_compatible() -> None:
    """The declared history in schemas/avro/ passes its own levels (`kappa schema check --offline`)."""
    root = Path(__file__).resolve().parents[2] / "schemas" / "avro"
    if not (root / "subjects.toml").exists():
        pytest.skip("schemas/avro/subjects.toml not written yet")
    for spec in load_subjects(root):
        schemas = [read_schema(p) for p in spec.versions]
        for i in range(1, len(schemas)):
            previous = list(enumerate(schemas[:i], start=1))
            assert compat.check(spec.compatibility, schemas[i], previous) == [], spec.subject
