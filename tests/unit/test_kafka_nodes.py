"""The Kafka nodes of the stack and their rendered server.properties (kappa/stack/kafka_nodes.py), for one
broker (the default) and a replicated cluster (kafka.brokers = 3), without starting a broker; and the wait
of a grant on a replicated cluster until every broker has applied the ACLs (a scripted admin client)."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from kappa.config import BROKER_PORT_STEP, Config, load_config
from kappa.errors import ConfigError
from kappa.stack import kafka_nodes
from kappa.stack.kafka import KafkaService

pytestmark = pytest.mark.unit

PASSWORD = "admin-secret_1"
CONTROLLER_PASSWORD = 'c"t\\l'  # a quote and a backslash: JAAS- and Properties-escaped


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, brokers: int) -> Config:
    monkeypatch.setenv("KAPPA_KAFKA_PASSWORD", PASSWORD)
    monkeypatch.setenv("KAPPA_KAFKA_CONTROLLER_PASSWORD", CONTROLLER_PASSWORD)
    return load_config("test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path), "KAPPA_KAFKA__BROKERS": str(brokers)})


def _properties(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def _render(config: Config, node_id: int) -> dict[str, str]:
    node = kafka_nodes.node(config, node_id)
    text = kafka_nodes.render(config, node, node.folder / "tls" / "keystore.pem")
    assert "${" not in text, "a placeholder left unfilled"
    return _properties(text)


def test_one_broker_keeps_its_layout_and_replication_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path, monkeypatch, 1)
    kafka = config.kafka
    [only] = kafka_nodes.nodes(config)
    assert (only.node_id, only.folder, only.process.name) == (1, tmp_path / "kafka", "kafka")
    assert only.process.log_file == tmp_path / "logs" / "kafka.log"
    assert kafka.bootstrap == f"{kafka.host}:{kafka.port}"
    props = _render(config, 1)
    assert props["node.id"] == "1" and props["controller.quorum.voters"] == f"1@{kafka.host}:{kafka.controller_port}"
    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor", "min.insync.replicas", "transaction.state.log.min.isr"):
        assert props[key] == "1", key
    assert KafkaService(config).ports == [kafka.port, kafka.controller_port]


def test_three_brokers_form_one_quorum_on_their_own_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path, monkeypatch, 3)
    kafka = config.kafka
    nodes = kafka_nodes.nodes(config)
    assert [(n.node_id, n.process.name, n.folder.name) for n in nodes] == [
        (1, "kafka-1", "node-1"), (2, "kafka-2", "node-2"), (3, "kafka-3", "node-3")]
    assert len({n.folder for n in nodes}) == 3 and all(n.folder.parent == tmp_path / "kafka" for n in nodes)
    ports = [(kafka.port + BROKER_PORT_STEP * i, kafka.controller_port + BROKER_PORT_STEP * i) for i in range(3)]
    assert [(n.port, n.controller_port) for n in nodes] == ports
    assert KafkaService(config).ports == [p for pair in ports for p in pair]
    # every client lists every broker, so it finds the cluster while any one of them is down
    assert kafka.bootstrap == ",".join(f"{kafka.host}:{port}" for port, _ in ports)
    voters = ",".join(f"{i + 1}@{kafka.host}:{c}" for i, (_, c) in enumerate(ports))
    for node in nodes:
        props = _render(config, node.node_id)
        assert props["node.id"] == str(node.node_id)
        assert props["process.roles"] == "broker,controller" and props["controller.quorum.voters"] == voters
        assert props["listeners"] == f"SASL_SSL://{kafka.host}:{node.port},CONTROLLER://{kafka.host}:{node.controller_port}"
        assert props["advertised.listeners"] == f"SASL_SSL://{kafka.host}:{node.port}"
        assert props["log.dirs"] == str(node.folder / "log")
        assert props["ssl.keystore.location"] == str(node.folder / "tls" / "keystore.pem")


def test_three_brokers_replicate_every_topic_three_times_two_in_sync(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path, monkeypatch, 3)
    assert (config.kafka.replication_factor, config.kafka.min_insync_replicas) == (3, 2)
    props = _render(config, 2)
    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor"):
        assert props[key] == "3", key
    assert props["min.insync.replicas"] == "2" and props["transaction.state.log.min.isr"] == "2"
    assert props["unclean.leader.election.enable"] == "false"
    assert props["auto.create.topics.enable"] == "false"


def test_brokers_keep_the_security_of_one_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replication and inter-broker requests go over the SASL_SSL listener as the admin principal, the
    controller quorum authenticates with SASL PLAIN, and no ACL means denied."""
    config = _config(tmp_path, monkeypatch, 3)
    props = _render(config, 3)
    assert props["inter.broker.listener.name"] == "SASL_SSL"
    assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert props["listener.security.protocol.map"] == "CONTROLLER:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"
    inter_broker = props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert f'username="{config.kafka.user}"' in inter_broker and f'password="{PASSWORD}"' in inter_broker
    controller = props["listener.name.controller.plain.sasl.jaas.config"]
    # JAAS-escaped (\" and \\), then each backslash doubled for java.util.Properties
    assert 'password="c\\\\"t\\\\\\\\l"' in controller and 'user_kafka-controller="c\\\\"t\\\\\\\\l"' in controller
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == f"User:{config.kafka.user};User:kafka-controller"
    assert props["ssl.endpoint.identification.algorithm"] == "https"


