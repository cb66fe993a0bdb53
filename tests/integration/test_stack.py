"""The real local stack: every service answers, `down` leaves nothing running, data survives restarts."""

from __future__ import annotations

import uuid

import pytest
import requests
from confluent_kafka import TopicPartition

from kappa import kafka_clients, s3_security
from kappa.config import Config
from kappa.doctor import run_checks
from kappa.registry import ADMIN, credentials, session
from kappa.stack import kafka_setup, manager
from kappa.stack.objectstore import s3_filesystem
from kappa.stack.postgres import connect
from kappa.stack.process import is_running, port_in_use

pytestmark = pytest.mark.integration


def _produce_one(config: Config, topic: str, value: bytes) -> None:
    kafka_setup.ensure_topics(config, [topic])  # auto-create is off
    producer = kafka_clients.producer(config)
    producer.produce(topic, value=value)
    assert producer.flush(15) == 0


def _read_topic(config: Config, topic: str) -> list[bytes]:
    consumer = kafka_clients.consumer(config, uuid.uuid4().hex, **{"enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    values = []
    for _ in range(40):
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            values.append(message.value())
        elif values:
            break
    consumer.close()
    return values


def test_every_service_answers(stack: Config) -> None:
    assert {name: state for name, state, _ in manager.status(stack)} == {
        "postgres": "up", "mqtt": "up", "kafka": "up", "objectstore": "up", "registry": "up", "bridge": "up",
        "pushgateway": "up", "flink": "up", "postgres-exporter": "up", "kappa-exporter": "up", "prometheus": "up"}
    topic = f"answer-{uuid.uuid4().hex[:6]}"
    _produce_one(stack, topic, b"hello")
    assert _read_topic(stack, topic) == [b"hello"]
    with connect(stack) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("kappa", "kappa")
    filesystem = s3_filesystem(stack, s3_security.WRITER)
    with filesystem.open_output_stream(f"{stack.s3.bucket}/probe.txt") as out:
        out.write(b"object")
    with filesystem.open_input_stream(f"{stack.s3.bucket}/probe.txt") as src:
        assert src.read() == b"object"
    # the registry serves HTTPS only, and its auth is always on: anonymous and wrong-password requests are refused
    user, password = credentials(stack, ADMIN)
    assert stack.registry.url.startswith("https://")
    http = session(stack)  # verifies the certificate against the stack's CA
    assert http.get(f"{stack.registry.url}/subjects", timeout=5).status_code == 401
    assert http.get(f"{stack.registry.url}/subjects", auth=(user, password + "x"), timeout=5).status_code == 401
    assert http.get(f"{stack.registry.url}/subjects", auth=(user, password), timeout=5).status_code == 200
    overview = requests.get(f"{stack.flink.rest_url}/overview", timeout=5).json()
    assert overview["taskmanagers"] == 1 and overview["slots-total"] == stack.flink.slots


def test_s3_refuses_wrong_credentials(stack: Config) -> None:
    from pyarrow import fs as pafs

    wrong = pafs.S3FileSystem(access_key="nobody", secret_key="wrong", scheme="http",
                              endpoint_override=f"{stack.s3.host}:{stack.s3.port}", region=stack.s3.region)
    with pytest.raises(OSError), wrong.open_output_stream(f"{stack.s3.bucket}/intruder.txt") as out:
        out.write(b"x")


def test_doctor_passes_and_fails_a_check_when_its_service_is_down(stack: Config) -> None:
    checks = {c.name: c for c in run_checks(stack)}
    failed = [f"{c.name}: {c.detail}" for c in checks.values() if not c.ok]
    assert not failed
    for name in ("kafka transactions", "kafka read_committed", "kafka high watermark", "kafka offsets_for_times"):
        assert checks[name].ok
    registry = manager.service(stack, "registry")
    assert registry.stop()
    try:
        check = next(c for c in run_checks(stack) if c.name == "service registry")
        assert not check.ok and "kappa stack up" in check.hint and "registry.log" in check.hint
    finally:
        manager.up(stack, only=["registry"], say=lambda _: None)


def test_down_stops_everything_and_up_keeps_the_data(stack: Config) -> None:
    topic = f"durable-{uuid.uuid4().hex[:6]}"
    _produce_one(stack, topic, b"kept")
    with connect(stack) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS durable_probe (v TEXT)")
        conn.execute("INSERT INTO durable_probe VALUES ('kept')")
    filesystem = s3_filesystem(stack, s3_security.WRITER)
    with filesystem.open_output_stream(f"{stack.s3.bucket}/durable.txt") as out:
        out.write(b"kept")
    pids = {svc.name: svc.process.pid() for svc in manager.services(stack)}
    assert all(pids.values()), pids

    manager.down(stack, say=lambda _: None)
    for name, pid in pids.items():
        # an exited process whose parent has not reaped it yet (a zombie) is not running
        assert pid is not None and not is_running(pid), f"{name} (pid {pid}) still running"
    for svc in manager.services(stack):
        assert not [p for p in svc.ports if port_in_use(svc.host, p)], f"{svc.name} ports still open"

    manager.up(stack, say=lambda _: None)
    assert _read_topic(stack, topic) == [b"kept"]
    with connect(stack) as conn:
        assert conn.execute("SELECT v FROM durable_probe").fetchall() == [("kept",)]
    with s3_filesystem(stack).open_input_stream(f"{stack.s3.bucket}/durable.txt") as src:
        assert src.read() == b"kept"
    manager.up(stack, say=lambda _: None)  # a second `up` is harmless
    assert all(state == "up" for _, state, _ in manager.status(stack))
