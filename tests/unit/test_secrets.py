"""Secrets: private from the first byte, escaped where they enter SQL, generated for every local service."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kappa import sqlfiles
from kappa.config import LOCAL_SECRETS_FILE, load_config
from kappa.private_files import write_private
from kappa.stack.manager import ensure_local_secrets

pytestmark = pytest.mark.unit


def test_secret_file_is_mode_600_before_its_first_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    modes: list[int] = []
    real_fdopen = os.fdopen

    def spying_fdopen(fd: int, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        modes.append(stat.S_IMODE(os.fstat(fd).st_mode))  # the file as it is before anything is written
        return real_fdopen(fd, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "fdopen", spying_fdopen)
    old_umask = os.umask(0)  # even a permissive umask cannot widen it
    try:
        write_private(tmp_path / "s.env", "A=1\n")
    finally:
        os.umask(old_umask)
    assert modes == [0o600]
    assert stat.S_IMODE((tmp_path / "s.env").stat().st_mode) == 0o600


def test_local_secrets_generated_private_for_every_local_service(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config("test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path)})
    for name in ("KAPPA_PG_PASSWORD", "KAPPA_MQTT_BRIDGE_PASSWORD", "KAPPA_REGISTRY_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    ensure_local_secrets(config)
    path = tmp_path / LOCAL_SECRETS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert all(name in text for name in (config.postgres.password_env, config.mqtt.bridge_password_env,
                                         config.registry.password_env, config.registry.write_password_env,
                                         config.registry.read_password_env))
    before = text
    ensure_local_secrets(config)  # kept across restarts
    assert path.read_text() == before


def _other_secrets(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Secrets a test does not look at, set so that every SQL placeholder can be filled."""
    for name in names:
        monkeypatch.setenv(name, "unused")


@pytest.mark.parametrize("password", ["it's", "a'); DROP TABLE x; --", "''", "\\'"])
def test_pg_password_is_escaped_in_flink_ddl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              password: str) -> None:
    monkeypatch.setenv("KAPPA_PG_PASSWORD", password)
    monkeypatch.setenv("KAPPA_REGISTRY_PASSWORD", "unused")
    _other_secrets(monkeypatch, "KAPPA_S3_ACCESS_KEY", "KAPPA_S3_SECRET_KEY", "KAPPA_KAFKA_PASSWORD",
                   "KAPPA_PG_LAKE_PASSWORD")
    config = load_config("test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path)})
    params = sqlfiles.params_from_config(config)
    statement = next(s for s in sqlfiles.load("aggregates/sinks.sql", params) if "'password'" in s)
    literal = "'" + password.replace("'", "''") + "'"
    assert f"'password' = {literal}," in statement
    # the literal ends where it should: what follows is the next option, not text of the password
    after = statement.split(f"'password' = {literal}", 1)[1]
    assert after.lstrip().startswith(",") and after.count("'") % 2 == 0


def test_registry_credentials_always_on_and_masked_in_printable_sql(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAPPA_REGISTRY_USER", raising=False)
    monkeypatch.setenv("KAPPA_REGISTRY_PASSWORD", "admin-unused")
    monkeypatch.setenv("KAPPA_REGISTRY_WRITE_PASSWORD", "p'w")  # the sinks register: the write role
    monkeypatch.setenv("KAPPA_PG_PASSWORD", "unused")
    _other_secrets(monkeypatch, "KAPPA_S3_ACCESS_KEY", "KAPPA_S3_SECRET_KEY", "KAPPA_KAFKA_PASSWORD",
                   "KAPPA_PG_LAKE_PASSWORD")
    config = load_config("test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path)})
    params = sqlfiles.params_from_config(config)
    assert params.values["registry_user_info"] == f"{config.registry.write_user}:p''w"
    printable = "\n".join(sqlfiles.load("aggregates/sinks.sql", params, printable=True))
    assert "p''w" not in printable and "'avro-confluent.basic-auth.user-info' = '******'" in printable


@pytest.mark.parametrize("bad", ["a\nb", "a\x00b", "a\rb"])
def test_a_secret_that_cannot_be_a_literal_is_refused(bad: str) -> None:
    with pytest.raises(sqlfiles.SqlTemplateError):
        sqlfiles.sql_string(bad)
