"""A replicated Kafka (kafka.brokers = 3: replication factor 3, min.insync.replicas 2): one broker of three
is SIGKILLed while the live aggregation job reads telemetry that an idempotent acks=all producer is still
writing. The producer goes on; no record it had acknowledged is lost from the topic (a read_committed
consumer reads each at its acknowledged offset, with its bytes), the job carries on with no command from
anyone, and once it has read the whole stream and is stopped with a drain its outputs equal the independent
Python computation over the acknowledged records (tables, late and dead letters), each window version once
to a read_committed consumer. The only records allowed in the topic besides the acknowledged ones are
earlier byte-for-byte copies of them: librdkafka's idempotent producer may write a batch twice across a
leader change (confluentinc/librdkafka#4953, open); the job must count such a copy as a duplicate.

The session's Kafka is one broker (the default); this module starts a separate 3-node KRaft cluster (same
build, same SASL_SSL, SCRAM principals and ACLs) on the session's Kafka ports + PORT_SHIFT, in the session's
data folder (its own node folders and PID files), beside the session's PostgreSQL and registry, and stops
it, removing its data, at the end. The job runs in a local MiniCluster in this process (run_local).
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from confluent_kafka import KafkaException, TopicPartition

from kappa import jobrunner, kafka_clients, waiting
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.replay.watch import fetch_health, minicluster_rest_url
from kappa.simulate import Manifest, simulate
from kappa.stack.kafka import KafkaService
from tests.integration.aggregate_support import (
    assert_matches_python,
    assert_topic_versions_exactly_once,
    faulty_spec,
    producer_copies,
    with_copies,
)
from tests.integration.kafka_support import end_offsets
from tests.integration.scratch import Names, versioned_outputs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PORT_SHIFT = 1000  # the 3-node cluster's ports: the session's Kafka ports + this (+ 10 per node)
# ~310 records paced over ~26 s: the kill lands while they stream in, and the stream goes on after it
DEVICES, READINGS, RATE = 12, 24, 12.0
LIVENESS_S = 180  # bounds on waits, not measurements


@pytest.fixture(scope="module")
def replicated(migrated: Config) -> Iterator[Config]:
    """The session's configuration pointed at a 3-node Kafka of its own (started here, stopped after)."""
    # "eos": the producer's retries, sequence numbers and epochs go to the client log (_producer_events)
    kafka = migrated.kafka.model_copy(update={
        "brokers": 3, "port": migrated.kafka.port + PORT_SHIFT,
        "controller_port": migrated.kafka.controller_port + PORT_SHIFT, "client_debug": "eos"})
    config = migrated.model_copy(update={"kafka": kafka})
    service = KafkaService(config)
    started = time.monotonic()
    try:
        service.start()  # formats the nodes, waits for all 3 brokers, creates users, topics and ACLs
        print(f"3-node Kafka up in {time.monotonic() - started:.0f} s at {kafka.bootstrap}", flush=True)
        yield config
    finally:
        # this cluster's nodes only (the session's broker stays up), killed: their data is removed next, and a
        # controlled shutdown of the last nodes of a quorum took 45 s
        for node in service.nodes:
            node.process.kill9()
        for node in service.nodes:
            shutil.rmtree(node.folder, ignore_errors=True)
        service.cluster_id_file.unlink(missing_ok=True)


def _committed(config: Config, group: str, topic: str) -> dict[int, int]:
    """The offsets the job's Kafka source committed (on each completed checkpoint), per partition; none
    while the group's coordinator is not available yet (a new cluster creates __consumer_offsets, 50
    partitions x 3 replicas, on its first group request: seconds on a loaded machine)."""
    consumer = kafka_clients.consumer(config, group, **{"enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        answer = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: tp.offset for tp in answer if tp.offset >= 0}
    except KafkaException as exc:
        print(f"committed offsets of {group} not readable yet: {exc}", flush=True)
        return {}
    finally:
        consumer.close()


def _leaderships(config: Config) -> Counter[int]:
    """Broker id -> partitions it leads, over every topic (the internal ones included)."""
    metadata = kafka_clients.admin(config).list_topics(timeout=10)
    return Counter(p.leader for t in metadata.topics.values() for p in t.partitions.values())


def _in_topic(config: Config, topic: str) -> dict[tuple[int, int], bytes | None]:
    """(partition, offset) -> value of every record a read_committed consumer reads from `topic`."""
    ends = end_offsets(config, topic)
    consumer = kafka_clients.consumer(config, f"test-{uuid.uuid4().hex}",
                                      **{"isolation.level": "read_committed", "enable.auto.commit": False})
    seen: dict[tuple[int, int], bytes | None] = {}
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in ends if ends[p] > 0])
        deadline = waiting.Deadline(LIVENESS_S)
        while any(max((o for p2, o in seen if p2 == p), default=-1) < ends[p] - 1 for p in ends if ends[p] > 0):
            assert not deadline.passed, f"{topic} not read up to {ends}"
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                seen[(message.partition() or 0, message.offset() or 0)] = message.value()
        return seen
    finally:
        consumer.close()


