"""The simulator against the real registry and Kafka: every record arrives once, as produced.

Uses the session `stack` fixture (tests/conftest.py, yielding the Config of the running stack).
Each test writes to its own topic (so its own subject) and reads it back with read_committed.
Event times start an hour before now: old enough to be accepted, young enough for retention.
"""

from __future__ import annotations

import contextlib
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TopicPartition

from kappa import kafka_clients, waiting
from kappa.config import Config
from kappa.registry import READ, ca_file, client_conf, credentials, session
from kappa.simulate import MALFORMED_KINDS, Category, Manifest, SimulationSpec, simulate
from udfs.avro_decoder import AvroDecoder
from udfs.schema_lookup import RegistrySchemaLookup

with warnings.catch_warnings(record=True):  # authlib warns about httpx on import
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.integration.scratch import Names, fresh_topic

pytestmark = pytest.mark.integration


@pytest.fixture()
def topic(stack: Config) -> Iterator[str]:
    name = fresh_topic(stack, Names.new("it").topic_of("sim"))
    admin = kafka_clients.admin(stack)
    yield name
    for future in admin.delete_topics([name]).values():
        with contextlib.suppress(Exception):  # best-effort cleanup
            future.result(30)


def _spec(topic: str, transactional: bool) -> SimulationSpec:
    start = (int(time.time()) // 60 - 60) * 60_000  # a minute boundary an hour ago
    return SimulationSpec(
        devices=8,
        readings_per_device=60,
        interval_s=5.0,
        seed=11,
        start_ms=start,
        topic=topic,
        out_of_order=0.05,
        late=0.03,
        duplicates=0.05,
        malformed=2,
        v1_fraction=0.3,
        transactional_id=f"sim-it-{uuid.uuid4().hex[:8]}" if transactional else None,
    )


def _consume_all(config: Config, topic: str, expected: int, timeout_s: float = 60.0) -> list:
    consumer = kafka_clients.consumer(config, f"sim-it-{uuid.uuid4().hex[:8]}", **{
        "isolation.level": "read_committed", "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(config.kafka.partitions)])
        messages: list = []
        deadline = waiting.Deadline(timeout_s)
        quiet_until = None
        while not deadline.passed:
            msg = consumer.poll(0.5)
            if msg is None:
                if len(messages) >= expected:
                    quiet_until = quiet_until or time.monotonic() + 3.0  # then make sure nothing more comes
                    if time.monotonic() > quiet_until:
                        break
                continue
            assert msg.error() is None, msg.error()
            messages.append(msg)
        return messages
    finally:
        consumer.close()


@pytest.mark.parametrize("transactional", [False, True], ids=["idempotent", "transactional"])
def test_every_record_arrives_once_as_produced(stack: Config, topic: str, transactional: bool) -> None:
    manifest: Manifest = simulate(stack, _spec(topic, transactional), produce=True, log=lambda _: None)
    records = manifest.records
    counts = manifest.data["counts"]
    assert counts["total"] == len(records) and counts["decodable"] > 0
    assert counts["schema_versions"]["v1"] > 0 and counts["malformed"] == 2 * len(MALFORMED_KINDS)  # 2 of each
    assert all(r.partition is not None and r.offset is not None for r in records)

    messages = _consume_all(stack, topic, len(records))
    by_position = {(m.partition(), m.offset()): m for m in messages}
    assert len(by_position) == len(messages) == len(records)
    assert set(by_position) == {(r.partition, r.offset) for r in records}
    for r in records:
        msg = by_position[(r.partition, r.offset)]
        assert msg.key() == r.device_id.encode()
        assert msg.value() == r.value
        assert msg.timestamp() == (TIMESTAMP_CREATE_TIME, r.timestamp_ms)
        if r.malformed_kind != "far_future":
            assert r.timestamp_ms == r.event_time
    # same multiset of (key, value, timestamp): planted duplicates are the only repeats
    sent = Counter((r.key.encode(), r.value, r.timestamp_ms) for r in records)
    got = Counter((m.key(), m.value(), m.timestamp()[1]) for m in messages)
    assert sent == got
    # per partition, send order is preserved
    for p in {r.partition for r in records}:
        indexes = [
            r.index for r in sorted((r for r in records if r.partition == p), key=lambda r: r.offset or 0)
        ]
        assert indexes == sorted(indexes)
    # one device, one partition (key = device id)
    assert all(
        len({r.partition for r in records if r.device_id == d}) == 1 for d in manifest.data["per_device"]
    )

    _check_framing_and_decoding(stack, manifest)


def _check_framing_and_decoding(config: Config, manifest: Manifest) -> None:
    subject = manifest.data["subject"]
    schema_ids = manifest.data["schema_ids"]
    auth, http = credentials(config, READ), session(config, READ)
    base = f"{config.registry.url}/subjects/{subject}/versions"
    registered = {http.get(f"{base}/{v}", timeout=10).json()["id"] for v in http.get(base, timeout=10).json()}
    assert set(schema_ids.values()) <= registered and schema_ids["v1"] != schema_ids["v2"]

    decoder = AvroDecoder(RegistrySchemaLookup(config.registry.url, auth=auth, verify=ca_file(config)))
    deserializer = AvroDeserializer(SchemaRegistryClient(client_conf(config, READ)))
    ctx = SerializationContext(manifest.data["topic"], MessageField.VALUE)
    now = int(time.time() * 1000)
    for r in manifest.records:
        result = decoder.decode(r.value, now)
        if r.category is Category.MALFORMED:
            assert not result.ok and str(result.reason) == r.reason, r.malformed_kind
            continue
        assert r.value[0] == 0  # Confluent magic byte, then the big-endian schema id
        assert int.from_bytes(r.value[1:5], "big") == schema_ids[f"v{r.schema_version}"]
        assert result.ok and result.row == r.row
    for version in (1, 2):  # Confluent's own client reads both writer versions
        r = next(x for x in manifest.records if x.schema_version == version and x.category is Category.VALID)
        decoded = deserializer(r.value, ctx)
        assert decoded["device_id"] == r.device_id and decoded["seq"] == r.seq
        assert round(decoded["event_time"].timestamp() * 1000) == r.event_time


def test_records_acknowledged_without_an_offset_are_found_in_the_log(stack: Config, topic: str) -> None:
    """A retried idempotent write may be acknowledged with no offset (DUPLICATE_SEQUENCE_NUMBER: librdkafka
    reports -1001). Killing a broker at the right instant is not repeatable, so the delivery reports' offsets
    are taken away here, after two runs of the same seed wrote identical bytes twice; the lookup must give
    each record the offset of its own copy, the second run's, including the planted duplicates."""
    from kappa.simulate import offsets
    from kappa.simulate.produce import find_offsets

    spec = _spec(topic, transactional=False)
    simulate(stack, spec, produce=True, log=lambda _: None)  # the older identical copy of every record
    records = simulate(stack, spec, produce=True, log=lambda _: None).records
    truth = {r.index: r.offset for r in records}
    by_partition = {p: [r for r in records if r.partition == p] for p in {r.partition for r in records}}
    # the first record of each partition (no known record before it), and every 7th (between known ones)
    for in_partition in by_partition.values():
        in_partition[0].offset = -1001
    for r in records[3::7]:
        r.offset = -1001
    taken = sum(r.offset == -1001 for r in records)
    assert len(offsets.unknown(records)) == len(by_partition) and taken > len(by_partition)
    lines: list[str] = []
    find_offsets(stack, topic, offsets.unknown(records), lines.append)
    assert {r.index: r.offset for r in records} == truth
    assert lines == [f"simulate: {taken} records acknowledged without an offset (a retried write); looking them up"]
