"""The local cluster's TaskManagers: each its own ports, folders and PID file; `down` finds every one."""

from pathlib import Path

import pytest

from kappa.config import load_config
from kappa.errors import ConfigError
from kappa.stack.flink import FlinkService, taskmanager_settings

pytestmark = pytest.mark.unit


def _config(tmp_path: Path, **env: str):  # type: ignore[no-untyped-def]
    return load_config(profile="local", environ={
        "KAPPA_PATHS__DATA_DIR": str(tmp_path), "KAPPA_FLINK__TASKMANAGER_RPC_PORT": "30125",
        "KAPPA_FLINK__TASKMANAGER_DATA_PORT": "30126", **env})


def test_default_is_one_taskmanager_on_the_configured_ports(tmp_path: Path) -> None:
    service = FlinkService(_config(tmp_path))
    assert service.config.flink.taskmanagers == 1
    assert service.ports[3:] == [30125, 30126]
    assert [tm.name for tm in service.taskmanager_processes()] == ["flink-taskmanager"]


def test_each_taskmanager_has_its_own_ports_and_folders(tmp_path: Path) -> None:
    config = _config(tmp_path, KAPPA_FLINK__TASKMANAGERS="2")
    service = FlinkService(config)
    assert service.ports[3:] == [30125, 30126, 30135, 30136]
    assert [tm.name for tm in service.taskmanager_processes()] == ["flink-taskmanager", "flink-taskmanager-1"]
    assert len({tm.log_file for tm in service.taskmanager_processes()}) == 2
    settings = taskmanager_settings(config, 1)
    assert set(settings[::2]) == {"-D"}
    assert set(settings[1::2]) == {"taskmanager.rpc.port=30135", "taskmanager.data.port=30136",
                           "metrics.internal.query-service.port=30137-30140",
                           f"io.tmp.dirs={tmp_path / 'flink' / 'tmp' / 'tm-1'}"}
    assert (tmp_path / "flink" / "tmp" / "tm-1").is_dir()


def test_down_finds_a_taskmanager_started_beyond_the_configured_count(tmp_path: Path) -> None:
    service = FlinkService(_config(tmp_path))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "flink-taskmanager-1.pid").write_text("999999999\n")
    assert [tm.name for tm in service.taskmanager_processes()] == ["flink-taskmanager", "flink-taskmanager-1"]


def test_at_least_one_taskmanager(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="taskmanagers"):
        _config(tmp_path, KAPPA_FLINK__TASKMANAGERS="0")


def test_daemons_and_the_flink_run_client_do_not_inherit_pyflinks_loopback_address(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a local MiniCluster run, Beam's loopback worker pool has copied its worker's environment,
    PYTHON_LOOPBACK_SERVER_ADDRESS included, into this process. A TaskManager started with it ran its Python
    functions inside the test process and replaced that process's registry credential with its own."""
    from kappa.stack.flink import LOOPBACK_ENV, daemon_env, flink_env

    monkeypatch.setenv(LOOPBACK_ENV, "localhost:40000")
    monkeypatch.setenv("KAPPA_UNRELATED", "kept")
    config = _config(tmp_path)
    for env in (flink_env(config), daemon_env(config)):
        assert LOOPBACK_ENV not in env
        assert env["KAPPA_UNRELATED"] == "kept"
