"""The Kafka nodes of the local stack and the broker configuration each one runs with.

`kafka.brokers = 1` (the default) is one process, broker and KRaft controller, in `<data>/kafka`, with
the names it always had (PID file `kafka`, log `kafka.log`). With `kafka.brokers = N > 1` the stack runs
N such combined nodes, node i (1-based node id i) in `<data>/kafka/node-<i>`, PID file and log `kafka-<i>`,
on the ports `kafka.broker_ports(i - 1)`; the N controllers form a static KRaft quorum of N voters, and
every topic, the internal ones included, is created with `kafka.replication_factor` copies and
`kafka.min_insync_replicas`. Rendering is a pure function of the config (unit-tested without a broker).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from kappa import kafka_security
from kappa.config import PROJECT_ROOT, Config
from kappa.stack.process import ManagedProcess

TEMPLATE_DIR = PROJECT_ROOT / "deploy" / "kafka"
CONTROLLER_USER = "kafka-controller"  # the brokers' own login on the loopback controller listener
PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
NODE_PID = re.compile(r"kafka-(\d+)")  # PID files of a replicated cluster's nodes


@dataclass(frozen=True)
class Node:
    """One Kafka process: a broker and a KRaft controller voter."""

    node_id: int
    port: int
    controller_port: int
    folder: Path  # server.properties, the log, the TLS key store
    process: ManagedProcess

    @property
    def properties(self) -> Path:
        return self.folder / "server.properties"


def node(config: Config, node_id: int) -> Node:
    """Node `node_id` (1-based); the single broker of `kafka.brokers = 1` keeps its historical layout."""
    run, logs = config.data_dir / "run", config.data_dir / "logs"
    port, controller_port = config.kafka.broker_ports(node_id - 1)
    if config.kafka.brokers == 1:
        return Node(node_id, port, controller_port, config.data_dir / "kafka",
                    ManagedProcess("kafka", run, logs / "kafka.log"))
    name = f"kafka-{node_id}"
    return Node(node_id, port, controller_port, config.data_dir / "kafka" / f"node-{node_id}",
                ManagedProcess(name, run, logs / f"{name}.log"))


def nodes(config: Config) -> list[Node]:
    return [node(config, node_id) for node_id in range(1, config.kafka.brokers + 1)]


def stray_processes(config: Config) -> list[ManagedProcess]:
    """Every Kafka process with a PID file, whatever `kafka.brokers` says now (a cluster started with
    another setting), so `stack down` stops them all."""
    run, logs = config.data_dir / "run", config.data_dir / "logs"
    found = [ManagedProcess("kafka", run, logs / "kafka.log")]
    if run.exists():
        for pid_file in sorted(run.glob("kafka-*.pid")):
            if NODE_PID.fullmatch(pid_file.stem):
                found.append(ManagedProcess(pid_file.stem, run, logs / f"{pid_file.stem}.log"))
    return found


def voters(config: Config) -> str:
    """`controller.quorum.voters`: every node's controller listener (a static quorum)."""
    return ",".join(f"{n.node_id}@{config.kafka.host}:{n.controller_port}" for n in nodes(config))


def _prop(value: str) -> str:
    """A java.util.Properties value: backslashes escaped (the JAAS quoting is done by jaas_line)."""
    return value.replace("\\", "\\\\")


def render(config: Config, this: Node, keystore: Path) -> str:
    """server.properties of node `this`. Every node authenticates to the others: to their controller
    listeners with SASL PLAIN as CONTROLLER_USER, to their broker listener (replication, inter-broker
    requests) with SCRAM over TLS as the admin principal, as any client does."""
    kafka = config.kafka
    admin_user = kafka_security.user(config, kafka_security.ADMIN)
    quote = kafka_security.jaas_quote
    secret = quote(config.secret(kafka.controller_password_env))
    controller_jaas = (f"{PLAIN_MODULE} required username={quote(CONTROLLER_USER)} "
                       f"password={secret} user_{CONTROLLER_USER}={secret};")
    listener = "SASL_SSL" if kafka.secure else "PLAINTEXT"
    client_settings = ""
    super_users = [f"User:{admin_user}", f"User:{CONTROLLER_USER}"]
    if kafka.secure:
        jaas = kafka_security.jaas_line(SCRAM_MODULE, admin_user, config.secret(kafka.password_env))
        client_settings = f"listener.name.sasl_ssl.{kafka.sasl_mechanism.lower()}.sasl.jaas.config={_prop(jaas)}"
    else:  # an unsecured benchmark baseline: clients are ANONYMOUS
        super_users.append("User:ANONYMOUS")
    return Template((TEMPLATE_DIR / "server.properties").read_text()).substitute(
        node_id=this.node_id,
        voters=voters(config),
        host=kafka.host,
        port=this.port,
        controller_port=this.controller_port,
        partitions=kafka.partitions,
        replication_factor=kafka.replication_factor,
        min_insync_replicas=kafka.min_insync_replicas,
        log_dirs=this.folder / "log",
        listener=listener,
        mechanism=kafka.sasl_mechanism,
        controller_jaas=_prop(controller_jaas),
        client_listener_settings=client_settings,
        keystore=keystore,
        ca_file=kafka_security.ca_path(config),
        super_users=";".join(super_users),
    )