def _log_difference(acknowledged: dict[tuple[int, int], bytes | None], in_topic: dict[tuple[int, int], bytes | None],
                    ends: dict[int, int]) -> str:
    """What differs between the acknowledged records and the topic, by (partition, offset), in a few lines
    (a dict diff of ~300 records in two orders says nothing)."""
    missing = sorted(acknowledged.keys() - in_topic.keys())
    unexpected = sorted(in_topic.keys() - acknowledged.keys())
    changed = sorted(k for k in acknowledged.keys() & in_topic.keys() if acknowledged[k] != in_topic[k])
    values = set(acknowledged.values())
    copies = [k for k in unexpected if in_topic[k] in values]
    return (f"{len(missing)} acknowledged records missing, e.g. {missing[:5]}; {len(unexpected)} unexpected, "
            f"e.g. {unexpected[:5]}, {len(copies)} of them copies of acknowledged records; {len(changed)} at "
            f"their offset with other bytes, e.g. {changed[:5]}; end offsets {ends}")


def _producer_events(config: Config, last: int = 12) -> list[str]:
    """The idempotent producer's retry lines (librdkafka "eos" debug) from the client log: what a failure
    of the comparison above needs explained (a write retried after the kill, its sequence and epoch)."""
    path = kafka_clients.client_log_path(config)
    if not path.exists():
        return []
    words = ("DUPSEQ", "ERRSEQ", "DRAIN", "persisted", "retry", "Retrying", "epoch", "OUT_OF_ORDER")
    return [line[:300] for line in path.read_text(errors="replace").splitlines()
            if "producer" in line and any(w in line for w in words)][-last:]


def _wait_running(client: Any, rest_url: str | None, job_id: str) -> None:
    """Until every task of the local job runs (its start takes from seconds to a minute on a loaded machine)."""

    def running() -> bool:
        if rest_url:
            vertices = requests.get(f"{rest_url}/jobs/{job_id}", timeout=5).json().get("vertices", [])
            return bool(vertices) and all(v.get("status") == "RUNNING" for v in vertices)
        return str(client.get_job_status().result()).endswith("RUNNING")

    waiting.wait_until(running, timeout_s=LIVENESS_S, interval_s=1, what="the job's tasks",
                       retry_on=(requests.RequestException, ValueError),
                       on_timeout=lambda _: AssertionError("the job's tasks did not start"))


def _drain(client: Any, folder: Path) -> None:
    """Stop the local job with a savepoint and a drain (every open window fires). PyFlink 2.0's wrapper
    calls a signature Flink 2.0 no longer has: the Java client is called with the format type."""
    from pyflink.java_gateway import get_gateway

    canonical = get_gateway().jvm.org.apache.flink.core.execution.SavepointFormatType.CANONICAL
    client._j_job_client.stopWithSavepoint(True, folder.as_uri(), canonical).get()


class _Producer(threading.Thread):
    """The simulated stream, paced, in the background: `kappa simulate`'s producer (client factory,
    idempotent, acks=all); it raises if any record is not acknowledged. At least its second half is written
    after the fault: at the midpoint it waits for `fault` unless set already (under load, the job's first
    checkpoint, which the fault waits for, came after the end of the paced stream: 1 run of 4)."""

    def __init__(self, config: Config, topic: str) -> None:
        super().__init__(daemon=True)
        self.config, self.spec = config, dataclasses.replace(
            faulty_spec(topic, seed=23, devices=DEVICES, readings=READINGS), rate=RATE)
        self.fault = threading.Event()
        self.manifest: Manifest | None = None
        self.error: BaseException | None = None

    def _hold(self, sent: int, total: int) -> None:
        if sent == total // 2 and not self.fault.wait(LIVENESS_S):
            raise TimeoutError(f"no fault within {LIVENESS_S} s of the stream's midpoint")

    def run(self) -> None:
        try:
            self.manifest = simulate(self.config, self.spec, produce=True, log=print, advance=self._hold)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self.error = exc


