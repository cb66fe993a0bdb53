"""JobManager HA settings (kappa/stack/flink_ha.py): off by default; on, two JobManagers on distinct ports,
ZooKeeper in the stack, HA storage and checkpoints on S3, and the S3 keys only in the daemons' environment."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from kappa.config import Config, load_config
from kappa.stack import flink_ha, manager
from kappa.stack.flink import FlinkService

pytestmark = pytest.mark.unit

KEYS = {"KAPPA_S3_ACCESS_KEY": "kappaAdmin1", "KAPPA_S3_SECRET_KEY": "admin-s3cr3t",  # the admin's: not given
        "KAPPA_S3_WRITER_ACCESS_KEY": "kappaAK123", "KAPPA_S3_WRITER_SECRET_KEY": "s3cr3t-value"}


def _config(tmp_path: Path, **env: str) -> Config:
    return load_config(profile="local", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path), **env})


def test_ha_is_off_by_default(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert config.flink.ha == "none" and flink_ha.jobmanager_count(config) == 1
    assert flink_ha.config_lines(config) == "" and flink_ha.s3_environment(config) == {}
    assert flink_ha.checkpoint_uri(config) == (tmp_path / "flink" / "checkpoints").resolve().as_uri()
    assert "zookeeper" not in [svc.name for svc in manager.services(config)]  # nor in status, doctor
    assert FlinkService(config).ports == [config.flink.rest_port, config.flink.rpc_port, config.flink.blob_port,
                                          config.flink.taskmanager_rpc_port, config.flink.taskmanager_data_port]


def test_ha_on_renders_zookeeper_s3_and_a_standby(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in KEYS.items():  # secrets come from the process environment (Config.secret)
        monkeypatch.setenv(name, value)
    config = _config(tmp_path, KAPPA_FLINK__HA="zookeeper", KAPPA_ZOOKEEPER__PORT="23181")
    flink = config.flink
    assert manager.service(config, "zookeeper").enabled
    lines = flink_ha.config_lines(config)
    assert 'high-availability.type: "zookeeper"' in lines
    assert f'high-availability.storageDir: "s3://{config.s3.bucket}/flink/ha"' in lines
    assert 'high-availability.zookeeper.quorum: "127.0.0.1:23181"' in lines
    assert f'high-availability.cluster-id: "/kappa-{config.profile}"' in lines
    assert f's3.endpoint: "{config.s3.endpoint}"' in lines and 's3.path.style.access: "true"' in lines
    assert all(value not in lines for value in KEYS.values()), "S3 keys in config.yaml (Flink logs it)"
    assert flink_ha.checkpoint_uri(config) == f"s3://{config.s3.bucket}/flink/checkpoints"
    # HA storage and checkpoints: the writer's keys (the bucket only), not the admin's
    assert flink_ha.s3_environment(config) == {"AWS_ACCESS_KEY_ID": "kappaAK123",
                                               "AWS_SECRET_ACCESS_KEY": "s3cr3t-value", "AWS_REGION": config.s3.region}
    standby = flink_ha.jobmanager_ports(config, 1)
    assert standby == (flink.rest_port + 100, flink.rpc_port + 100, flink.blob_port + 100)
    settings = flink_ha.jobmanager_settings(config, 1)
    assert f"high-availability.jobmanager.port={standby[1]}" in settings and f"rest.port={standby[0]}" in settings
    assert flink_ha.jobmanager_settings(config, 0) == []
    ports = FlinkService(config).ports
    assert set(standby) <= set(ports) and len(ports) == len(set(ports))


def test_an_explicit_checkpoint_dir_wins(tmp_path: Path) -> None:
    config = _config(tmp_path, KAPPA_FLINK__HA="zookeeper", KAPPA_FLINK__CHECKPOINT_DIR="s3://other/cp")
    assert flink_ha.checkpoint_uri(config) == "s3://other/cp"


def test_leader_is_read_from_the_rest_leader_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path, KAPPA_FLINK__HA="zookeeper")
    standby_rest = flink_ha.jobmanager_ports(config, 1)[0]
    answers = {"out": f"\x00\x05w\x18\x00\x16http://127.0.0.1:{standby_rest}sr\x00\x0ejava.util.UUID"}
    monkeypatch.setattr(flink_ha, "zookeeper_classpath", lambda _config: "zk/*")

    def run(argv: list[str], **_kwargs: Any) -> subprocess.CompletedProcess[str]:
        assert argv[-1] == f"/flink/kappa-{config.profile}/leader/rest_server/connection_info"
        return subprocess.CompletedProcess(argv, 0, answers["out"], "")

    monkeypatch.setattr(flink_ha.subprocess, "run", run)
    assert flink_ha.leader_index(config) == 1
    answers["out"] = "Node does not exist"
    assert flink_ha.leader_index(config) is None


def test_zookeeper_config_binds_loopback_in_the_data_folder(tmp_path: Path) -> None:
    from kappa.stack.zookeeper import ZooKeeperService

    config = _config(tmp_path, KAPPA_FLINK__HA="zookeeper", KAPPA_ZOOKEEPER__PORT="23181")
    service = ZooKeeperService(config)
    service._write_config()
    settings = dict(line.split("=", 1) for line in (tmp_path / "zookeeper" / "zoo.cfg").read_text().splitlines())
    assert settings["clientPortAddress"] == "127.0.0.1" and settings["clientPort"] == "23181"
    assert settings["dataDir"] == str(tmp_path / "zookeeper" / "data")
    assert settings["admin.enableServer"] == "false"  # no Jetty on 8080, every address
    session_ms = config.flink.ha_session_timeout_ms
    assert int(settings["minSessionTimeout"]) <= session_ms <= int(settings["maxSessionTimeout"])
