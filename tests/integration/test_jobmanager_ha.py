"""JobManager high availability: the leading JobManager is SIGKILLed while readings stream in, and the
standby JobManager takes over by itself (ZooKeeper leader election) and recovers the live aggregation job
from its latest checkpoint (HA storage and checkpoints on S3). Once the stream has ended and the job has
read all of it, the job is stopped with a drain, and its outputs equal the independent Python computation
(tables, late and dead letters), with each window version once to a read_committed consumer, and no
generated secret (the S3 keys included) is in a log, an argv or a REST reply.

The session's cluster runs without HA (flink.ha = "none", the default: README says why); this module
restarts it with flink.ha = "zookeeper" (and the stack's ZooKeeper), and as configured afterwards.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from confluent_kafka import TopicPartition

from kappa import jobrunner, kafka_clients, waiting
from kappa.config import Config, load_config
from kappa.flinkenv import JobOptions
from kappa.simulate import Manifest, simulate
from kappa.stack import flink_ha, manager
from kappa.stack.flink import FlinkService
from tests.conftest import more_tests_follow
from tests.integration.aggregate_support import assert_matches_python, assert_topic_versions_exactly_once, faulty_spec
from tests.integration.kafka_support import end_offsets
from tests.integration.scratch import Names, versioned_outputs
from tests.integration.secrets_support import leaks

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.slow]

# ~520 records paced over ~65 s: the kill lands while they stream in, and the stream goes on during the takeover
DEVICES, READINGS, RATE = 12, 40, 8.0
LIVENESS_S = 300  # bounds on waits, not measurements


@pytest.fixture(scope="module")
def ha_cluster(migrated: Config, request: pytest.FixtureRequest) -> Iterator[Config]:
    """The session's Flink cluster restarted with flink.ha = "zookeeper": ZooKeeper, two JobManagers, HA
    storage and checkpoints on S3. The variable also reaches the `flink run` client (its environment).
    The session's cluster comes back afterwards only if a test follows (this module runs last)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAPPA_FLINK__HA", "zookeeper")
        config = load_config(profile=migrated.profile)
        manager.service(migrated, "flink").kill9()  # replaced next: no graceful stop
        try:
            manager.up(config, only=["zookeeper", "flink"], say=lambda m: print(m, flush=True))
            yield config
        finally:  # killed: nothing of this cluster is used again, and a graceful stop took 28 s
            manager.service(config, "flink").kill9()
            manager.service(config, "zookeeper").kill9()
    if more_tests_follow(request):
        manager.up(migrated, only=["flink"], say=lambda m: print(m, flush=True))


def _flink(config: Config) -> FlinkService:
    flink = manager.service(config, "flink")
    assert isinstance(flink, FlinkService)
    return flink


def _through(config: Config, index: int) -> Config:
    """The configuration whose REST address is JobManager `index`'s (the REST API of whichever is up)."""
    rest_port = flink_ha.jobmanager_ports(config, index)[0]
    return config.model_copy(update={"flink": config.flink.model_copy(update={"rest_port": rest_port})})


def _wait_leader(config: Config) -> int:
    led = waiting.wait_until(lambda: None if (index := flink_ha.leader_index(config)) is None else (index,),
                             timeout_s=LIVENESS_S, interval_s=1, what="a leader",
                             on_timeout=lambda _: AssertionError("no JobManager leads"))
    return led[0]


