"""The aggregation job on the real stack (Kafka, registry, PostgreSQL) in a local MiniCluster, with
out-of-order, late, duplicate, malformed and mixed-schema input (telemetry v1, v2 and v3), compared with
Python.

The same run carries device metadata versions (a device metadata topic of its own, so other tests'
registrations do not matter): one device moved to another site in the middle of the data, in the
middle of a minute, its model replaced in the same version, and one whose first version starts there.
Its windows carry the site and model of the version in force at their first reading; readings before a
device's first version keep the site they sent and have no model (the default, explicitly)."""

from __future__ import annotations

from collections import Counter

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from kappa import jobrunner, lake, outputs
from kappa.config import Config
from kappa.devices import versions
from kappa.devices.model import Device
from kappa.flinkenv import JobOptions
from kappa.registry import ADMIN, client_conf
from kappa.simulate import Category, Manifest
from kappa.stack.postgres import connect
from tests.integration.aggregate_support import Metadata, assert_lake_matches, assert_matches_python, prepare
from tests.integration.kafka_support import committed_messages, latest_windows
from udfs.limits import limits as migrated_limits

pytestmark = pytest.mark.integration


def test_aggregate_job_matches_python_and_accounts_for_every_record(migrated: Config) -> None:
    topic, suffix, manifest = prepare(migrated, "local", v3_fraction=0.3)
    devices_topic = f"device-metadata{suffix.replace('_', '-')}"
    metadata, moved, registered_late, move_ms = _metadata_versions(migrated, manifest, devices_topic)
    options = JobOptions(bounded=True, output_suffix=suffix,
                         extra={"telemetry_topic": topic, "devices_topic": devices_topic})
    registry, subject = _subject_holding_v1(migrated, suffix)
    _windows_table_made_before_device_model(migrated, suffix)
    _made_before(migrated, lake.TELEMETRY, "uptime_s", suffix)
    jobrunner.run_local(migrated, "aggregate", options, wait=True)
    # the job's Avro sink registered v2 (device_model) on top of v1 under FULL, as on an upgraded stack
    assert registry.get_versions(subject) == [1, 2]
    assert "device_model" in registry.get_latest_version(subject).schema.schema_str
    books = assert_matches_python(migrated, suffix, manifest, topic, metadata)
    # every re-sent copy is dropped as a duplicate, unless the copy itself arrived late (then it is
    # counted late); the total is exact either way (checked above)
    assert 0 < books.duplicates <= manifest.data["counts"]["duplicate"]

    # the aggregates topic is an upsert topic keyed by (device, window start): its last record per key
    # is the table's row (whether a window was written once or updated depends on how fast this bounded
    # run read; test_late_updates.py shows the updates at device pace)
    aggregates = f"{migrated.kafka.aggregates_topic}{suffix}"
    latest = latest_windows(migrated, aggregates)
    dead = committed_messages(migrated, f"{migrated.kafka.dead_letter_topic}{suffix}")
    with connect(migrated) as conn:
        device_rows = outputs.device_windows(conn, suffix)
    assert latest.keys() == device_rows.keys()
    assert all((latest[key]["reading_count"], latest[key]["site_id"]) == (row["reading_count"], row["site_id"])
               for key, row in device_rows.items())
    # the move changed only the windows after it (the one holding it: the site of its first reading)
    sites = {(device, start): row["site_id"] for (device, start), row in device_rows.items()}
    before = {site for (device, start), site in sites.items() if device == moved and start + 60_000 <= move_ms}
    after = {site for (device, start), site in sites.items() if device == moved and start >= move_ms}
    assert (before, after) == ({"site-before-move"}, {"site-after-move"})
    early = {site for (device, start), site in sites.items() if device == registered_late and start + 60_000 <= move_ms}
    assert early and "site-registered" not in early  # before its first version: the site it sent
    assert {site for (device, start), site in sites.items()
            if device == registered_late and start >= move_ms} == {"site-registered"}
    # the model the same way: the windows after the move carry the new one; a window holding the move or
    # a device's first version carries its first reading's (none before the first version, although
    # later readings of that window have one)
    models = {(device, start): row["device_model"] for (device, start), row in device_rows.items()}
    holding = move_ms - move_ms % 60_000
    assert ({m for (d, start), m in models.items() if d == moved and start + 60_000 <= move_ms},
            models[(moved, holding)],
            {m for (d, start), m in models.items() if d == moved and start >= move_ms}) == ({"M-1"}, "M-1", {"M-2"})
    assert ({m for (d, start), m in models.items() if d == registered_late and start + 60_000 <= move_ms},
            models[(registered_late, holding)],
            {m for (d, start), m in models.items() if d == registered_late and start >= move_ms}) == (
        {None}, None, {"M-3"})
    assert all(latest[key]["device_model"] == model for key, model in models.items())  # v2 records
    assert len(dead) == manifest.data["counts"]["malformed"]
    assert max(len(value or b"") for _, value in dead) < migrated_limits().max_record_bytes + 4096
    assert_poison_pills_dead_lettered(migrated, suffix, manifest)
    # the Iceberg archive: every decodable record once, and the same windows as PostgreSQL
    assert assert_lake_matches(migrated, suffix, manifest) == books.total - books.dead_letters
    for spec in (lake.DEVICE_AGG_1M, lake.TELEMETRY):
        evolved = lake.catalog(migrated).load_table(spec.identifier(migrated, suffix)).schema()
        assert [f.name for f in evolved.fields] == [c.name for c in spec.columns]
    assert_uptime_archived(migrated, suffix, manifest)


