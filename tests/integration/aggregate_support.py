"""Shared by the aggregation job's integration tests: simulate input, run the job, compare with Python."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from datetime import UTC

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from kappa import expected, outputs
from kappa.config import Config
from kappa.registry import READ, client_conf
from kappa.simulate import Category, Manifest, ProducedRecord, SimulationSpec, simulate
from kappa.stack.postgres import connect
from tests.integration.kafka_support import committed_messages
from tests.integration.scratch import Names, versioned_outputs

READING_CATEGORIES = {Category.VALID, Category.OUT_OF_ORDER, Category.LATE, Category.DUPLICATE}


def faulty_spec(topic: str, seed: int = 11, devices: int = 8, readings: int = 40,
                v3_fraction: float = 0.0) -> SimulationSpec:
    return SimulationSpec(devices=devices, sites=3, readings_per_device=readings, seed=seed, topic=topic,
                          out_of_order=0.05, late=0.03, duplicates=0.04, malformed=2, v1_fraction=0.3,
                          v3_fraction=v3_fraction)


# (device, event ms) -> (site, type, model) of the device's metadata version in force then, None without one
Metadata = Callable[[str, int], "tuple[str, str, str | None] | None"]


def to_reading(record: ProducedRecord, metadata: Metadata | None = None) -> expected.Reading:
    """The reading as the windows see it: the registry's site, type and model as of its event time, when
    a metadata version is in force then; otherwise the site and type the device sent, and no model
    (sql/telemetry/devices.sql)."""
    assert record.row is not None
    site, kind, model = (metadata and metadata(record.device_id, record.event_time)) or (
        record.row["site_id"], record.row["device_type"], None)
    return expected.Reading(record.device_id, site, kind, record.seq, record.event_time, record.row, model)


def prepare(config: Config, name: str, spec_seed: int = 11, v3_fraction: float = 0.0) -> tuple[str, str, Manifest]:
    """A fresh topic with simulated telemetry and fresh versioned output tables."""
    names = Names.new(name)
    suffix = versioned_outputs(config, names.suffix)
    spec = faulty_spec(names.topic, seed=spec_seed, v3_fraction=v3_fraction)
    manifest = simulate(config, spec, produce=True, log=lambda _: None)
    return names.topic, suffix, manifest


def expected_late(config: Config, records: list[ProducedRecord]) -> Counter[tuple[str, int]]:
    """(device, seq) -> how many copies the job must route late: Python's twin of lateness.sql over the
    produced partitions and offsets (kappa.expected.late_flags)."""
    late_after_ms = (config.job.watermark_delay_s + config.job.allowed_lateness_s) * 1000
    flags = expected.late_flags([(r.partition or 0, r.offset or 0, r.event_time) for r in records], late_after_ms)
    return Counter((r.device_id, r.seq) for r, late in zip(records, flags, strict=True) if late)


def assert_matches_python(config: Config, suffix: str, manifest: Manifest, topic: str,
                          metadata: Metadata | None = None) -> outputs.Accounting:
    """The job routed exactly the readings late that the partition rule calls late, every aggregate row
    equals Python's over the others, and read = aggregated + dead letters + late + duplicates."""
    late_counts = Counter(outputs.late_keys(config, f"{topic}-late{suffix}"))
    readings = [r for r in manifest.records if r.category in READING_CATEGORIES]
    if all(r.partition is not None for r in readings):
        assert late_counts == expected_late(config, readings), "late set differs from the partition rule"
    else:  # through MQTT the bridge chose partitions and order: only readings that far behind can be late
        late_after_ms = (config.job.watermark_delay_s + config.job.allowed_lateness_s) * 1000
        candidates = {(r.device_id, r.seq) for r in readings if r.lateness_ms >= late_after_ms}
        assert set(late_counts) <= candidates, sorted(set(late_counts) - candidates)[:5]
    with connect(config) as conn:
        actual = outputs.device_windows(conn, suffix)
        actual_sites = outputs.site_windows(conn, suffix)
        books = outputs.accounting(conn, suffix, late=late_counts.total())
    # a reading is missing from the windows only if every copy of it was late
    copies = Counter((r.device_id, r.seq) for r in readings)
    all_copies_late = {key for key, n in late_counts.items() if n == copies[key]}
    kept = [to_reading(r, metadata) for r in readings if (r.device_id, r.seq) not in all_copies_late]
    assert books.duplicates == len(readings) - late_counts.total() - len(expected.unique_readings(kept)), books
    want = expected.device_windows_1m(kept)
    missing, extra = sorted(want.keys() - actual.keys()), sorted(actual.keys() - want.keys())
    assert not missing and not extra, (f"{len(missing)} windows missing, e.g. {missing[:3]}; "
                                       f"{len(extra)} unexpected, e.g. {extra[:3]}; accounting {books}")
    for key, row in want.items():
        for column, value in row.items():
            assert expected.close(actual[key][column], value), (key, column, actual[key][column], value)
    want_sites = expected.site_windows_5m(kept)
    assert actual_sites.keys() == want_sites.keys()
    for key, row in want_sites.items():
        for column, value in row.items():
            assert expected.close(actual_sites[key][column], value), (key, column, actual_sites[key][column], value)
    counts = manifest.data["counts"]
    edge = counts.get("rejected_at_edge", 0)  # through MQTT the bridge dead-letters these: they never reach Kafka
    assert books.dead_letters == counts["malformed"] - edge
    assert books.total == counts["total"] - edge, books
    return books


