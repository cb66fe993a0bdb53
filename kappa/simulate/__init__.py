"""Deterministic fleet simulator: telemetry with planted anomalies and injected faults (`kappa simulate`)."""

from kappa.simulate.encoding import register_schema
from kappa.simulate.model import (
    DEFAULT_START,
    FAR_FUTURE_MS,
    LOW_BATTERY_PCT,
    MALFORMED_KINDS,
    OVERHEAT_C,
    SCHEMA_DIR,
    SILENCE_S,
    VIBRATION_SPIKE_MM_S,
    Category,
    Manifest,
    ProducedRecord,
    SimulationSpec,
    parse_time_ms,
)
from kappa.simulate.produce import simulate

__all__ = [
    "DEFAULT_START", "FAR_FUTURE_MS", "LOW_BATTERY_PCT", "MALFORMED_KINDS", "OVERHEAT_C", "SCHEMA_DIR", "SILENCE_S",
    "VIBRATION_SPIKE_MM_S", "Category", "Manifest", "ProducedRecord", "SimulationSpec",
    "parse_time_ms", "register_schema", "simulate",
]
