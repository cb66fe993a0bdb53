"""A real single-node Apache Kafka 4 broker in KRaft mode, from the jars `deploy/kafka/pom.xml` resolves."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from string import Template

from kappa import kafka_clients
from kappa.config import PROJECT_ROOT
from kappa.jars import kafka_broker_classpath
from kappa.stack.base import Service
from kappa.stack.process import ServiceError

TEMPLATE_DIR = PROJECT_ROOT / "deploy" / "kafka"


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

    def _write_config(self) -> None:
        kafka = self.config.kafka
        text = Template((TEMPLATE_DIR / "server.properties").read_text()).substitute(
            host=kafka.host,
            port=kafka.port,
            controller_port=kafka.controller_port,
            partitions=kafka.partitions,
            log_dirs=self.data_dir / "log",
        )
        self._properties.write_text(text)

    def _format_storage(self, classpath: str) -> None:
        """Format the KRaft metadata log once; an existing log keeps its cluster id and data."""
        if (self.data_dir / "log" / "meta.properties").exists():
            return
        cluster_id = uuid.uuid4().hex[:22]
        result = subprocess.run(
            [self._java(), "-cp", classpath, "kafka.tools.StorageTool", "format",
             "-t", cluster_id, "-c", str(self._properties)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ServiceError(f"kafka: storage format failed:\n{result.stdout}{result.stderr}")

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

    def ready(self) -> bool:
        # log_level 0: the probe's "connection refused" while the broker starts is expected, not news
        admin = kafka_clients.admin(self.config, None, **{"socket.timeout.ms": 3000, "log_level": 0})
        metadata = admin.list_topics(timeout=3)
        return len(metadata.brokers) >= 1