def assert_windows_equal_python(config: Config, suffix: str, topic: str, readings: list[expected.Reading],
                                copies: Counter[tuple[str, int]]) -> outputs.Accounting:
    """The job's device windows equal Python's over `readings` (distinct readings), given how many copies
    of each reached the job's input (`copies`): a reading is missing only if every copy of it was late."""
    late_counts = Counter(outputs.late_keys(config, f"{topic}-late{suffix}"))
    all_copies_late = {key for key, n in late_counts.items() if n == copies[key]}
    want = expected.device_windows_1m([r for r in readings if (r.device_id, r.seq) not in all_copies_late])
    with connect(config) as conn:
        actual = outputs.device_windows(conn, suffix)
        books = outputs.accounting(conn, suffix, late=late_counts.total())
    missing, extra = sorted(want.keys() - actual.keys()), sorted(actual.keys() - want.keys())
    assert not missing and not extra, (missing[:3], extra[:3], books)
    for key, row in want.items():
        for column, value in row.items():
            assert expected.close(actual[key][column], value), (key, column, actual[key][column], value)
    assert books.total == copies.total(), (books, copies.total())
    return books



def assert_lake_matches(config: Config, suffix: str, manifest: Manifest) -> int:
    """The Iceberg archive of a run: the telemetry table holds every decodable record produced exactly
    once (its Kafka position as key), and the windows table equals device_agg_1m<suffix>. Returns the
    number of archived readings."""
    from kappa import lake, lake_query

    telemetry = lake.catalog(config).load_table(lake.TELEMETRY.identifier(config, suffix)).scan().to_arrow()
    positions = list(zip(telemetry["kafka_partition"].to_pylist(), telemetry["kafka_offset"].to_pylist(), strict=True))
    produced = [(r.partition, r.offset) for r in manifest.records if r.category in READING_CATEGORIES]
    assert len(positions) == len(produced), (len(positions), len(produced))
    assert set(positions) == set(produced) and len(set(positions)) == len(positions)
    # the windows are upserted (equality deletes), which pyiceberg does not read: DuckDB's iceberg extension
    duck = lake_query.duckdb_connection(config, suffix, tables=(lake.DEVICE_AGG_1M,))
    reader = duck.execute("SELECT * FROM device_agg_1m")
    names = [d[0] for d in reader.description or []]
    rows = [dict(zip(names, values, strict=True)) for values in reader.fetchall()]
    archived = {(row["device_id"], outputs.ms(row["window_start"])): row for row in rows}
    assert len(archived) == len(rows), "a window twice in the archive"
    with connect(config) as conn:
        live = outputs.device_windows(conn, suffix)
    assert archived.keys() == live.keys()
    assert set(names) == set(next(iter(live.values()), {})) - outputs.IGNORED_COLUMNS  # device_model too
    for key, row in live.items():
        for column, value in row.items():
            if column in archived[key] and column not in ("window_start", "window_end"):
                got = archived[key][column]
                got = outputs.ms(got) if column.endswith("event_time") and got is not None else got
                assert expected.close(got, value), (key, column, got, value)
    return len(positions)


def window_versions(config: Config, topic: str) -> dict[tuple[str, int], list[int]]:
    """(device, window start) -> the reading counts of its versions, in the order a read_committed
    consumer sees them."""
    deserialize = AvroDeserializer(SchemaRegistryClient(client_conf(config, READ)))
    versions: dict[tuple[str, int], list[int]] = {}
    for _, raw in committed_messages(config, topic):
        value = deserialize(raw, SerializationContext(topic, MessageField.VALUE))
        assert value is not None, "a tombstone: windows are updated, never deleted"
        start = int(value["window_start"].replace(tzinfo=UTC).timestamp() * 1000)
        versions.setdefault((value["device_id"], start), []).append(value["reading_count"])
    return versions


def assert_topic_versions_exactly_once(config: Config, suffix: str) -> None:
    """A read_committed consumer of the aggregates (upsert) topic sees each version of a window once: a
    window's versions have strictly growing reading counts (each late firing adds a reading), and the last
    one is the table's row (the fault tests: a version written twice would show as a repeated count)."""
    with connect(config) as conn:
        windows = outputs.device_windows(conn, suffix)
    in_topic = window_versions(config, f"{config.kafka.aggregates_topic}{suffix}")
    repeated = {key: counts for key, counts in in_topic.items() if counts != sorted(set(counts))}
    assert not repeated, f"a window version appeared twice to a read_committed consumer: {list(repeated.items())[:3]}"
    assert in_topic.keys() == windows.keys()
    assert all(counts[-1] == windows[key]["reading_count"] for key, counts in in_topic.items())


def producer_copies(manifest: Manifest, in_topic: dict[tuple[int, int], bytes | None]) -> list[ProducedRecord]:
    """Records in the topic that no acknowledgement names and that repeat, byte for byte, an acknowledged
    record of the same partition acknowledged at a later offset: the first write of a batch the idempotent
    producer wrote again after the leader change (librdkafka's open confluentinc/librdkafka#4953). Such a copy
    is a duplicate in the log, as from any producer's retry, and the job must count it as one."""
    acknowledged = {(r.partition, r.offset) for r in manifest.records}
    copies = []
    for (partition, offset), value in sorted(in_topic.items()):
        if (partition, offset) in acknowledged:
            continue
        later = [r for r in manifest.records
                 if r.partition == partition and r.value == value and (r.offset or 0) > offset]
        if later:
            copies.append(dataclasses.replace(later[0], offset=offset))
    return copies


def with_copies(manifest: Manifest, copies: list[ProducedRecord]) -> Manifest:
    """The manifest of what the log holds: the producer's extra copies added to the records and counts."""
    if not copies:
        return manifest
    counts = dict(manifest.data["counts"])
    counts["total"] += len(copies)
    counts["malformed"] += sum(c.category == Category.MALFORMED for c in copies)
    return Manifest({**manifest.data, "counts": counts}, [*manifest.records, *copies])
