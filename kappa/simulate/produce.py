"""Producing a run to Kafka, and `simulate()`, the entry point tests and the demo use."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from kappa import waiting
from kappa.config import Config
from kappa.registry import WRITE, ca_file, credentials
from kappa.schemas import read_schema
from kappa.simulate import offsets
from kappa.simulate.encoding import register_schema
from kappa.simulate.manifest import _manifest_data
from kappa.simulate.model import SCHEMA_DIR, Manifest, ProducedRecord, SimulationSpec
from kappa.simulate.stream import _build


def _produce(
    config: Config, spec: SimulationSpec, topic: str, records: list[ProducedRecord], log: Callable,
    advance: Callable[[int, int], None] | None = None,
) -> None:
    from confluent_kafka import KafkaException

    from kappa import kafka_clients, sqlfiles
    from kappa.stack.kafka_setup import prepare_run

    # Runs as the producer principal (write telemetry only). A run into another topic (tests, benches)
    # is prepared like a job run: the topic exists and the principal may write it (admin client).
    prepare_run(config, "producer",
                sqlfiles.params_from_config(config, include_secrets=False).with_values(telemetry_topic=topic))
    conf: dict[str, Any] = {
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        "partitioner": "murmur2_random",  # same key -> partition mapping as Java clients
    }
    if spec.transactional_id:
        conf["transactional.id"] = spec.transactional_id
    producer = kafka_clients.producer(config, role="producer", **conf)
    errors: list[str] = []

    def delivered(record: ProducedRecord) -> Callable[[Any, Any], None]:
        def callback(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(f"record {record.index}: {err}")
            else:
                record.partition, record.offset = msg.partition(), msg.offset()

        return callback

    if spec.transactional_id:
        producer.init_transactions(30)
        producer.begin_transaction()
    started = time.monotonic()
    for i, rec in enumerate(records, 1):
        if spec.rate:  # pace: record i leaves no earlier than i / rate seconds after the start
            ahead = started + i / spec.rate - time.monotonic()
            if ahead > 0:
                producer.poll(0)
                time.sleep(ahead)
        while True:
            try:
                producer.produce(
                    topic,
                    key=rec.key.encode(),
                    value=rec.value,
                    timestamp=rec.timestamp_ms,
                    on_delivery=delivered(rec),
                )
                break
            except BufferError:
                producer.poll(0.2)
        producer.poll(0)
        if spec.transactional_id and i % 5000 == 0:
            producer.commit_transaction(60)
            producer.begin_transaction()
        if advance is not None:
            advance(i, len(records))
        elif spec.progress_every and i % spec.progress_every == 0:
            log(f"simulate: produced {i}/{len(records)} records")
    try:
        if spec.transactional_id:
            producer.commit_transaction(60)
    except KafkaException as exc:
        raise RuntimeError(f"transaction commit failed: {exc}") from exc
    remaining = producer.flush(60)
    if remaining or errors:
        raise RuntimeError(f"{remaining} records undelivered, {len(errors)} failed: {errors[:5]}")
    pending = offsets.unknown(records)
    if pending:
        find_offsets(config, topic, pending, log)


def find_offsets(config: Config, topic: str, pending: dict[int, list[ProducedRecord]], log: Callable) -> None:
    """Look up, in the log, the records Kafka acknowledged without an offset (kappa/simulate/offsets.py)."""
    from confluent_kafka import TopicPartition

    from kappa import kafka_clients

    count = sum(not offsets.known(r) for rs in pending.values() for r in rs)
    log(f"simulate: {count} records acknowledged without an offset (a retried write); looking them up")
    consumer = kafka_clients.consumer(config, f"kappa-simulate-{uuid.uuid4().hex}", **{
        "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        lost: list[ProducedRecord] = []
        for partition, in_partition in pending.items():
            start = offsets.first_offset(in_partition)
            end = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)[1]
            stretch: offsets.Stretch = []
            consumer.assign([TopicPartition(topic, partition, start)])
            deadline = waiting.Deadline(120)
            while (stretch[-1][0] if stretch else start - 1) < end - 1:
                if deadline.passed:
                    raise RuntimeError(f"{topic} [{partition}] not read from {start} to {end} within 120 s")
                message = consumer.poll(1.0)
                if message is not None and not message.error():
                    stretch.append((message.offset() or 0, message.key(), message.value()))
            lost += offsets.place(in_partition, stretch)
    finally:
        consumer.close()
    if lost:
        raise RuntimeError(f"{len(lost)} records acknowledged without an offset are not in {topic}: "
                           f"{[r.index for r in lost[:5]]}")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def simulate(
    config: Config, spec: SimulationSpec, produce: bool = True, log: Callable[[str], None] = _stderr,
    advance: Callable[[int, int], None] | None = None,
) -> Manifest:
    """Generate the run; with `produce`, register the schemas and send it to Kafka, or, with
    `spec.via == "mqtt"`, publish it as the devices through the broker (the bridge forwards it).
    `advance(done, total)`, when given, follows every record sent (a progress bar) instead of the
    progress line logged every `spec.progress_every` records."""
    topic = spec.topic or config.kafka.telemetry_topic
    if spec.via == "mqtt" and topic != config.kafka.telemetry_topic:
        raise ValueError(f"through MQTT the bridge writes to {config.kafka.telemetry_topic}: --topic does not apply")
    subject = f"{topic}-value"
    if produce:
        url, auth = config.registry.url, credentials(config, WRITE)  # registers its schemas
        # the registry's canonical form, as `kappa schema register` sends it
        versions = (*((1,) if spec.v1_fraction > 0 else ()), 2, *((3,) if spec.v3_fraction > 0 else ()))
        texts = {v: read_schema(config.root / SCHEMA_DIR / f"v{v}.avsc") for v in versions}
        schema_ids = {
            v: register_schema(url, subject, texts[v], auto=spec.auto_register, auth=auth, verify=ca_file(config))
            for v in versions
        }
    else:
        schema_ids = {1: 1, 2: 2, 3: 3}  # placeholders: a dry run talks to no registry
    started = time.monotonic()
    records, ctx = _build(config, spec, schema_ids)
    edge: dict[str, int] = {}
    if produce and spec.via == "mqtt":
        from kappa.simulate import mqtt

        passwords = mqtt.fleet_credentials(config, ctx["devices"], log)
        edge = mqtt.publish(config, spec, records, passwords, log, advance)
    elif produce:
        _produce(config, spec, topic, records, log, advance)
    data = _manifest_data(config, spec, topic, schema_ids, records, ctx, produce)
    if edge:
        data["edge"] = edge
    return Manifest(data, records, elapsed_s=round(time.monotonic() - started, 3))