def _windows_table_made_before_device_model(config: Config, suffix: str) -> None:
    """The run's Iceberg windows table as an archive made before device_model has it: the job's
    lake.ensure_tables adds the column by schema evolution, then its positional INSERT must line up with
    the evolved table (assert_lake_matches compares every column with PostgreSQL, the model included)."""
    _made_before(config, lake.DEVICE_AGG_1M, "device_model", suffix)


def _made_before(config: Config, spec: lake.LakeTable, column: str, suffix: str) -> None:
    """The run's Iceberg table `spec` as an archive made before `column` was declared has it."""
    import dataclasses

    old = dataclasses.replace(spec, columns=tuple(c for c in spec.columns if c.name != column))
    (table,) = lake.ensure_tables(config, (old,), suffix)
    assert column not in {f.name for f in table.schema().fields}


def assert_uptime_archived(config: Config, suffix: str, manifest: Manifest) -> None:
    """Telemetry v3 in the archive: every archived record has the schema id and uptime_s it was produced
    with (v3's value, NULL from v1 and v2 writers), in the table made before uptime_s (pyiceberg), and
    DuckDB (`kappa query`) counts the same per schema id."""
    from kappa import lake_query

    table = lake.catalog(config).load_table(lake.TELEMETRY.identifier(config, suffix))
    arrow = table.scan(selected_fields=("kafka_partition", "kafka_offset", "schema_id", "uptime_s")).to_arrow()
    columns = [arrow[name].to_pylist() for name in ("kafka_partition", "kafka_offset", "schema_id", "uptime_s")]
    archived = {(p, o): (s, u) for p, o, s, u in zip(*columns, strict=True)}
    produced = {(r.partition, r.offset): (r.row["schema_id"], r.row["uptime_s"])
                for r in manifest.records if r.row is not None and r.category is not Category.MALFORMED}
    assert archived == produced
    ids = manifest.data["schema_ids"]
    by_version = Counter((r.schema_version, r.row["uptime_s"] is not None) for r in manifest.records
                         if r.row is not None and r.category is not Category.MALFORMED)
    assert set(by_version) == {(1, False), (2, False), (3, True)}, by_version  # v3 writers always report it here
    duck = lake_query.duckdb_connection(config, suffix, tables=(lake.TELEMETRY,))
    counts = duck.execute("SELECT schema_id, count(*), count(uptime_s) FROM telemetry GROUP BY schema_id").fetchall()
    assert sorted(counts) == sorted((ids[f"v{v}"], n, n if has else 0) for (v, has), n in by_version.items())


