"""What a telemetry record may hold, declared once in schemas/avro/telemetry/limits.json.

The Java decoder reads the same file (copied into the UDF jar at build time), the SQL gets
`${max_record_bytes}`/`${max_key_bytes}` from it (kappa.sqlfiles), and the bridge checks JSON readings
against the same ranges: a change there applies to every path (rebuild the jar: `make setup`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

LIMITS_PATH = Path(__file__).resolve().parent.parent / "schemas/avro/telemetry/limits.json"


@dataclass(frozen=True)
class StringLimit:
    required: bool
    max_chars: int


@dataclass(frozen=True)
class Limits:
    max_record_bytes: int
    max_key_bytes: int
    strings: dict[str, StringLimit]
    ranges: dict[str, tuple[float, float]]

    def string_problem(self, name: str, value: Any) -> str | None:
        """Why a string field is unusable (NUL byte, empty id, too long), naming the field, never its value."""
        limit = self.strings.get(name)
        if not isinstance(value, str):
            return None
        if "\x00" in value:
            return f"{name} contains a NUL byte"
        if limit is None:
            return None
        if limit.required and not value:
            return f"{name} is empty"
        if len(value) > limit.max_chars:  # code points, as the Java decoder counts them
            return f"{name} is {len(value)} characters long (limit {limit.max_chars})"
        return None

    def range_problem(self, name: str, value: Any) -> str | None:
        """Why a number is outside its declared range (the field and the bound named)."""
        bounds = self.ranges.get(name)
        if bounds is None or value is None or isinstance(value, bool) or not isinstance(value, int | float):
            return None
        low, high = bounds
        if not low <= value <= high:
            return f"{name} is outside its range in limits.json"  # no number text: Java formats them differently
        return None


def load_limits(path: Path = LIMITS_PATH) -> Limits:
    data = json.loads(path.read_text())
    strings = {name: StringLimit(bool(spec["required"]), int(spec["max_chars"]))
               for name, spec in data["strings"].items()}
    ranges = {name: (float(low), float(high)) for name, (low, high) in data["ranges"].items()}
    return Limits(int(data["max_record_bytes"]), int(data["max_key_bytes"]), strings, ranges)


@cache
def limits() -> Limits:
    """The project's limits (read once per process)."""
    return load_limits()
