import socket
from pathlib import Path

import pytest

from kappa import jars
from kappa.config import load_config
from kappa.stack.kafka import KafkaService
from kappa.stack.process import ServiceError

pytestmark = pytest.mark.unit


def test_missing_jar_names_the_artifact_and_the_fix(tmp_path: Path) -> None:
    config = load_config(profile="local", environ={"KAPPA_PATHS__JARS_DIR": str(tmp_path)})
    (tmp_path / "flink").mkdir()
    (tmp_path / "flink" / "flink-connector-jdbc-core-4.0.0-2.0.jar").write_bytes(b"")
    with pytest.raises(jars.MissingJarError) as error:
        jars.flink_job_jars(config)
    message = str(error.value)
    assert "flink-connector-jdbc-postgres" in message and "make setup" in message
    assert "flink-connector-jdbc-core" not in message.split("in ")[0]
    rows = {artifact: version for artifact, version, _ in jars.report(config)}
    assert rows["flink-connector-jdbc-core"] == "4.0.0-2.0" and rows["postgresql"] == "MISSING"


def test_the_kafka_connector_is_on_every_flink_jvms_class_path_not_in_pipeline_jars(tmp_path: Path) -> None:
    """Its SASL provider is registered JVM-wide: from a job's class loader it outlived the job
    (tests/integration/test_cluster_classloading.py)."""
    config = load_config(profile="local", environ={"KAPPA_PATHS__JARS_DIR": str(tmp_path)})
    for folder, artifacts in (("flink", jars.FLINK_JOB_ARTIFACTS), ("flink-lib", jars.FLINK_LIB_ARTIFACTS)):
        (tmp_path / folder).mkdir()
        for artifact in artifacts:
            (tmp_path / folder / f"{artifact}-1.0.jar").write_bytes(b"")
    assert "flink-sql-connector-kafka" not in jars.pipeline_jars_value(config)
    assert "flink-sql-connector-kafka-1.0.jar" in jars.flink_lib_classpath(config)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_taken_port_is_reported_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = load_config(profile="local", environ={
            "KAPPA_PATHS__DATA_DIR": str(tmp_path), "KAPPA_KAFKA__PORT": str(port),
            "KAPPA_KAFKA__CONTROLLER_PORT": str(_free_port())})
        service = KafkaService(config)
        assert service.taken_ports() == [port]
        with pytest.raises(ServiceError, match=f"kafka: port\\(s\\) {port} on 127.0.0.1 already in use"):
            service.start()
        assert not (tmp_path / "kafka").exists(), "nothing may be created when a port is taken"