def _subject_holding_v1(config: Config, suffix: str) -> tuple[SchemaRegistryClient, str]:
    """The run's aggregates subject with v1 registered under FULL, as a stack that ran the job before
    aggregates/v2.avsc has it; the job's sink must then pass the registry's compatibility check."""
    registry = SchemaRegistryClient(client_conf(config, ADMIN))  # sets the subject's level
    subject = f"{config.kafka.aggregates_topic}{suffix}-value"
    registry.set_compatibility(subject, "FULL")
    registry.register_schema(subject, Schema((config.root / "schemas/avro/aggregates/v1.avsc").read_text(), "AVRO"))
    return registry, subject


def _metadata_versions(config: Config, manifest: Manifest, topic: str) -> tuple[Metadata, str, str, int]:
    """Versions in `topic` for two simulated devices: one at a site from the epoch and moved to another
    (with another model) in the middle of the data (mid-minute), one whose first version starts there.
    Returns what Python takes as each reading's site, type and model, the two devices and the move's
    event time."""
    rows = [r for r in manifest.records if r.row is not None]
    first, last = min(r.event_time for r in rows), max(r.event_time for r in rows)
    move_ms = (first + (last - first) // 2) // 60_000 * 60_000 + 30_500
    moved, registered_late = sorted({r.device_id for r in rows})[:2]
    kinds = {r.device_id: r.row["device_type"] for r in rows if r.row is not None}
    table = [(moved, 0, "site-before-move", "M-1"), (moved, move_ms, "site-after-move", "M-2"),
             (registered_late, move_ms, "site-registered", "M-3")]
    own = config.model_copy(update={"kafka": config.kafka.model_copy(update={"devices_topic": topic})})
    versions.publish(own, [(Device(device, site, kinds[device], model=model), valid_from)
                           for device, valid_from, site, model in table])

    def metadata(device: str, event_ms: int) -> tuple[str, str, str | None] | None:
        in_force = [(valid_from, site, model) for d, valid_from, site, model in table
                    if d == device and valid_from <= event_ms]
        return (max(in_force)[1], kinds[device], max(in_force)[2]) if in_force else None

    return metadata, moved, registered_late, move_ms


# What each poison pill's dead letter says (schemas/avro/telemetry/limits.json): the field, never the value.
POISON_ERRORS = {
    "nul_in_id": ("INVALID_VALUE", "device_id contains a NUL byte"),
    "empty_id": ("INVALID_VALUE", "device_id is empty"),
    "long_id": ("INVALID_VALUE", "site_id is 4096 characters long (limit 128)"),
    "oversized": ("OVERSIZED", "limit is"),
}


def assert_poison_pills_dead_lettered(config: Config, suffix: str, manifest: Manifest) -> None:
    """Each poison pill is in the dead letters at its partition and offset with its reason and the field
    named; the oversized one without its payload (the job finished: no sink failed on any of them)."""
    with connect(config) as conn:
        rows = conn.execute(f"SELECT kafka_partition, kafka_offset, reason, error, payload "
                            f"FROM dead_letters{suffix}").fetchall()
    found = {(part, offset): (reason, error, payload) for part, offset, reason, error, payload in rows}
    pills = [r for r in manifest.records if r.category is Category.MALFORMED]
    assert Counter(reason for reason, _, _ in found.values()) == Counter(r.reason for r in pills)
    kinds = Counter(r.malformed_kind for r in pills)
    assert all(kinds[kind] > 0 for kind in (*POISON_ERRORS, "absurd_value")), kinds
    for record in pills:
        reason, error, payload = found[(record.partition, record.offset)]
        assert reason == record.reason, (record.malformed_kind, reason, error)
        if record.malformed_kind in POISON_ERRORS:
            assert (reason, True) == (POISON_ERRORS[record.malformed_kind][0],
                                      POISON_ERRORS[record.malformed_kind][1] in error), error
        if record.malformed_kind == "absurd_value":
            assert error in {"humidity_pct is outside its range in limits.json",
                             "battery_pct is outside its range in limits.json"}, error
        assert (payload is None) == (record.malformed_kind == "oversized"), record.malformed_kind
