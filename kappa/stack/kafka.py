"""A real single-node Apache Kafka 4 broker in KRaft mode, from the jars `deploy/kafka/pom.xml` resolves."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from string import Template

from kappa import kafka_security
from kappa.config import PROJECT_ROOT
from kappa.jars import kafka_broker_classpath
from kappa.private_files import write_private
from kappa.stack.base import Service
from kappa.stack.mosquitto import tls_files
from kappa.stack.mqtt_tls import ensure_tls, issue_server_cert
from kappa.stack.process import ServiceError

TEMPLATE_DIR = PROJECT_ROOT / "deploy" / "kafka"
CONTROLLER_USER = "kafka-controller"  # the broker's own login on the loopback controller listener
PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
_SCRAM_SAFE = re.compile(r"[A-Za-z0-9_.~-]+")  # what `kafka-storage format --add-scram` parses unquoted


def _prop(value: str) -> str:
    """A java.util.Properties value: backslashes escaped (the JAAS quoting is done by jaas_line)."""
    return value.replace("\\", "\\\\")


class KafkaService(Service):
    name = "kafka"
    start_timeout_s = 90.0

    @property
    def host(self) -> str:
        return self.config.kafka.host

    @property
    def ports(self) -> list[int]:
        return [self.config.kafka.port, self.config.kafka.controller_port]

    @property
    def enabled(self) -> bool:
        return self.config.kafka.start

    @property
    def _properties(self) -> Path:
        return self.data_dir / "server.properties"

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise ServiceError("kafka: no `java` on PATH (install openjdk-17-jre-headless)")
        return java

    def _keystore(self) -> Path:
        """The listener's PEM key store (key + certificate signed by the stack's CA), mode 600."""
        hosts = [self.host, "127.0.0.1", "localhost"]
        ca = ensure_tls(tls_files(self.config).folder, [self.config.mqtt.host, "127.0.0.1", "localhost"])
        folder = self.data_dir / "tls"
        issue_server_cert(ca, folder / "server.crt", folder / "server.key", hosts)
        keystore = folder / "keystore.pem"
        write_private(keystore, (folder / "server.key").read_text() + (folder / "server.crt").read_text())
        return keystore

    def _write_config(self) -> None:
        kafka, config = self.config.kafka, self.config
        admin_user = kafka_security.user(config, kafka_security.ADMIN)
        controller_password = config.secret(kafka.controller_password_env)
        quote = kafka_security.jaas_quote
        secret = quote(controller_password)
        controller_jaas = (f"{PLAIN_MODULE} required username={quote(CONTROLLER_USER)} "
                           f"password={secret} user_{CONTROLLER_USER}={secret};")
        listener = "SASL_SSL" if kafka.secure else "PLAINTEXT"
        client_settings = ""
        super_users = [f"User:{admin_user}", f"User:{CONTROLLER_USER}"]
        if kafka.secure:
            admin_password = config.secret(kafka.password_env)
            jaas = kafka_security.jaas_line(SCRAM_MODULE, admin_user, admin_password)
            client_settings = f"listener.name.sasl_ssl.{kafka.sasl_mechanism.lower()}.sasl.jaas.config={_prop(jaas)}"
        else:  # an unsecured benchmark baseline: clients are ANONYMOUS
            super_users.append("User:ANONYMOUS")
        text = Template((TEMPLATE_DIR / "server.properties").read_text()).substitute(
            host=kafka.host,
            port=kafka.port,
            controller_port=kafka.controller_port,
            partitions=kafka.partitions,
            log_dirs=self.data_dir / "log",
            listener=listener,
            mechanism=kafka.sasl_mechanism,
            controller_jaas=_prop(controller_jaas),
            client_listener_settings=client_settings,
            keystore=self._keystore(),
            ca_file=kafka_security.ca_path(config),
            super_users=";".join(super_users),
        )
        write_private(self._properties, text)

    def _format_storage(self, classpath: str) -> None:
        """Format the KRaft metadata log once; an existing log keeps its cluster id and data.

        The admin's SCRAM credential is bootstrapped here (the broker logs in with it itself); the
        arguments go through a mode-600 java @argfile, so the password is never in a process's argv."""
        kafka = self.config.kafka
        marker = self.data_dir / "scram-bootstrapped"  # absent: a log formatted before Kafka security
        if (self.data_dir / "log" / "meta.properties").exists():
            if kafka.secure and not marker.exists():
                raise ServiceError("kafka: this data folder was formatted without SCRAM credentials (before "
                                   "SASL_SSL was on); run `kappa stack down --purge` once to start afresh")
            return
        cluster_id = uuid.uuid4().hex[:22]
        args = ["-cp", classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self._properties)]
        password = ""
        if kafka.secure:
            password = self.config.secret(kafka.password_env)
            if not _SCRAM_SAFE.fullmatch(password):
                raise ServiceError(f"kafka: {kafka.password_env} may hold only letters, digits and _.~- "
                                   "(kafka-storage format parses it unquoted)")
            admin_user = kafka_security.user(self.config, kafka_security.ADMIN)
            args += ["--add-scram", f"{kafka.sasl_mechanism}=[name={admin_user},password={password}]"]
        argfile = self.data_dir / "format.args"
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

    def _launch(self) -> None:
        classpath = kafka_broker_classpath(self.config)
        self._write_config()
        self._format_storage(classpath)
        env = dict(os.environ)
        self.process.start(
            [
                self._java(),
                "-Xms256m",
                "-Xmx768m",
                "-XX:+UseG1GC",
                f"-Dlog4j2.configurationFile={TEMPLATE_DIR / 'log4j2.yaml'}",
                f"-Dkafka.logs.dir={self.data_dir / 'broker-logs'}",
                "-cp",
                classpath,
                "kafka.Kafka",
                str(self._properties),
            ],
            env=env,
        )

    def after_ready(self) -> None:
        from kappa.stack import kafka_setup  # confluent_kafka, imported when the stack starts

        kafka_setup.apply(self.config)
        if self.config.kafka.secure:  # for Kafka's own CLI tools: `--command-config <this file>`
            write_private(self.data_dir / "admin-client.properties", kafka_security.java_client_properties(self.config))

    def ready(self) -> bool:
        from kappa import kafka_clients  # as above: not for `kappa stack status`

        # log_level 0: the probe's "connection refused" while the broker starts is expected, not news
        admin = kafka_clients.admin(self.config, None, **{"socket.timeout.ms": 3000, "log_level": 0})
        metadata = admin.list_topics(timeout=3)
        return len(metadata.brokers) >= 1
