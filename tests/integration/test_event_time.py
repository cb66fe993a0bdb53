"""Event time comes from the payload, not from the Kafka record timestamp (issue 11, part 1).

- Any producer: readings written with confluent-kafka's own `AvroSerializer` and the client's default
  record timestamps give exactly the tables of the same readings written with record timestamp =
  event time, and both equal Python's computation.
- No watermark poisoning: far-future records at the head of every partition (valid Avro ahead of the
  clock, the same with a forged far-future record timestamp, and undecodable bytes with a far-future
  record timestamp) are dead-lettered with their reason, no reading turns late, and every other
  aggregate is unchanged.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from kappa import expected, kafka_clients, outputs
from kappa.config import Config
from kappa.registry import WRITE, client_conf
from kappa.simulate import Category, ProducedRecord, SimulationSpec, simulate
from kappa.stack.postgres import connect
from tests.integration.aggregate_support import to_reading
from tests.integration.scratch import Names, fresh_topic, run_bounded, versioned_outputs

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000


def _avro_value(row: dict[str, Any]) -> dict[str, Any]:
    """The simulator's flat row back as a telemetry v2 record (v1 readings get null v2 fields)."""
    value = {k: v for k, v in row.items() if not k.startswith("location_") and k != "schema_id"}
    lat = row.get("location_lat")
    value["location"] = (None if lat is None
                         else {"lat": lat, "lon": row["location_lon"], "alt_m": row["location_alt_m"]})
    return value


class _Fixture:
    """Readings from the simulator (no late or out-of-order ones, so lateness cannot depend on timing),
    serialized once by confluent-kafka's AvroSerializer against the project's registry."""

    def __init__(self, config: Config) -> None:
        self.config = config
        spec = SimulationSpec(devices=9, sites=3, readings_per_device=50, seed=23, topic="unused", out_of_order=0.0,
                              late=0.0, duplicates=0.04, malformed=0, v1_fraction=0.0, anomalies=False)
        manifest = simulate(config, spec, produce=False, log=lambda _: None)
        self.records: list[ProducedRecord] = [r for r in manifest.records if r.row is not None]
        assert self.records and {r.category for r in self.records} <= {Category.VALID, Category.DUPLICATE}
        registry = SchemaRegistryClient(client_conf(config, WRITE))
        subject = f"{config.kafka.telemetry_topic}-value"
        for version in ("v1", "v2"):  # as `kappa schema register` does; idempotent
            text = (config.root / "schemas" / "avro" / "telemetry" / f"{version}.avsc").read_text()
            registry.register_schema(subject, Schema(text, "AVRO"))
        schema = registry.get_latest_version(subject).schema.schema_str
        self.serializer = AvroSerializer(registry, schema, conf={
            "auto.register.schemas": False, "use.latest.version": True,
            "subject.name.strategy": lambda _ctx, _name: subject})
        context = SerializationContext(config.kafka.telemetry_topic, MessageField.VALUE)
        self.values = [self.serializer(_avro_value(r.row or {}), context) for r in self.records]

    def topic(self, name: str) -> str:
        return fresh_topic(self.config, Names.new(name).topic)

    def produce(self, topic: str, event_time_timestamps: bool, head: list[dict[str, Any]] | None = None) -> None:
        """The readings, in simulation order; `head` records go first (each to its own partition)."""
        producer = kafka_clients.producer(self.config, **{"enable.idempotence": True,
                             "linger.ms": 20})
        failed: list[str] = []
        for extra in head or []:
            producer.produce(topic, **extra, on_delivery=lambda err, _msg: err and failed.append(str(err)))
        producer.flush(30)
        assert not failed, failed
        for record, value in zip(self.records, self.values, strict=True):
            if event_time_timestamps:
                producer.produce(topic, key=record.key.encode(), value=value, timestamp=record.event_time)
            else:  # the client's default: the time of the send
                producer.produce(topic, key=record.key.encode(), value=value)
            producer.poll(0)
        assert producer.flush(60) == 0

    def run(self, topic: str) -> tuple[str, dict, dict, outputs.Accounting]:
        suffix = versioned_outputs(self.config, "_" + topic.replace("-", "_").removeprefix("telemetry_"))
        run_bounded(self.config, "aggregate", topic, suffix)
        late = outputs.late_keys(self.config, f"{topic}-late{suffix}")
        with connect(self.config) as conn:
            return (suffix, outputs.device_windows(conn, suffix), outputs.site_windows(conn, suffix),
                    outputs.accounting(conn, suffix, late=len(late)))


