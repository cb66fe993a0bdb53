"""JobManager high availability of the standalone cluster (flink.ha = "zookeeper"), as standalone Flink
users set it up: two JobManagers elect a leader through ZooKeeper, the standby takes over when the leader
dies, and the job graphs, blobs and checkpoints the new leader recovers from are on shared storage (S3).

The S3 file system is Flink's `flink-s3-fs-presto` plugin, pointed at the stack's SeaweedFS (path-style).
Its credentials reach the daemons as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in their environment (the
AWS SDK's default chain reads them): never in argv, and not in config.yaml either, whose values Flink
logs at start-up (it hides keys named *secret* or *password*, not `s3.access-key`).
"""

from __future__ import annotations

import re
import shutil
import subprocess

from kappa import s3_security
from kappa.config import Config
from kappa.jars import zookeeper_classpath

# JobManager i (0 = the first, 1 = the standby) listens on the configured rest/rpc/blob ports + JM_PORT_STEP * i
JM_PORT_STEP = 100
JOBMANAGERS = 2


def enabled(config: Config) -> bool:
    return config.flink.ha_enabled


def s3_uri(config: Config, folder: str) -> str:
    return f"s3://{config.s3.bucket}/{config.flink.ha_prefix}/{folder}"


def checkpoint_uri(config: Config) -> str:
    """Where jobs write checkpoints: flink.checkpoint_dir if set; on S3 with HA (a new leader must read
    them, wherever it runs); else the local data folder."""
    if config.flink.checkpoint_dir:
        return config.flink.checkpoint_dir
    if enabled(config):
        return s3_uri(config, "checkpoints")
    return (config.data_dir / "flink" / "checkpoints").resolve().as_uri()


def jobmanager_count(config: Config) -> int:
    return JOBMANAGERS if enabled(config) else 1


def jobmanager_ports(config: Config, index: int) -> tuple[int, int, int]:
    """(rest, rpc, blob) ports of JobManager `index`."""
    flink, shift = config.flink, JM_PORT_STEP * index
    return flink.rest_port + shift, flink.rpc_port + shift, flink.blob_port + shift


def jobmanager_settings(config: Config, index: int) -> list[str]:
    """`-D` options of JobManager `index` (the rendered config.yaml holds JobManager 0's ports). In HA mode
    the RPC port is `high-availability.jobmanager.port`, not `jobmanager.rpc.port`."""
    if index == 0:
        return []
    rest, rpc, blob = jobmanager_ports(config, index)
    return ["-D", f"rest.port={rest}", "-D", f"jobmanager.rpc.port={rpc}",
            "-D", f"high-availability.jobmanager.port={rpc}", "-D", f"blob.server.port={blob}"]


def cluster_id(config: Config) -> str:
    return f"/kappa-{config.profile}"


def config_lines(config: Config) -> str:
    """The HA and S3 lines appended to the cluster's config.yaml (nothing when HA is off)."""
    if not enabled(config):
        return ""
    flink, s3 = config.flink, config.s3
    settings = {
        "high-availability.type": "zookeeper",
        "high-availability.storageDir": s3_uri(config, "ha"),
        "high-availability.cluster-id": cluster_id(config),
        "high-availability.zookeeper.quorum": config.zookeeper.connect,
        "high-availability.zookeeper.path.root": "/flink",
        "high-availability.zookeeper.client.session-timeout": str(flink.ha_session_timeout_ms),
        "high-availability.zookeeper.client.connection-timeout": "5000",
        "high-availability.jobmanager.port": str(flink.rpc_port),
        # Flink writes a JAAS file for its own use, and ZooKeeper's client then tries SASL on a server that
        # has none ("Authentication failed", JobManager exits): the stack's ZooKeeper is loopback-only
        "zookeeper.sasl.disable": "true",
        # flink-s3-fs-presto on SeaweedFS: path-style, plain HTTP on loopback, keys from the environment
        "s3.endpoint": s3.endpoint,
        "s3.path.style.access": "true",
        "s3.ssl.enabled": "false",
        "s3.use-instance-credentials": "false",
    }
    return "\n# JobManager high availability (kappa/stack/flink_ha.py)\n" + "".join(
        f'{key}: "{value}"\n' for key, value in settings.items())


def s3_environment(config: Config) -> dict[str, str]:
    """The S3 plugin's credentials, for the daemons' environment (the AWS SDK's default chain)."""
    if not enabled(config):
        return {}
    access_key, secret_key = s3_security.keys(config, s3_security.WRITER)  # the bucket only, no admin
    return {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key, "AWS_REGION": config.s3.region}


_REST_ADDRESS = re.compile(r"https?://[^\s/:]+:(\d+)")


def leader_rest_port(config: Config) -> int | None:
    """The REST port of the leading JobManager, from the leader record Flink keeps in ZooKeeper (read with
    ZooKeeper's own CLI); None while no JobManager leads."""
    java = shutil.which("java") or "java"
    path = f"/flink{cluster_id(config)}/leader/rest_server/connection_info"
    result = subprocess.run([java, "-cp", zookeeper_classpath(config), "org.apache.zookeeper.ZooKeeperMain",
                             "-server", config.zookeeper.connect, "get", path],
                            capture_output=True, text=True, errors="replace", timeout=60)
    match = _REST_ADDRESS.search(result.stdout)
    return int(match.group(1)) if match else None


def leader_index(config: Config) -> int | None:
    """Which JobManager leads (0 or 1), None while none does."""
    port = leader_rest_port(config)
    for index in range(jobmanager_count(config)):
        if jobmanager_ports(config, index)[0] == port:
            return index
    return None
