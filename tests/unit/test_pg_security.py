"""PostgreSQL roles and client TLS settings (kappa/pg_security.py), without a server."""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from kappa import pg_security, sqlfiles
from kappa.config import LOCAL_SECRETS_FILE, Config, load_config, read_env_file
from kappa.stack.manager import ensure_local_secrets
from kappa.stack.mosquitto import ca_file
from kappa.stack.postgres import hba_conf

pytestmark = pytest.mark.unit


@pytest.fixture()
def config(tmp_path: Path) -> Config:
    return load_config("test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path / "data dir")})


def test_every_client_verifies_the_stacks_ca_by_default(config: Config) -> None:
    assert pg_security.libpq_params(config) == {"sslmode": "verify-full", "sslrootcert": str(ca_file(config))}
    url = urlsplit(pg_security.jdbc_url(config))
    assert url.path.endswith(f"/{config.postgres.database}")
    # the path (with its space) survives the URL: pgjdbc decodes the query's values
    assert parse_qs(url.query) == {"sslmode": ["verify-full"], "sslrootcert": [str(ca_file(config))]}


def test_an_external_server_names_its_own_ca_and_mode(tmp_path: Path) -> None:
    config = load_config("test", environ={"KAPPA_POSTGRES__CA_FILE": "/etc/ssl/db-ca.pem",
                                          "KAPPA_POSTGRES__SSLMODE": "verify-ca"})
    assert pg_security.libpq_params(config) == {"sslmode": "verify-ca", "sslrootcert": "/etc/ssl/db-ca.pem"}
    plain = load_config("test", environ={"KAPPA_POSTGRES__SSLMODE": "disable"})
    assert pg_security.jdbc_url(plain).endswith("?sslmode=disable")


def test_the_jobs_sql_gets_the_verified_url(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAPPA_PG_PASSWORD", "KAPPA_PG_LAKE_PASSWORD", "KAPPA_REGISTRY_PASSWORD", "KAPPA_S3_ACCESS_KEY",
                 "KAPPA_S3_SECRET_KEY", "KAPPA_KAFKA_PASSWORD"):
        monkeypatch.setenv(name, "unused")
    params = sqlfiles.params_from_config(config)
    sinks = [s for s in sqlfiles.load("aggregates/sinks.sql", params) if "'connector' = 'jdbc'" in s]
    assert sinks and all(f"'url' = '{pg_security.jdbc_url(config)}'" in s for s in sinks)
    catalog = sqlfiles.load("archive/catalog.sql", params)[0]
    assert f"'uri' = '{pg_security.jdbc_url(config)}'" in catalog
    assert "'jdbc.user' = 'kappa_lake'" in catalog and "'jdbc.password' = 'unused'" in catalog
    printable = sqlfiles.load("archive/catalog.sql", params, printable=True)[0]
    assert "'jdbc.password' = '******'" in printable


def test_the_catalog_url_encodes_its_credentials(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAPPA_PG_LAKE_PASSWORD", "p@ss/w:rd?#")
    url = pg_security.sqlalchemy_url(config, "lake")
    assert url.startswith("postgresql+psycopg://kappa_lake:p%40ss%2Fw%3Ard%3F%23@")
    assert "sslmode=verify-full" in url


def test_each_role_has_its_own_name_and_generated_password(config: Config,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    names = {pg_security.password_env(config, role) for role in pg_security.ROLES}
    for name in [*names, config.postgres.password_env]:
        monkeypatch.delenv(name, raising=False)
    assert len(names) == len(pg_security.ROLES) and config.postgres.password_env not in names
    assert pg_security.user(config, pg_security.OWNER) == config.postgres.user
    assert pg_security.user(config, "analyst") == "kappa_analyst"
    ensure_local_secrets(config)
    path = config.data_dir / LOCAL_SECRETS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    generated = read_env_file(path)
    assert names <= generated.keys() and len({generated[n] for n in names}) == len(names)


def test_only_the_jobs_write_and_each_its_own_outputs() -> None:
    assert set(pg_security.JOB_ROLES) == {"aggregate", "alerts", "smoke"}
    assert pg_security.job_role("aggregate") == "aggregate"
    assert pg_security.job_role("bench_throughput") == pg_security.OWNER
    assert all(not r.job for r in pg_security.ROLES.values() if r.role not in pg_security.JOB_ROLES)


@pytest.mark.parametrize(("host", "networks"), [("127.0.0.1", ["127.0.0.1/32"]),
                                                ("localhost", ["127.0.0.1/32", "::1/128"])])
def test_pg_hba_accepts_hostssl_scram_only(host: str, networks: list[str]) -> None:
    rules = [line.split() for line in hba_conf(host).splitlines() if not line.startswith("#")]
    assert rules == [["hostssl", "all", "all", network, "scram-sha-256"] for network in networks]
