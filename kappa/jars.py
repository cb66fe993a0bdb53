"""The JVM jars the project uses, resolved from Maven Central by `deploy/*/pom.xml` (see `make setup`).

This is the one place that knows which jars exist: the MiniCluster gets them as `pipeline.jars`, the
standalone cluster gets the same list through the job's configuration, and `kappa doctor` checks them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kappa.config import Config
from kappa.errors import KappaError

# (folder under jars_dir, artifact id) of each jar a Flink job needs on its class path.
FLINK_JOB_ARTIFACTS: tuple[str, ...] = (
    "flink-connector-jdbc-core",
    "flink-connector-jdbc-postgres",  # its PostgreSQL driver is on the class path (FLINK_LIB_ARTIFACTS)
    "flink-sql-avro-confluent-registry",
    "kappa-udfs",  # the project's own Java functions (udfs/java), built by `make setup`
)
# Jars on the JVM class path of every Flink process rather than in pipeline.jars (deploy/flink-lib/pom.xml
# says why): Hadoop's Configuration for Iceberg's catalog factory, the driver of its JDBC catalog, and
# Iceberg itself with S3FileIO's AWS bundle (per-job class loaders filled the TaskManager's metaspace), and
# the Kafka connector (its SASL provider is registered JVM-wide by the first job's class loader).
FLINK_LIB_ARTIFACTS: tuple[str, ...] = ("hadoop-client-api", "hadoop-client-runtime", "postgresql",
                                        "iceberg-flink-runtime-2.0", "iceberg-aws-bundle",
                                        "flink-sql-connector-kafka")
# Marker artifacts of the Kafka broker's class path (the rest come with them from the same pom).
KAFKA_BROKER_ARTIFACTS: tuple[str, ...] = ("kafka_2.13", "kafka-server", "kafka-clients", "log4j-core")
# ZooKeeper for Flink's JobManager HA (deploy/zookeeper/pom.xml), and Flink's S3 file system plugin for its
# HA storage and checkpoints (deploy/flink-plugins/pom.xml): needed only with flink.ha = "zookeeper"
ZOOKEEPER_ARTIFACTS: tuple[str, ...] = ("zookeeper", "zookeeper-jute", "logback-classic", "metrics-core", "snappy-java")
FLINK_PLUGIN_ARTIFACTS: tuple[str, ...] = ("flink-s3-fs-presto",)

_VERSION = re.compile(r"^\d+(\.\d+)*([.\-][\w.\-]*)?$")


class MissingJarError(KappaError):
    """A jar the project needs is not in the jars folder."""


@dataclass(frozen=True)
class Jar:
    artifact: str
    version: str
    path: Path


def _find(folder: Path, artifact: str) -> Jar | None:
    for path in sorted(folder.glob(f"{artifact}-*.jar")):
        version = path.name[len(artifact) + 1:-len(".jar")]  # artifact ids may end in a version: -runtime-2.0
        if _VERSION.match(version):
            return Jar(artifact, version, path)
    return None


def _require(folder: Path, artifacts: tuple[str, ...], pom: str) -> list[Jar]:
    jars, missing = [], []
    for artifact in artifacts:
        jar = _find(folder, artifact)
        if jar is None:
            missing.append(artifact)
        else:
            jars.append(jar)
    if missing:
        raise MissingJarError(
            f"missing jar(s) {', '.join(missing)} in {folder}; run `make setup` (resolves {pom})"
        )
    return jars


def flink_job_jars(config: Config) -> list[Jar]:
    """The connector/format jars every job ships, checked to exist."""
    return _require(config.jars_dir / "flink", FLINK_JOB_ARTIFACTS, "deploy/flink/pom.xml and udfs/java/pom.xml")


def pipeline_jars_value(config: Config) -> str:
    """The `pipeline.jars` option: file URLs joined by ';'."""
    return ";".join(jar.path.resolve().as_uri() for jar in flink_job_jars(config))


def flink_lib_classpath(config: Config) -> str:
    """The jars every Flink JVM (MiniCluster, client, JobManager, TaskManager) needs on its class path,
    given to Flink's scripts and to PyFlink's gateway as HADOOP_CLASSPATH."""
    jars = _require(config.jars_dir / "flink-lib", FLINK_LIB_ARTIFACTS, "deploy/flink-lib/pom.xml")
    return ":".join(str(jar.path.resolve()) for jar in jars)


def local_jvm_classpath(config: Config) -> str:
    """The class path of PyFlink's own JVM (a local MiniCluster): `flink_lib_classpath` plus the
    Prometheus reporter that the cluster loads as a plugin. The MiniCluster finds no reporter in the
    plugins folder (its log: "Available factories: []"), so without this a local run given the
    reporter options (`kappa.stack.flink.reporter_settings`) reports nothing."""
    import pyflink

    reporter = sorted((Path(pyflink.__file__).resolve().parent / "plugins" / "metrics-prometheus").glob("*.jar"))
    return ":".join([flink_lib_classpath(config), *(str(jar) for jar in reporter)])


def kafka_broker_classpath(config: Config) -> str:
    """Class path of the real Kafka broker: every jar its pom resolved."""
    folder = config.jars_dir / "kafka"
    _require(folder, KAFKA_BROKER_ARTIFACTS, "deploy/kafka/pom.xml")
    return str(folder / "*")


def zookeeper_classpath(config: Config) -> str:
    """Class path of the stack's ZooKeeper server: every jar its pom resolved."""
    folder = config.jars_dir / "zookeeper"
    _require(folder, ZOOKEEPER_ARTIFACTS, "deploy/zookeeper/pom.xml")
    return str(folder / "*")


def s3_plugin_jar(config: Config) -> Path:
    """Flink's `flink-s3-fs-presto` plugin jar (the cluster's plugins/s3-fs-presto/ links to it)."""
    return _require(config.jars_dir / "flink-plugins", FLINK_PLUGIN_ARTIFACTS, "deploy/flink-plugins/pom.xml")[0].path


def report(config: Config) -> list[tuple[str, str, str]]:
    """(artifact, version or 'MISSING', path) for every jar the project expects."""
    rows = []
    for folder, artifacts in (("flink", FLINK_JOB_ARTIFACTS), ("flink-lib", FLINK_LIB_ARTIFACTS),
                              ("kafka", KAFKA_BROKER_ARTIFACTS), ("zookeeper", ZOOKEEPER_ARTIFACTS),
                              ("flink-plugins", FLINK_PLUGIN_ARTIFACTS)):
        for artifact in artifacts:
            jar = _find(config.jars_dir / folder, artifact)
            rows.append((artifact, jar.version if jar else "MISSING", str(jar.path) if jar else "-"))
    return rows
