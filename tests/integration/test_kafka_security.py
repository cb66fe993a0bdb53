"""Kafka on the real stack refuses who it does not know and denies what a principal was not granted
(issue #14: SASL_SSL with SCRAM, StandardAuthorizer with no ACL = denied, auto-create off)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from kappa import kafka_clients, kafka_security
from kappa.config import Config

pytestmark = pytest.mark.integration


def _errors_of(conf: dict[str, Any]) -> tuple[list[KafkaError], Exception | None]:
    """What a bare admin client with `conf` gets when it asks for the cluster's metadata."""
    errors: list[KafkaError] = []
    admin = AdminClient({**conf, "error_cb": errors.append, "log_level": 0})
    try:
        admin.list_topics(timeout=8)
    except KafkaException as exc:
        admin.poll(1)  # serves the error callbacks (the authentication failure's reason)
        return errors, exc
    return errors, None


def test_a_client_without_credentials_is_refused(stack: Config) -> None:
    plaintext = {"bootstrap.servers": stack.kafka.bootstrap}
    tls_only = {**plaintext, "security.protocol": "SSL", "ssl.ca.location": str(kafka_security.ca_path(stack))}
    for conf in (plaintext, tls_only):
        _, failure = _errors_of(conf)
        assert failure is not None, f"metadata served to a client without credentials: {conf.get('security.protocol')}"


def test_a_wrong_password_is_refused(stack: Config) -> None:
    conf = kafka_security.client_settings(stack)
    errors, failure = _errors_of({**conf, "sasl.password": conf["sasl.password"] + "x"})
    assert failure is not None
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    # the same client with the right password is served: the refusal is the password's
    assert _errors_of(conf)[1] is None


def test_the_broker_certificate_is_checked_against_the_stacks_ca(stack: Config, tmp_path: Any) -> None:
    other_ca = tmp_path / "other-ca.crt"
    from kappa.stack.mqtt_tls import ensure_tls

    ensure_tls(tmp_path / "other", ["127.0.0.1"])
    other_ca.write_bytes((tmp_path / "other" / "ca.crt").read_bytes())
    errors, failure = _errors_of({**kafka_security.client_settings(stack), "ssl.ca.location": str(other_ca)})
    assert failure is not None and any(e.code() == KafkaError._SSL for e in errors), errors


@pytest.mark.parametrize("role", ["producer", "bridge"])
def test_a_writer_cannot_read_the_aggregates(stack: Config, role: str) -> None:
    topic = stack.kafka.aggregates_topic
    consumer: Consumer = kafka_clients.consumer(stack, f"intruder-{uuid.uuid4().hex[:6]}", role=role,
                                                **{"enable.auto.commit": False, "log_level": 0})
    try:
        # the topic itself is hidden: its metadata carries the authorization error, not its partitions
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        assert metadata.error is not None and metadata.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        consumer.assign([TopicPartition(topic, p, 0) for p in range(stack.kafka.partitions)])
        codes = set()
        for _ in range(10):
            message = consumer.poll(0.5)
            if message is not None:
                assert message.error() is not None, "a record of the aggregates was served"
                codes.add(message.error().code())
        # denied, whichever check the broker makes first (the group, then the topic)
        assert codes and codes <= {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED}, codes
    finally:
        consumer.close()


def test_a_producer_cannot_write_outside_telemetry_nor_use_a_jobs_transactional_id(stack: Config) -> None:
    failures: list[KafkaError] = []
    producer: Producer = kafka_clients.producer(stack, role="producer", **{"message.timeout.ms": 10_000,
                                                                          "log_level": 0})
    producer.produce(stack.kafka.alerts_topic, value=b"forged alert",
                     on_delivery=lambda err, _msg: failures.append(err))
    producer.flush(20)
    assert [e.code() for e in failures] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], failures
    # fencing the aggregate job's exactly-once sink needs its transactional id: denied
    fencer: Producer = kafka_clients.producer(stack, role="producer", **{
        "transactional.id": f"{stack.job.group_prefix}-aggregate-agg-0", "log_level": 0})
    with pytest.raises(KafkaException) as denied:
        fencer.init_transactions(20)
    assert denied.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED


def test_a_job_cannot_delete_telemetry(stack: Config) -> None:
    topic = stack.kafka.telemetry_topic
    admin = kafka_clients.admin(stack, role="aggregate")
    with pytest.raises(KafkaException) as denied:
        admin.delete_topics([topic], operation_timeout=10)[topic].result(20)
    assert denied.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert topic in kafka_clients.admin(stack).list_topics(timeout=10).topics


def test_topics_are_not_created_by_a_typo(stack: Config) -> None:
    """auto.create.topics.enable=false: even the admin's produce to an unknown topic fails, and no
    topic appears (a consumer asking for auto-creation does not get one either)."""
    topic = f"typo-{uuid.uuid4().hex[:8]}"
    consumer = kafka_clients.consumer(stack, f"typo-{uuid.uuid4().hex[:6]}", **{"allow.auto.create.topics": True,
                                                                                "log_level": 0})
    consumer.subscribe([topic])
    consumer.poll(2)
    consumer.close()
    failures: list[KafkaError] = []
    producer = kafka_clients.producer(stack, **{"message.timeout.ms": 8000, "log_level": 0,
                                                "topic.metadata.propagation.max.ms": 3000})
    producer.produce(topic, value=b"x", on_delivery=lambda err, _msg: failures.append(err))
    producer.flush(20)
    assert failures and failures[0] is not None, failures
    assert failures[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC,
                                  KafkaError._MSG_TIMED_OUT), failures
    assert topic not in kafka_clients.admin(stack).list_topics(timeout=10).topics
