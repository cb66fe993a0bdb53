"""A single-node Apache ZooKeeper for Flink's JobManager high availability (flink.ha = "zookeeper").

Run with `java` from the jars `deploy/zookeeper/pom.xml` resolves, as the user (no system daemon): its
config and data live in the stack's data folder, it binds the loopback host only, and it is started and
stopped with the rest of the stack. Flink keeps only pointers in it (leaders, job graphs and checkpoints
by S3 path); the state itself is in the HA storage on S3, so one node is enough on one machine.
"""

from __future__ import annotations

import shutil
import socket

from kappa.jars import zookeeper_classpath
from kappa.stack.base import Service
from kappa.stack.process import ServiceError

# ZooKeeper 3.8 logs through logback: INFO to the console (our log file), without its default DEBUG flood
LOGBACK = """<configuration>
  <appender name="console" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{ISO8601} %-5level [%thread] %logger{36} - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="console"/></root>
</configuration>
"""


class ZooKeeperService(Service):
    name = "zookeeper"
    start_timeout_s = 60.0

    @property
    def host(self) -> str:
        return self.config.zookeeper.host

    @property
    def ports(self) -> list[int]:
        return [self.config.zookeeper.port]

    @property
    def enabled(self) -> bool:
        return self.config.flink.ha_enabled and self.config.zookeeper.start

    def _write_config(self) -> None:
        zk = self.config.zookeeper
        lines = {
            "tickTime": "2000",
            "initLimit": "10",
            "syncLimit": "5",
            # the session timeouts a client may ask for: 2 to 20 ticks (flink.ha_session_timeout_ms within)
            "minSessionTimeout": "4000",
            "maxSessionTimeout": "40000",
            "dataDir": str(self.data_dir / "data"),
            "clientPort": str(zk.port),
            "clientPortAddress": zk.host,
            "admin.enableServer": "false",  # its Jetty admin server would listen on 8080, every address
            "4lw.commands.whitelist": "srvr",  # the readiness probe
            "autopurge.snapRetainCount": "3",
            "autopurge.purgeInterval": "1",
        }
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "zoo.cfg").write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        (self.data_dir / "logback.xml").write_text(LOGBACK)

    def _launch(self) -> None:
        java = shutil.which("java")
        if java is None:
            raise ServiceError("zookeeper: no `java` on PATH (install openjdk-17-jre-headless)")
        self._write_config()
        self.process.start([
            java, "-Xmx256m", "-Djava.net.preferIPv4Stack=true",
            f"-Dlogback.configurationFile={self.data_dir / 'logback.xml'}",
            "-Dzookeeper.jmx.log4j.disable=true",
            "-cp", zookeeper_classpath(self.config),
            "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(self.data_dir / "zoo.cfg"),
        ], cwd=self.data_dir)

    def ready(self) -> bool:
        # `srvr`, not `ruok`: ruok answers "imok" even when the database failed to load (seen: a missing jar)
        return "Mode: standalone" in four_letter(self.host, self.config.zookeeper.port, "srvr")


def four_letter(host: str, port: int, command: str, timeout_s: float = 3.0) -> str:
    """Send one of ZooKeeper's four-letter commands and return its answer."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(command.encode())
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