def test_more_brokers_keep_three_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path, monkeypatch, 5)
    assert (config.kafka.replication_factor, config.kafka.min_insync_replicas) == (3, 2)
    assert len(config.kafka.bootstrap.split(",")) == 5
    two = _config(tmp_path, monkeypatch, 2)
    assert (two.kafka.replication_factor, two.kafka.min_insync_replicas) == (2, 1)


def test_zero_brokers_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kafka.brokers"):
        load_config("test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path), "KAPPA_KAFKA__BROKERS": "0"})


def test_down_stops_the_nodes_of_any_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`stack down` with kafka.brokers = 1 still finds a 3-node cluster's PID files (and no other file)."""
    config = _config(tmp_path, monkeypatch, 1)
    run = tmp_path / "run"
    run.mkdir()
    for name in ("kafka-1", "kafka-3", "kafka-x", "kafka-admin", "flink-taskmanager-1"):
        (run / f"{name}.pid").write_text("1\n")
    assert [p.name for p in kafka_nodes.stray_processes(config)] == ["kafka", "kafka-1", "kafka-3"]


class _Cluster:
    """An admin client's view of 3 brokers for kafka_setup's ACL wait: each metadata read names the next
    "controller" of `order` (librdkafka sends DescribeAcls to it); a broker answers with the bindings once
    it has been asked `lag[broker]` times (it applies the metadata log later than the controller commits)."""

    def __init__(self, order: list[int], lag: dict[int, int]) -> None:
        self.order, self.lag, self.asked = iter(order), lag, Counter[int]()
        self.controller = -1

    def list_topics(self, timeout: float) -> SimpleNamespace:
        self.controller = next(self.order)
        return SimpleNamespace(brokers={1: None, 2: None, 3: None}, controller_id=self.controller)

    def describe_acls(self, acl_filter: AclBindingFilter) -> Future[list[AclBindingFilter]]:
        self.asked[self.controller] += 1
        future: Future[list[AclBindingFilter]] = Future()
        future.set_result([acl_filter] if self.asked[self.controller] > self.lag.get(self.controller, 0) else [])
        return future


def _binding() -> AclBinding:
    return AclBinding(ResourceType.TOPIC, "telemetry", ResourcePatternType.LITERAL, "User:kappa-producer", "*",
                      AclOperation.WRITE, AclPermissionType.ALLOW)


def _await(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster: _Cluster, timeout_s: float) -> None:
    from kappa.stack import kafka_setup

    monkeypatch.setattr(kafka_setup.kafka_clients, "admin", lambda *args, **kwargs: cluster)
    kafka_setup._await_on_every_broker(_config(tmp_path, monkeypatch, 3), [_binding()], timeout_s=timeout_s)


def test_a_grant_waits_until_every_broker_has_answered_with_the_acls(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # broker 3 is named only on the 5th read and has not applied the ACLs when first asked
    cluster = _Cluster([1, 1, 2, 2, 3, 1, 3, 2], lag={3: 1})
    _await(tmp_path, monkeypatch, cluster, timeout_s=30)
    assert cluster.asked == Counter({1: 3, 2: 2, 3: 2})  # done at the 7th read: 3 answered with the ACLs


def test_a_broker_that_never_applies_the_acls_fails_the_grant_by_name(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = _Cluster([1, 2, 3] * 1000, lag={3: 10**6})
    with pytest.raises(KafkaException, match=r"brokers \[3\] did not apply the new ACLs"):
        _await(tmp_path, monkeypatch, cluster, timeout_s=0.5)
