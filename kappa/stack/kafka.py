"""The local stack's real Apache Kafka 4 in KRaft mode, from the jars `deploy/kafka/pom.xml` resolves: one
broker by default, or `kafka.brokers` replicated nodes (kappa/stack/kafka_nodes.py: layout and config)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

from kappa import kafka_security
from kappa.jars import kafka_broker_classpath
from kappa.private_files import write_private
from kappa.stack import kafka_nodes
from kappa.stack.base import Service
from kappa.stack.kafka_nodes import TEMPLATE_DIR, Node
from kappa.stack.mosquitto import tls_files
from kappa.stack.mqtt_tls import ensure_tls, issue_server_cert
from kappa.stack.process import ManagedProcess, ServiceError, wait_until

_SCRAM_SAFE = re.compile(r"[A-Za-z0-9_.~-]+")  # what `kafka-storage format --add-scram` parses unquoted


class KafkaService(Service):
    name = "kafka"
    start_timeout_s = 90.0

    @property
    def host(self) -> str:
        return self.config.kafka.host

    @property
    def ports(self) -> list[int]:
        return [port for n in self.nodes for port in (n.port, n.controller_port)]

    @property
    def enabled(self) -> bool:
        return self.config.kafka.start

    @property
    def nodes(self) -> list[Node]:
        return kafka_nodes.nodes(self.config)

    def node(self, node_id: int) -> Node:
        return kafka_nodes.node(self.config, node_id)

    @property
    def process(self) -> ManagedProcess:
        return self.nodes[0].process

    @property
    def log_file(self) -> Path:
        return self.nodes[0].process.log_file

    def running(self) -> bool:
        return any(n.process.pid() is not None for n in self.nodes)

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise ServiceError("kafka: no `java` on PATH (install openjdk-17-jre-headless)")
        return java

    def _keystore(self, node: Node) -> Path:
        """The node's PEM key store (its own key + certificate signed by the stack's CA), mode 600."""
        hosts = [self.host, "127.0.0.1", "localhost"]
        ca = ensure_tls(tls_files(self.config).folder, [self.config.mqtt.host, "127.0.0.1", "localhost"])
        folder = node.folder / "tls"
        issue_server_cert(ca, folder / "server.crt", folder / "server.key", hosts)
        keystore = folder / "keystore.pem"
        write_private(keystore, (folder / "server.key").read_text() + (folder / "server.crt").read_text())
        return keystore

    def _write_config(self, node: Node) -> None:
        node.folder.mkdir(parents=True, exist_ok=True)
        write_private(node.properties, kafka_nodes.render(self.config, node, self._keystore(node)))

    @property
    def cluster_id_file(self) -> Path:
        return self.data_dir / f"cluster-id-{self.config.kafka.brokers}-nodes"

    def _cluster_id(self) -> str:
        """One id for every node of the cluster: made once, kept beside the nodes' folders."""
        if self.config.kafka.brokers == 1:
            return uuid.uuid4().hex[:22]
        path = self.cluster_id_file
        if not path.exists():
            write_private(path, uuid.uuid4().hex[:22] + "\n")
        return path.read_text().strip()

    def _format_storage(self, node: Node, classpath: str) -> None:
        """Format the node's KRaft metadata log once; an existing log keeps its cluster id and data.

        The admin's SCRAM credential is bootstrapped here (the brokers log in with it themselves); the
        arguments go through a mode-600 java @argfile, so the password is never in a process's argv."""
        kafka = self.config.kafka
        marker = node.folder / "scram-bootstrapped"  # absent: a log formatted before Kafka security
        if (node.folder / "log" / "meta.properties").exists():
            if kafka.secure and not marker.exists():
                raise ServiceError("kafka: this data folder was formatted without SCRAM credentials (before "
                                   "SASL_SSL was on); run `kappa stack down --purge` once to start afresh")
            return
        args = ["-cp", classpath, "kafka.tools.StorageTool", "format", "-t", self._cluster_id(),
                "-c", str(node.properties)]
        password = ""
        if kafka.secure:
            password = self.config.secret(kafka.password_env)
            if not _SCRAM_SAFE.fullmatch(password):
                raise ServiceError(f"kafka: {kafka.password_env} may hold only letters, digits and _.~- "
                                   "(kafka-storage format parses it unquoted)")
            admin_user = kafka_security.user(self.config, kafka_security.ADMIN)
            args += ["--add-scram", f"{kafka.sasl_mechanism}=[name={admin_user},password={password}]"]
        argfile = node.folder / "format.args"
        write_private(argfile, "\n".join(f'"{arg}"' for arg in args) + "\n")
        try:
            result = subprocess.run([self._java(), f"@{argfile}"], capture_output=True, text=True)
        finally:
            argfile.unlink(missing_ok=True)
        if result.returncode != 0:
            output = result.stdout + result.stderr
            raise ServiceError("kafka: storage format failed:\n" + (output.replace(password, "******") if password
                                                                    else output))
        if kafka.secure:
            marker.touch()

    def start_node(self, node: Node) -> None:
        """(Re)start one node unless it runs, e.g. after a fault-injection test killed it."""
        if node.process.pid() is not None:
            return
        classpath = kafka_broker_classpath(self.config)
        self._write_config(node)
        self._format_storage(node, classpath)
        node.process.start(
            [
                self._java(),
                "-Xms256m",
                "-Xmx768m",
                "-XX:+UseG1GC",
                f"-Dlog4j2.configurationFile={TEMPLATE_DIR / 'log4j2.yaml'}",
                f"-Dkafka.logs.dir={node.folder / 'broker-logs'}",
                "-cp",
                classpath,
                "kafka.Kafka",
                str(node.properties),
            ],
            env=dict(os.environ),
        )

    def _launch(self) -> None:
        # every node before waiting for any: a controller quorum elects a leader only once a majority runs
        for node in self.nodes:
            self.start_node(node)

    def wait_ready(self) -> None:
        """`stack up` on a running cluster first brings back a node that died, then waits for all of them;
        a node that exits while they start fails the start with its log."""
        if self.running():
            self._launch()  # a running node is left alone
        wait_until(self.ready, service=self.name, port=self.nodes[0].port, log_file=self.log_file,
                   timeout_s=self.start_timeout_s, processes=[n.process for n in self.nodes])

    def processes(self) -> list[ManagedProcess]:
        return kafka_nodes.stray_processes(self.config)

    def after_ready(self) -> None:
        from kappa.stack import kafka_setup  # confluent_kafka, imported when the stack starts

        kafka_setup.apply(self.config)
        if self.config.kafka.secure:  # for Kafka's own CLI tools: `--command-config <this file>`
            write_private(self.data_dir / "admin-client.properties", kafka_security.java_client_properties(self.config))

    def ready(self) -> bool:
        """Every broker registered with the controller quorum (a replicated topic needs all of them)."""
        from kappa import kafka_clients  # as above: not for `kappa stack status`

        # log_level 0: the probe's "connection refused" while the broker starts is expected, not news
        admin = kafka_clients.admin(self.config, None, **{"socket.timeout.ms": 3000, "log_level": 0})
        metadata = admin.list_topics(timeout=3)
        return len(metadata.brokers) >= self.config.kafka.brokers
