from pathlib import Path

import pytest

from kappa.config import load_config

pytestmark = pytest.mark.unit


def test_profile_overrides_base_and_env_overrides_profile(tmp_path: Path) -> None:
    base = load_config(profile="local", environ={})
    test = load_config(profile="test", environ={})
    env = load_config(profile="test", environ={"KAPPA_KAFKA__PORT": "39999", "KAPPA_JOB__WATERMARK_DELAY_S": "9"})
    assert base.kafka.port == 19092
    assert test.kafka.port == 29092
    assert test.kafka.telemetry_topic == base.kafka.telemetry_topic  # inherited from the base tables
    assert env.kafka.port == 39999 and env.kafka.bootstrap == "127.0.0.1:39999"
    assert env.job.watermark_delay_s == 9
    assert test.data_dir.is_absolute() and test.data_dir.name == "test"


def test_unknown_profile_and_unknown_key_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown profile"):
        load_config(profile="nope", environ={})
    with pytest.raises(ValueError, match="no_such_key"):
        load_config(profile="local", environ={"KAPPA_KAFKA__NO_SUCH_KEY": "1"})


def test_secrets_come_from_environment_then_local_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(profile="local", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path)})
    monkeypatch.delenv("KAPPA_PG_PASSWORD", raising=False)
    with pytest.raises(KeyError, match="KAPPA_PG_PASSWORD"):
        config.secret("KAPPA_PG_PASSWORD")
    (tmp_path / "local-secrets.env").write_text("KAPPA_PG_PASSWORD=from-file\n")
    assert config.secret("KAPPA_PG_PASSWORD") == "from-file"
    monkeypatch.setenv("KAPPA_PG_PASSWORD", "from-env")
    assert config.secret("KAPPA_PG_PASSWORD") == "from-env"


def test_sql_dir_defaults_to_the_repo_sql_and_is_overridable(tmp_path: Path) -> None:
    default = load_config(profile="test", environ={})
    assert default.sql_dir == default.root / "sql" and (default.sql_dir / "aggregates" / "windows.sql").exists()
    relative = load_config(profile="local", environ={"KAPPA_PATHS__SQL_DIR": "changed/sql"})
    assert relative.sql_dir == relative.root / "changed" / "sql"  # like data_dir: against the project root
    absolute = load_config(profile="local", environ={"KAPPA_PATHS__SQL_DIR": str(tmp_path)})
    assert absolute.sql_dir == tmp_path


def test_an_unknown_section_in_the_environment_is_an_error_and_os_environ_is_not_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValueError, match="nope"):
        load_config(profile="local", environ={"KAPPA_NOPE__PORT": "1"})
    monkeypatch.setenv("KAPPA_KAFKA__PORT", "not-a-port")  # only the mapping given is read
    assert load_config(profile="local", environ={}).kafka.port == 19092
