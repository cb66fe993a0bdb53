"""S3 roles (kappa/s3_security.py): SeaweedFS's identities file, each role's keys and its fallback, and
which clients get which role. That weed enforces them is tests/integration/test_objectstore_security.py."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from kappa import lake, s3_security, sqlfiles
from kappa.config import LOCAL_SECRETS_FILE, Config, load_config, read_env_file
from kappa.errors import MissingSecret
from kappa.stack import flink_ha
from kappa.stack.manager import ensure_local_secrets
from kappa.stack.objectstore import ObjectStoreService

pytestmark = pytest.mark.unit

ALL_ENVS = [env for role in s3_security.ROLES for env in s3_security.key_envs(load_config(environ={}), role)]


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """A test-profile config whose S3 keys are the ones `stack up` generates into its own folder."""
    for env in ALL_ENVS:
        monkeypatch.delenv(env, raising=False)
    loaded = load_config(profile="test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path)})
    ensure_local_secrets(loaded)
    return loaded


def test_stack_up_generates_a_distinct_key_pair_per_role(config: Config) -> None:
    generated = read_env_file(config.data_dir / LOCAL_SECRETS_FILE)
    pairs = [s3_security.keys(config, role) for role in s3_security.ROLES]
    assert pairs == [tuple(generated[env] for env in s3_security.key_envs(config, role)) for role in s3_security.ROLES]
    assert len({access for access, _ in pairs}) == 3 and len({secret for _, secret in pairs}) == 3
    assert stat.S_IMODE((config.data_dir / LOCAL_SECRETS_FILE).stat().st_mode) == 0o600


def test_identities_scope_the_writer_and_reader_to_the_bucket(config: Config) -> None:
    document = s3_security.identities(config)
    by_name = {identity["name"]: identity for identity in document["identities"]}
    bucket = config.s3.bucket
    assert by_name["kappa-admin"]["actions"] == ["Admin", "Read", "Write", "List", "Tagging"]
    assert by_name["kappa-writer"]["actions"] == [f"Read:{bucket}", f"Write:{bucket}", f"List:{bucket}"]
    assert by_name["kappa-reader"]["actions"] == [f"Read:{bucket}", f"List:{bucket}"]
    for role in s3_security.ROLES:
        access, secret = s3_security.keys(config, role)
        assert by_name[f"kappa-{role}"]["credentials"] == [{"accessKey": access, "secretKey": secret}]


def test_the_identities_file_is_private(config: Config) -> None:
    service = ObjectStoreService(config)
    path = service._write_identities()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == s3_security.identities(config)


def test_one_key_pair_everywhere_falls_back_to_the_admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An external S3 with one key pair: every role uses it, and weed's file would hold it once."""
    for env in ALL_ENVS:
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("KAPPA_S3_ACCESS_KEY", "only-ak")
    monkeypatch.setenv("KAPPA_S3_SECRET_KEY", "only-sk")
    config = load_config(profile="test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path)})
    assert {s3_security.keys(config, role) for role in s3_security.ROLES} == {("only-ak", "only-sk")}
    assert [i["name"] for i in s3_security.identities(config)["identities"]] == ["kappa-admin"]


def test_half_a_key_pair_is_an_error_not_a_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for env in ALL_ENVS:
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("KAPPA_S3_ACCESS_KEY", "admin-ak")
    monkeypatch.setenv("KAPPA_S3_SECRET_KEY", "admin-sk")
    monkeypatch.setenv("KAPPA_S3_READER_ACCESS_KEY", "reader-ak")
    config = load_config(profile="test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path)})
    with pytest.raises(MissingSecret, match="KAPPA_S3_READER_SECRET_KEY"):
        s3_security.keys(config, s3_security.READER)
    with pytest.raises(ValueError, match="unknown S3 role"):
        s3_security.keys(config, "owner")


def test_each_client_gets_its_least_role(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyiceberg.catalog import sql as iceberg_sql

    # pyiceberg's SqlCatalog connects at once: only the properties it is given matter here
    monkeypatch.setattr(iceberg_sql, "SqlCatalog", lambda name, **properties: properties)
    writer, reader = s3_security.keys(config, s3_security.WRITER), s3_security.keys(config, s3_security.READER)
    # the jobs' Iceberg sinks and lake maintenance (sql/archive/catalog.sql): the writer
    catalog_sql = sqlfiles.load("archive/catalog.sql", sqlfiles.params_from_config(config))[0]
    assert f"'s3.access-key-id' = '{writer[0]}'" in catalog_sql and f"'{writer[1]}'" in catalog_sql
    # pyiceberg: readers by default, the writer when a table is created or dropped
    assert lake.catalog(config)["s3.access-key-id"] == reader[0]  # type: ignore[index]
    assert lake.catalog(config, s3_security.WRITER)["s3.secret-access-key"] == writer[1]  # type: ignore[index]
    # Flink's HA storage and checkpoints: the writer
    ha = load_config(profile="test", environ={"KAPPA_PATHS__DATA_DIR": str(config.data_dir),
                                              "KAPPA_FLINK__HA": "zookeeper"})
    assert flink_ha.s3_environment(ha)["AWS_ACCESS_KEY_ID"] == writer[0]
