"""`kappa doctor`: one line per check, with a fix hint, for everything the pipeline relies on.

It checks what it is pointed at, so a user whose profile names their own Kafka, PostgreSQL, S3,
registry or Flink learns at once which part would not work, including the Kafka semantics that
exactly-once and replays depend on (transactions, read_committed, high watermark, offsets_for_times).
"""

from __future__ import annotations

import contextlib
import functools
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

from kappa import jars, kafka_clients, waiting
from kappa.config import Config
from kappa.stack import manager, mosquitto
from kappa.stack.base import Service


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""


def _run(name: str, hint: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(name, True, probe())
    except Exception as exc:  # noqa: BLE001 - every failure becomes a failed check line
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Check(name, False, message[:200], hint)


def _java() -> str:
    java = shutil.which("java")
    if not java:
        raise RuntimeError("java not found on PATH")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', out)
    major = int(match.group(1)) if match else 0
    if major < 11:
        raise RuntimeError(f"Java {major} found; Flink 2.0 needs 11 or 17")
    return f"Java {major}"


class KafkaSemantics:
    """Probes on a scratch topic: what the exactly-once sink and replays need from the broker."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.topic = f"_kappa_doctor_{uuid.uuid4().hex[:8]}"
        self.base_ts = 1_700_000_000_000

    def __enter__(self) -> KafkaSemantics:
        admin = kafka_clients.admin(self.config)
        admin.create_topics([NewTopic(self.topic, 1, self.config.kafka.replication_factor)])[self.topic].result(15)
        return self

    def __exit__(self, *exc: object) -> None:
        admin = kafka_clients.admin(self.config)
        with contextlib.suppress(KafkaException):
            admin.delete_topics([self.topic])[self.topic].result(15)

    def _consumer(self, isolation: str) -> Consumer:
        return kafka_clients.consumer(self.config, f"doctor-{uuid.uuid4().hex[:6]}", **{
                         "isolation.level": isolation, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})

    def _read_all(self, isolation: str) -> list[bytes]:
        consumer = self._consumer(isolation)
        consumer.assign([TopicPartition(self.topic, 0, 0)])
        values: list[bytes] = []
        deadline = waiting.Deadline(8)
        while not deadline.passed:
            message = consumer.poll(0.5)
            if message is None:
                if values:
                    break
                continue
            if not message.error():
                values.append(message.value() or b"")
        consumer.close()
        return values

    def transactions(self) -> str:
        producer = kafka_clients.producer(self.config, **{"transactional.id": self.topic})
        producer.init_transactions(15)
        producer.begin_transaction()
        for i in range(3):
            producer.produce(self.topic, value=f"committed-{i}".encode(), timestamp=self.base_ts + i * 1000)
        producer.commit_transaction(15)
        producer.begin_transaction()
        producer.produce(self.topic, value=b"aborted", timestamp=self.base_ts + 10_000)
        producer.flush(15)  # the aborted record must reach the log, or there is nothing to hide
        producer.abort_transaction(15)
        return "commit and abort accepted"

    def read_committed(self) -> str:
        committed = self._read_all("read_committed")
        if b"aborted" in committed or len(committed) != 3:
            raise RuntimeError(f"read_committed saw {len(committed)} records (want the 3 committed only)")
        uncommitted = self._read_all("read_uncommitted")
        if b"aborted" not in uncommitted:
            raise RuntimeError("the aborted record never reached the log; probe inconclusive")
        return f"hides aborted records ({len(committed)} of {len(uncommitted)} visible)"

    def high_watermark(self) -> str:
        consumer = self._consumer("read_committed")
        low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=10)
        consumer.close()
        # 3 committed + commit marker + 1 aborted + abort marker = 6 offsets
        if high - low != 6:
            raise RuntimeError(f"high watermark {high} (low {low}); expected 6 offsets after the probe")
        return f"high watermark {high} as expected"

    def offsets_for_times(self) -> str:
        consumer = self._consumer("read_committed")
        found = consumer.offsets_for_times([TopicPartition(self.topic, 0, self.base_ts + 1500)], timeout=10)
        consumer.close()
        if found[0].offset != 2:
            raise RuntimeError(f"offsets_for_times returned {found[0].offset}, expected 2")
        return "timestamp lookup returns the right offset"


def _probe_service(svc: Service) -> str:
    if not svc.ready():
        raise RuntimeError("not ready")
    return f"answers on {svc.host}:{svc.ports[0]}"


def _mqtt_refuses_anonymous(config: Config) -> str:
    reason = mosquitto.try_connect(config, None, None)
    if reason == "Success":
        raise RuntimeError("an anonymous CONNECT was accepted")
    return f"TLS with the stack's CA ({mosquitto.ca_file(config)}); anonymous CONNECT: {reason}"


def run_checks(config: Config) -> list[Check]:
    checks = [_run("java", "install openjdk-17-jre-headless (make setup)", _java)]
    for artifact, version, path in jars.report(config):
        checks.append(Check(f"jar {artifact}", version != "MISSING", f"{version} {path}",
                            "run `make setup` (resolves jars from Maven Central)"))
    for svc in manager.services(config):
        hint = f"`kappa stack up` (log: {svc.log_file})" if svc.enabled else "check the external server"

        checks.append(_run(f"service {svc.name}", hint, functools.partial(_probe_service, svc)))
    if next(c for c in checks if c.name == "service mqtt").ok:
        checks.append(_run("mqtt anonymous refused", "the broker must refuse clients without credentials",
                           functools.partial(_mqtt_refuses_anonymous, config)))
    kafka_ok = next(c for c in checks if c.name == "service kafka").ok
    if kafka_ok:
        hint = "the broker must support transactions (Kafka >= 0.11 semantics); Flink's exactly-once needs it"
        try:
            with KafkaSemantics(config) as semantics:
                for name, probe in (("kafka transactions", semantics.transactions),
                                    ("kafka read_committed", semantics.read_committed),
                                    ("kafka high watermark", semantics.high_watermark),
                                    ("kafka offsets_for_times", semantics.offsets_for_times)):
                    checks.append(_run(name, hint, probe))
        except Exception as exc:  # noqa: BLE001
            checks.append(Check("kafka scratch topic", False, str(exc)[:200], "can the client create topics?"))
    return checks


def format_check(check: Check) -> str:
    line = f"[{'ok' if check.ok else 'FAIL':>4}] {check.name:<32} {check.detail}"
    return line if check.ok else f"{line}\n       fix: {check.hint}"
