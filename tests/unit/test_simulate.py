"""The simulator without Kafka: deterministic, manifest counts match the records, anomalies as declared."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from kappa.config import Config, load_config
from kappa.simulate import (
    LOW_BATTERY_PCT,
    MALFORMED_KINDS,
    OVERHEAT_C,
    VIBRATION_SPIKE_MM_S,
    Category,
    Manifest,
    ProducedRecord,
    SimulationSpec,
    simulate,
)
from udfs.avro_decoder import AvroDecoder
from udfs.schema_lookup import DictSchemaLookup

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
FAULTY = SimulationSpec(
    devices=10,
    readings_per_device=80,
    seed=7,
    out_of_order=0.05,
    late=0.02,
    duplicates=0.03,
    malformed=3,
    v1_fraction=0.3,
)
READING_CATEGORIES = (Category.VALID, Category.OUT_OF_ORDER, Category.LATE)


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(profile="test", environ={})


@pytest.fixture(scope="module")
def run(config: Config) -> Manifest:
    return simulate(config, FAULTY, produce=False, log=lambda _: None)


def _readings(records: list[ProducedRecord]) -> list[ProducedRecord]:
    return [r for r in records if r.category in READING_CATEGORIES]


def test_same_seed_same_run(config: Config, run: Manifest) -> None:
    again = simulate(config, FAULTY, produce=False, log=lambda _: None)
    assert again.records == run.records
    assert again.to_json() == run.to_json()
    json.loads(run.to_json())  # strict JSON (no NaN)
    other = simulate(
        config, SimulationSpec(**{**FAULTY.__dict__, "seed": 8}), produce=False, log=lambda _: None
    )
    assert [r.value for r in other.records] != [r.value for r in run.records]


def test_normal_signals_do_not_depend_on_faults(config: Config) -> None:
    clean = simulate(config, SimulationSpec(devices=10, readings_per_device=80, seed=7), produce=False)
    faulty_rows = {
        (r.device_id, r.seq): r.row for r in simulate(config, FAULTY, produce=False).records if r.row
    }
    for r in clean.records:
        row = dict(r.row or {})
        if row["schema_id"] == 2 and faulty_rows[(r.device_id, r.seq)]["schema_id"] == 2:
            assert faulty_rows[(r.device_id, r.seq)] == row


def test_counts_match_records(run: Manifest) -> None:
    records, counts = run.records, run.data["counts"]
    assert [r.index for r in records] == list(range(len(records)))
    by_cat = Counter(r.category.value for r in records)
    assert counts["total"] == len(records)
    for cat in Category:
        assert counts[cat.value] == by_cat[cat.value]
    assert counts["readings"] == len(_readings(records))
    assert counts["malformed_by_reason"] == dict(Counter(r.reason for r in records if r.reason))
    assert counts["malformed_by_kind"] == {k: FAULTY.malformed for k in counts["malformed_by_kind"]}
    assert counts["schema_versions"]["v1"] == sum(r.schema_version == 1 for r in records)
    assert counts["schema_versions"]["v2"] == sum(r.schema_version == 2 for r in records)
    assert all(counts[c] > 0 for c in ("valid", "out_of_order", "late", "duplicate", "malformed"))
    per_device = run.data["per_device"]
    assert sum(d["produced"] for d in per_device.values()) == len(records)
    for device_id, d in per_device.items():
        mine = [r for r in records if r.device_id == device_id]
        assert d["produced"] == len(mine)
        assert d["readings"] == len(_readings(mine))
        assert d["duplicate"] == sum(r.category is Category.DUPLICATE for r in mine)


def test_readings_are_unique_and_duplicates_repeat_earlier_bytes(run: Manifest) -> None:
    readings = _readings(run.records)
    keys = [(r.device_id, r.seq) for r in readings]
    assert len(keys) == len(set(keys))
    sent: dict[tuple[str, int], ProducedRecord] = {}
    for r in run.records:
        if r.category is Category.DUPLICATE:
            original = sent[(r.device_id, r.seq)]  # the original was sent first
            assert (original.value, original.key, original.timestamp_ms) == (r.value, r.key, r.timestamp_ms)
        elif r.category in READING_CATEGORIES:
            sent[(r.device_id, r.seq)] = r


def test_lateness_and_categories(run: Manifest) -> None:
    delay, margin = run.data["watermark_delay_ms"], run.data["late_margin_ms"]
    max_seen = -(2**63)
    for r in run.records:
        if r.category is Category.MALFORMED:
            continue
        lateness = max(0, max_seen - r.event_time)
        max_seen = max(max_seen, r.event_time)
        assert r.lateness_ms == lateness
        if r.category is Category.VALID:
            assert lateness == 0
        elif r.category is Category.OUT_OF_ORDER:
            assert 0 < lateness <= delay
        elif r.category is Category.LATE:
            assert lateness > delay + margin - FAULTY.interval_s * 1000
    assert run.data["lateness_ms"]["late_min"] > delay


def test_keys_timestamps_and_decoding(run: Manifest) -> None:
    decoder = AvroDecoder(
        DictSchemaLookup(
            {
                1: (ROOT / "schemas/avro/telemetry/v1.avsc").read_text(),
                2: (ROOT / "schemas/avro/telemetry/v2.avsc").read_text(),
            }
        )
    )
    assert run.data["counts"]["schema_versions"]["v3"] == 0  # v3 only when asked for
    now = run.data["last_event_time"]
    for r in run.records:
        assert r.key == r.device_id
        result = decoder.decode(r.value, now)
        if r.category is Category.MALFORMED:
            assert not result.ok and str(result.reason) == r.reason, r.malformed_kind
            if r.malformed_kind != "far_future":
                assert r.timestamp_ms == r.event_time
        else:
            assert r.timestamp_ms == r.event_time
            assert result.ok and result.row == r.row
            if r.schema_version == 1:
                assert (
                    r.row is not None and r.row["signal_rssi_dbm"] is None and r.row["location_lat"] is None
                )


def test_v3_mix_decodes_with_uptime_only_from_v3(config: Config, run: Manifest) -> None:
    """v3_fraction turns that share of the readings into v3 records (uptime_s set) and leaves the rest of
    the run as it was: the same v1 readings, the same send order and faults."""
    mixed = simulate(config, dataclasses.replace(FAULTY, v3_fraction=0.4), produce=False, log=lambda _: None)
    versions = mixed.data["counts"]["schema_versions"]
    n = mixed.data["counts"]["readings"]
    assert versions["v3"] > 0 and abs(sum(r.schema_version == 3 for r in _readings(mixed.records)) - 0.4 * n) <= 1
    assert versions["v1"] == run.data["counts"]["schema_versions"]["v1"]
    assert [(r.device_id, r.seq, r.category, r.schema_version == 1) for r in mixed.records] == [
        (r.device_id, r.seq, r.category, r.schema_version == 1) for r in run.records]
    texts = {v: (ROOT / f"schemas/avro/telemetry/v{v}.avsc").read_text() for v in (1, 2, 3)}
    decoder = AvroDecoder(DictSchemaLookup(texts))  # the placeholder ids of a dry run are 1, 2, 3
    now = mixed.data["last_event_time"]
    for r in mixed.records:
        if r.category is Category.MALFORMED:
            continue
        result = decoder.decode(r.value, now)
        assert result.ok and result.row == r.row, (result.error, r.schema_version)
        assert (result.row["uptime_s"] is not None) == (r.schema_version == 3)
        assert result.row["schema_id"] == r.schema_version
    with pytest.raises(ValueError, match="v1_fraction \\+ v3_fraction"):
        simulate(config, dataclasses.replace(FAULTY, v3_fraction=0.8), produce=False, log=lambda _: None)


def _series(run: Manifest, device_id: str) -> list[dict]:
    rows = [r.row for r in _readings(run.records) if r.device_id == device_id and r.row]
    return sorted(rows, key=lambda row: row["event_time"])


def test_anomalies_planted_as_declared(run: Manifest) -> None:
    anomalies = {a["kind"]: a for a in run.data["anomalies"]}
    assert set(anomalies) == {
        "overheating",
        "temperature_trend",
        "vibration_then_heat",
        "low_battery",
        "silent",
    }
    assert len({a["device_id"] for a in anomalies.values()}) == len(anomalies)
    late = {(r.device_id, r.event_time) for r in run.records if r.category is Category.LATE}

    for a in anomalies.values():
        if a["kind"] != "silent":
            span = [
                row
                for row in _series(run, a["device_id"])
                if a["first_event_time"] <= row["event_time"] <= a["last_event_time"]
            ]
            assert len(span) == a["readings"]
            assert not {(a["device_id"], row["event_time"]) for row in span} & late

    hot = anomalies["overheating"]
    series = _series(run, hot["device_id"])
    above = [i for i, row in enumerate(series) if row["temperature_c"] > hot["threshold_c"]]
    assert len(above) == FAULTY.overheat_run == hot["readings"]
    assert above == list(range(above[0], above[0] + len(above)))  # consecutive
    assert [series[i]["temperature_c"] for i in above] == hot["temperature_c"]

    trend = anomalies["temperature_trend"]
    temps = trend["temperature_c"]
    assert all(b > a for a, b in zip(temps, temps[1:], strict=False))
    assert temps[-1] - temps[0] >= trend["min_rise_c"] and max(temps) < trend["threshold_c"]

    vib = anomalies["vibration_then_heat"]
    series = {row["event_time"]: row for row in _series(run, vib["device_id"])}
    assert (
        series[vib["vibration_event_time"]]["vibration_mm_s"] == vib["vibration_mm_s"] > VIBRATION_SPIKE_MM_S
    )
    assert (
        series[vib["temperature_event_time"]]["temperature_c"]
        == vib["temperature_c"]
        > vib["temperature_threshold_c"]
    )
    assert 0 < vib["temperature_event_time"] - vib["vibration_event_time"] <= vib["within_s"] * 1000

    low = anomalies["low_battery"]
    battery = [row["battery_pct"] for row in _series(run, low["device_id"])]
    low_idx = [i for i, b in enumerate(battery) if b < LOW_BATTERY_PCT]
    assert len(low_idx) == low["readings"] and low_idx == list(range(low_idx[0], low_idx[0] + len(low_idx)))

    silent = anomalies["silent"]
    times = [row["event_time"] for row in _series(run, silent["device_id"])]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) == silent["gap_ms"] >= silent["silence_threshold_s"] * 1000
    assert silent["first_event_time"] in times and silent["last_event_time"] in times

    # nothing else crosses a rule threshold by accident
    planted = {a["device_id"] for a in anomalies.values()}
    by_device: dict[str, list[dict]] = defaultdict(list)
    for r in _readings(run.records):
        by_device[r.device_id].append(r.row or {})
    for device_id, rows in by_device.items():
        gaps = [
            b - a
            for a, b in zip(
                sorted(x["event_time"] for x in rows), sorted(x["event_time"] for x in rows)[1:], strict=False
            )
        ]
        if device_id not in planted:
            assert max(gaps) < silent["silence_threshold_s"] * 1000
            assert all(row["temperature_c"] <= OVERHEAT_C[row["device_type"]] for row in rows)
            assert all((row["vibration_mm_s"] or 0) <= VIBRATION_SPIKE_MM_S for row in rows)
            assert all(row["battery_pct"] is None or row["battery_pct"] >= LOW_BATTERY_PCT for row in rows)
            assert all(not math.isnan(row["temperature_c"]) for row in rows)


def test_too_small_fleet_skips_what_does_not_fit(config: Config) -> None:
    m = simulate(config, SimulationSpec(devices=2, readings_per_device=40), produce=False)
    kinds = {a["kind"] for a in m.data["anomalies"]} | {s["kind"] for s in m.data["skipped_anomalies"]}
    assert len(kinds) == 5 and m.data["skipped_anomalies"]


def test_invalid_spec_is_rejected(config: Config) -> None:
    with pytest.raises(ValueError):
        simulate(config, SimulationSpec(late=1.5), produce=False)
    with pytest.raises(ValueError):
        simulate(config, SimulationSpec(out_of_order=0.1, out_of_order_max_s=60), produce=False)


def test_cli_dry_run_writes_the_manifest(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from kappa.cli import main

    path = tmp_path / "m.json"
    code = main(
        [
            "--profile",
            config.profile,
            "simulate",
            "--devices",
            "5",
            "--duration",
            "10m",
            "--interval-s",
            "5",
            "--seed",
            "3",
            "--dry-run",
            "--malformed",
            "1",
            "--duplicates",
            "0.1",
            "--manifest",
            str(path),
        ]
    )
    assert code == 0
    data = json.loads(path.read_text())
    assert data["dry_run"] and data["spec"]["readings_per_device"] == 120
    assert data["counts"]["malformed"] == len(MALFORMED_KINDS)
    assert "simulate: " in capsys.readouterr().out
    expected = simulate(
        config,
        SimulationSpec(
            devices=5, readings_per_device=120, interval_s=5.0, seed=3, malformed=1, duplicates=0.1
        ),
        produce=False,
    )
    assert path.read_text() == expected.to_json() + "\n"