# Columns the job writes at processing time, not computed from the readings.
WRITE_TIME_COLUMNS = {"updated_at"}


def _assert_same(actual: dict, want: dict) -> None:
    missing, extra = sorted(want.keys() - actual.keys()), sorted(actual.keys() - want.keys())
    assert not missing and not extra, (missing[:3], extra[:3])
    for key, row in want.items():
        for column, value in row.items():
            if column not in WRITE_TIME_COLUMNS:
                assert expected.close(actual[key][column], value), (key, column, actual[key][column], value)


@pytest.fixture(scope="module")
def readings(migrated: Config) -> _Fixture:
    return _Fixture(migrated)


@pytest.fixture(scope="module")
def reference_run(readings: _Fixture) -> tuple[dict, dict]:
    """The readings with record timestamp = event time (what the simulator has always done)."""
    topic = readings.topic("evt-ts")
    readings.produce(topic, event_time_timestamps=True)
    _, devices, sites, books = readings.run(topic)
    kept = [to_reading(r) for r in readings.records]
    _assert_same(devices, expected.device_windows_1m(kept))
    _assert_same(sites, expected.site_windows_5m(kept))
    assert books.late == 0 and books.dead_letters == 0 and books.total == len(readings.records), books
    return devices, sites


def test_default_record_timestamps_give_the_same_tables(readings: _Fixture, reference_run: tuple[dict, dict]) -> None:
    topic = readings.topic("evt-default")
    readings.produce(topic, event_time_timestamps=False)
    _, devices, sites, books = readings.run(topic)
    assert books.dead_letters == 0, "no EVENT_TIME_MISMATCH (or anything else) for a standard producer"
    assert books.late == 0 and books.total == len(readings.records), books
    _assert_same(devices, reference_run[0])
    _assert_same(sites, reference_run[1])
    assert len(devices) >= 9 * 8  # every device, several minutes each


def test_far_future_records_cannot_poison_the_watermark(readings: _Fixture, reference_run: tuple[dict, dict]) -> None:
    config = readings.config
    now = int(time.time() * 1000)
    skew = config.job.max_clock_skew_s * 1000
    # Kafka 4 refuses record timestamps more than log.message.timestamp.after.max.ms (1 h by default)
    # ahead of the broker's clock, so a forged timestamp can be at most that far ahead.
    forged_ts = now + 50 * 60_000
    context = SerializationContext(config.kafka.telemetry_topic, MessageField.VALUE)
    ahead = dict(_avro_value(readings.records[0].row or {}), seq=9_000_000, event_time=now + 30 * DAY_MS)
    barely = dict(ahead, seq=9_000_001, event_time=now + skew + 10 * 60_000)  # past the bound, not the cap
    head: list[dict[str, Any]] = []
    for partition in range(config.kafka.partitions):
        head += [
            # valid Avro far ahead of the clock, default timestamp
            {"partition": partition, "key": b"dev-future", "value": readings.serializer(ahead, context)},
            # just past the clock-skew bound
            {"partition": partition, "key": b"dev-future", "value": readings.serializer(barely, context)},
            # just past the bound, with a forged future record timestamp: the wall clock caps the reference
            {"partition": partition, "key": b"dev-future", "value": readings.serializer(barely, context),
             "timestamp": forged_ts},
            # undecodable bytes with a future record timestamp
            {"partition": partition, "key": b"dev-junk", "value": b"{\"not\": \"avro\"}", "timestamp": forged_ts},
        ]
    topic = readings.topic("evt-poison")
    readings.produce(topic, event_time_timestamps=False, head=head)
    suffix, devices, sites, books = readings.run(topic)
    with connect(config) as conn:
        reasons = Counter(row[0] for row in conn.execute(f"SELECT reason FROM dead_letters{suffix}").fetchall())
    partitions = config.kafka.partitions
    assert reasons == Counter({"FUTURE_EVENT_TIME": 3 * partitions, "BAD_MAGIC": partitions}), reasons
    assert books.late == 0, "a poisoned watermark would have made every reading late"
    assert books.total == len(readings.records) + len(head), books
    _assert_same(devices, reference_run[0])
    _assert_same(sites, reference_run[1])
