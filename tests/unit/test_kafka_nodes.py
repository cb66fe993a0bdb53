"""The Kafka nodes of the stack and their rendered server.properties (kappa/stack/kafka_nodes.py), for one
broker (the default) and a replicated cluster (kafka.brokers = 3), without starting a broker."""

from __future__ import annotations

from pathlib import Path

import pytest

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