def _committed(config: Config, group: str, topic: str) -> dict[int, int]:
    """The offsets the job's Kafka source committed (on each completed checkpoint), per partition."""
    consumer = kafka_clients.consumer(config, group, **{"enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        answer = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: tp.offset for tp in answer if tp.offset >= 0}
    finally:
        consumer.close()


class _Producer(threading.Thread):
    """The simulated stream, paced, in the background: the main thread kills the JobManager meanwhile."""

    def __init__(self, config: Config, topic: str) -> None:
        super().__init__(daemon=True)
        self.config, self.spec = config, dataclasses.replace(
            faulty_spec(topic, seed=17, devices=DEVICES, readings=READINGS), rate=RATE)
        self.manifest: Manifest | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.manifest = simulate(self.config, self.spec, produce=True, log=lambda _: None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self.error = exc


def test_leader_jobmanager_kill9_mid_stream_standby_recovers_the_job(ha_cluster: Config) -> None:
    config, flink = ha_cluster, _flink(ha_cluster)
    names = Names.new("ha")
    topic, suffix = names.topic, versioned_outputs(config, names.suffix)
    group = f"{config.job.group_prefix}-aggregate{suffix}"
    leader = _wait_leader(config)
    # Live, with the telemetry partitions' idleness off (0), as in bounded runs: the drain that ends the
    # test fires the open windows through the source's end-of-time watermark, which Flink drops while the
    # source's output is idle (seen: with idleness on, the stream's last windows never fired after it ended)
    job_id = jobrunner.submit(_through(config, leader), "aggregate", JobOptions(
        output_suffix=suffix, lake=False, extra={"telemetry_topic": topic, "source_idle_timeout_s": "0",
                                                  # its own, empty: earlier tests publish versions to the default
                                                  "devices_topic": names.topic_of("device-metadata")}))
    producer = _Producer(config, topic)
    producer.start()

    # mid-stream: the job has read part of the stream and committed a checkpoint of it
    def checkpointed() -> bool:
        assert producer.error is None, producer.error
        return bool(_committed(config, group, topic))

    waiting.wait_until(checkpointed, timeout_s=LIVENESS_S, what="a checkpoint", on_timeout=lambda _: AssertionError(
        "the job committed no checkpoint of what it read"))
    assert producer.is_alive(), "the stream had ended before the fault: slow it down (RATE)"
    killed = flink.jobmanager_process(leader).kill9()  # the PID the stack recorded, and its process group
    assert killed is not None
    killed_at, survivor = time.monotonic(), 1 - leader

    # no command from here on: the standby must win the election and recover the job by itself
    waiting.wait_until(lambda: flink_ha.leader_index(config) == survivor, timeout_s=LIVENESS_S, interval_s=1,
                       what="the standby",
                       on_timeout=lambda _: AssertionError("the standby JobManager never took the lead"))
    print(f"JobManager {leader} (pid {killed}) killed; {survivor} leads after {time.monotonic() - killed_at:.0f} s",
          flush=True)  # figures for the README, not assertions
    through = _through(config, survivor)

    def recovered() -> dict | None:
        response = requests.get(f"{through.flink.rest_url}/jobs/{job_id}/checkpoints", timeout=10)
        checkpoints = response.json() if response.ok else {}
        running = jobrunner.job_state(through, job_id) == "RUNNING"
        return checkpoints if running and (checkpoints.get("latest") or {}).get("restored") else None

    checkpoints = waiting.wait_until(  # JobError, RequestException: the new leader does not know the job yet
        recovered, timeout_s=LIVENESS_S, interval_s=1, what="the job", retry_on=(jobrunner.JobError,
                                                                                 requests.RequestException),
        on_timeout=lambda _: AssertionError("the job did not recover on the new leader"))
    restored = checkpoints["latest"]["restored"]
    assert not restored["is_savepoint"], restored  # from its latest checkpoint, on S3
    assert str(restored["external_path"]).startswith(flink_ha.s3_uri(config, "checkpoints")), restored
    print(f"job RUNNING again {time.monotonic() - killed_at:.0f} s after the kill, on JobManager {survivor}, "
          f"from {restored['external_path']}", flush=True)

    producer.join(LIVENESS_S)
    assert not producer.is_alive() and producer.error is None, producer.error
    manifest = producer.manifest
    assert manifest is not None
    # the whole stream read and checkpointed, then a drain fires every open window
    ends = end_offsets(config, topic)
    waiting.wait_until(lambda: _committed(config, group, topic) == ends, timeout_s=LIVENESS_S, interval_s=1,
                       what="the ends", on_timeout=lambda _: AssertionError(
                           f"the job did not read to {ends}: {_committed(config, group, topic)}"))
    jobrunner.stop_with_savepoint(through, job_id, drain=True)

    books = assert_matches_python(config, suffix, manifest, topic)
    print(f"after the JobManager failover: {books}", flush=True)
    assert_topic_versions_exactly_once(config, suffix)
    # the S3 keys reach the daemons through their environment only: in no log, argv or REST reply
    assert not leaks(through, job_id)

    # `stack up` restores the redundancy: the killed JobManager returns, as the standby
    manager.up(config, only=["zookeeper", "flink"], say=lambda m: print(m, flush=True))
    assert flink.jobmanager_process(leader).pid() is not None
    assert flink_ha.leader_index(config) == survivor