def test_one_broker_of_three_kill9_mid_stream_loses_no_acknowledged_record(replicated: Config,
                                                                            tmp_path: Path) -> None:
    config = replicated
    names = Names.new("repl")
    topic, suffix = names.topic, versioned_outputs(config, names.suffix)
    group = f"{config.job.group_prefix}-aggregate{suffix}"
    # Live, the telemetry partitions' idleness off (0) as in test_jobmanager_ha.py: the drain that ends
    # the test fires the open windows through the end-of-time watermark, which an idle source would drop
    result = jobrunner.run_local(config, "aggregate", JobOptions(
        output_suffix=suffix, lake=False, extra={"telemetry_topic": topic, "source_idle_timeout_s": "0"}),
        wait=False)
    client = result.get_job_client()
    assert client is not None
    rest_url = minicluster_rest_url(client)
    job_id = str(client.get_job_id())
    try:
        _wait_running(client, rest_url, job_id)  # the stream starts once the job reads: the kill lands mid-stream
        producer = _Producer(config, topic)
        producer.start()

        def checkpointed() -> bool:  # mid-stream: the job has read and checkpointed a part
            assert producer.error is None, producer.error
            return bool(_committed(config, group, topic))

        waiting.wait_until(checkpointed, timeout_s=LIVENESS_S, what="a checkpoint", on_timeout=lambda _: AssertionError(
            "the job committed no checkpoint of what it read"))
        assert producer.is_alive(), "the stream had ended before the fault"  # it holds at its midpoint

        # the victim: a broker leading partitions of the stream (the one leading most, internal topics included)
        metadata = kafka_clients.admin(config).list_topics(topic, timeout=10).topics[topic]
        stream_leaders = {p.leader for p in metadata.partitions.values()}
        leads = _leaderships(config)
        victim = max(stream_leaders, key=lambda b: leads[b])
        service = KafkaService(config)
        before = end_offsets(config, topic)
        killed = service.node(victim).process.kill9()  # the PID the stack recorded, and its process group
        assert killed is not None
        killed_at = time.monotonic()
        producer.fault.set()
        print(f"broker {victim} (pid {killed}) killed; it led {leads[victim]} partitions, "
              f"{sum(p.leader == victim for p in metadata.partitions.values())} of {topic}", flush=True)

        # no command from here on: the producer goes on, the job reads on
        producer.join(LIVENESS_S)
        assert not producer.is_alive(), "the producer did not finish"
        assert producer.error is None, f"a record was not acknowledged: {producer.error}"
        manifest = producer.manifest
        assert manifest is not None
        ends = end_offsets(config, topic)
        written_after = sum(ends.values()) - sum(before.values())
        assert written_after > 0, "no record was written after the kill"
        waiting.wait_until(lambda: _committed(config, group, topic) == ends, timeout_s=LIVENESS_S, interval_s=1,
                           what="the ends", on_timeout=lambda _: AssertionError(
                               f"the job did not read to {ends}: {_committed(config, group, topic)}"))
        health = fetch_health(rest_url, job_id) if rest_url else None
        state = str(client.get_job_status().result()).rsplit(".", 1)[-1]
        assert state == "RUNNING", f"the job is {state}: {health}"
        print(f"{written_after} records written after the kill; the job read the whole stream "
              f"{time.monotonic() - killed_at:.0f} s after it; "
              f"restarts of the job: {health.restarts if health else 'unknown'}", flush=True)
        _drain(client, tmp_path)
    except BaseException:
        with contextlib.suppress(Exception):  # already ended
            client.cancel().result()
        raise

    # every acknowledged record is in the topic once, at the offset it was acknowledged at, with its bytes (one
    # acknowledged without an offset, after a retry, the simulator found in the log: kappa/simulate/offsets.py)
    acknowledged = {(r.partition, r.offset): r.value for r in manifest.records}
    assert None not in {p for p, _ in acknowledged} and len(acknowledged) == len(manifest.records), (
        f"records sharing a position: {Counter((r.partition, r.offset) for r in manifest.records).most_common(3)}")
    in_topic = _in_topic(config, topic)
    copies = producer_copies(manifest, in_topic)
    expected_log = {**acknowledged, **{(c.partition, c.offset): c.value for c in copies}}
    # compared without pytest's diff of two ~300-entry dicts in different orders (it buried the message)
    same = in_topic == expected_log
    assert same, (f"{_log_difference(expected_log, in_topic, end_offsets(config, topic))}; "
                  f"the producer's retries: {_producer_events(config)}")
    if copies:
        where = [(c.partition, c.offset) for c in copies]
        print(f"{len(copies)} records written twice by the producer's retries, at {where}: "
              f"{_producer_events(config)}", flush=True)
    # ... and in the job's outputs exactly once: the log as it is, the producer's extra copies included
    books = assert_matches_python(config, suffix, with_copies(manifest, copies), topic)
    print(f"after the broker kill: {len(in_topic)} records in the topic; {books}", flush=True)
    assert_topic_versions_exactly_once(config, suffix)

    # `stack up` restores the redundancy: the killed node returns and catches up into every ISR
    service.wait_ready()
    admin = kafka_clients.admin(config)
    waiting.wait_until(lambda: all(len(p.isrs) >= config.kafka.replication_factor for p in
                                   admin.list_topics(topic, timeout=10).topics[topic].partitions.values()),
                       timeout_s=LIVENESS_S, interval_s=1, what="the in-sync replicas",
                       on_timeout=lambda _: AssertionError("the restarted broker did not rejoin the in-sync replicas"))
