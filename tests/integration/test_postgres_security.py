"""PostgreSQL on the real stack refuses who it does not know and denies what a role was not granted
(issue #14 item 4: TLS with a certificate from the stack's CA, hostssl + scram-sha-256 only, one
least-privilege role per job, the registry, the Iceberg catalog, the analyst and the monitor)."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from kappa import pg_security
from kappa.config import Config
from kappa.outputs import job_outputs
from kappa.stack import pg_setup
from kappa.stack.postgres import PostgresService, connect

pytestmark = pytest.mark.integration


def _dial(config: Config, tmp_path: Path, **overrides: Any) -> psycopg.Connection:
    """A raw connection as the owner with `overrides` (no ~/.pgpass or PG* variable can help it)."""
    pg = config.postgres
    params: dict[str, Any] = {
        "host": pg.host, "port": pg.port, "dbname": pg.database, "user": pg.user,
        "password": config.secret(pg.password_env), "connect_timeout": 5, "autocommit": True,
        "passfile": str(tmp_path / "no-pgpass"), **pg_security.libpq_params(config)}
    params.update(overrides)
    return psycopg.connect(**{k: v for k, v in params.items() if v is not None})


def test_a_connection_without_tls_is_refused(stack: Config, tmp_path: Path) -> None:
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        _dial(stack, tmp_path, sslmode="disable", sslrootcert=None)
    # the same client over TLS is served: the refusal is the missing TLS
    with _dial(stack, tmp_path) as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert row == (True,)


def test_a_wrong_or_missing_password_is_refused(stack: Config, tmp_path: Path) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _dial(stack, tmp_path, password=stack.secret(stack.postgres.password_env) + "x")
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        _dial(stack, tmp_path, password=None)
    for role in pg_security.ROLES:  # each role's password is its own, not the owner's
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            _dial(stack, tmp_path, user=pg_security.user(stack, role))


def test_the_server_certificate_is_checked_against_the_stacks_ca(stack: Config, tmp_path: Path) -> None:
    from kappa.stack.mqtt_tls import ensure_tls

    other = ensure_tls(tmp_path / "other", ["127.0.0.1"])
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        _dial(stack, tmp_path, sslrootcert=str(other.ca_cert))
    # verify-full also checks the name: the certificate names 127.0.0.1 and localhost only
    with pytest.raises(psycopg.OperationalError, match="server certificate"):
        _dial(stack, tmp_path, host="localhost.localdomain", hostaddr=stack.postgres.host)


def test_the_server_accepts_hostssl_scram_only_and_keeps_its_key_private(stack: Config) -> None:
    service = PostgresService(stack)
    rules = [line.split() for line in (service.data_dir / "pgdata" / "pg_hba.conf").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules and all(r[0] == "hostssl" and r[-1] == "scram-sha-256" for r in rules), rules
    assert stat.S_IMODE((service.data_dir / "tls" / "server.key").stat().st_mode) == 0o600
    with connect(stack, admin=True) as conn:
        assert conn.execute("SHOW ssl").fetchone() == ("on",)


def _denied(config: Config, role: str, statement: sql.Composable | str) -> bool:
    """True if `role` is refused `statement` for lack of privilege (a granted statement is rolled back)."""
    with connect(config, role=role) as conn:
        try:
            with conn.transaction(force_rollback=True):
                conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def _insert(table: str, **values: Any) -> sql.Composed:
    return sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier("public", table),  # qualified: the registry's and the catalog's search_path is their own
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(map(sql.Literal, values.values())))


def _dead_letter(table: str = "dead_letters") -> sql.Composed:
    return _insert(table, topic="t", kafka_partition=0, kafka_offset=0, reason="X", error="d")


def test_each_job_writes_its_own_tables_only(migrated: Config) -> None:
    # the aggregate job's role writes its dead letters but not the alerts, and the other way round
    assert not _denied(migrated, "aggregate", _dead_letter())
    assert _denied(migrated, "aggregate", sql.SQL("DELETE FROM alerts"))
    assert _denied(migrated, "aggregate", sql.SQL("UPDATE alerts SET alert_type = alert_type"))
    assert not _denied(migrated, "alerts", sql.SQL("DELETE FROM alerts"))
    assert _denied(migrated, "alerts", _dead_letter())
    assert _denied(migrated, "alerts", sql.SQL("DELETE FROM device_agg_1m"))
    for role in pg_security.JOB_ROLES:  # no job reads or changes the reference tables or the schema
        assert _denied(migrated, role, sql.SQL("SELECT * FROM devices"))
        assert _denied(migrated, role, sql.SQL("CREATE TABLE x (i int)"))
        assert _denied(migrated, role, sql.SQL("DROP TABLE smoke_counts"))


def test_a_replay_writer_is_granted_its_versioned_tables_only(migrated: Config) -> None:
    """Replay tables `<table>_vN` are created by the owner, then granted to the job's role for the run."""
    suffix = "_vsec"
    with connect(migrated) as conn:
        for job in ("aggregate", "alerts"):
            job_outputs(job).create_tables(conn, suffix)
        try:
            assert _denied(migrated, "aggregate", _dead_letter("dead_letters" + suffix))  # not granted yet
            assert pg_setup.grant_run(migrated, conn, "aggregate", suffix) == job_outputs("aggregate").table_names(
                suffix)
            assert not _denied(migrated, "aggregate", _dead_letter("dead_letters" + suffix))
            assert _denied(migrated, "aggregate", sql.SQL("DELETE FROM {}").format(sql.Identifier("alerts" + suffix)))
            drop = sql.SQL("DROP TABLE {}").format(sql.Identifier("dead_letters" + suffix))
            assert _denied(migrated, "aggregate", drop)
        finally:
            for job in ("aggregate", "alerts"):
                job_outputs(job).drop_tables(conn, suffix)


def test_the_analyst_reads_the_views_and_nothing_else(migrated: Config) -> None:
    with connect(migrated) as conn:
        views = [r[0] for r in conn.execute("SELECT viewname FROM pg_views WHERE schemaname = 'public'")]
    assert {"v_device_1m", "v_site_5m", "v_alerts"} <= set(views)
    with connect(migrated, role="analyst") as conn:
        for view in views:
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(view))).fetchone()
    assert _denied(migrated, "analyst", sql.SQL("SELECT count(*) FROM device_agg_1m"))
    assert _denied(migrated, "analyst", _dead_letter())
    assert _denied(migrated, "analyst", sql.SQL("CREATE TABLE analyst_scratch (i int)"))
    assert _denied(migrated, "analyst", sql.SQL("CREATE SCHEMA analyst_scratch"))
    assert _denied(migrated, "analyst", sql.SQL("DROP VIEW v_alerts"))


def test_the_registry_and_the_catalog_keep_to_their_own_schemas(migrated: Config) -> None:
    with connect(migrated, role="registry") as conn:
        conn.execute("SELECT count(*) FROM registry.schemas").fetchone()
    for role in ("registry", "lake", "monitor", "bridge"):
        assert _denied(migrated, role, sql.SQL("SELECT count(*) FROM public.alerts WHERE false")
                       if role != "monitor" else sql.SQL("SELECT count(*) FROM public.devices"))
        assert _denied(migrated, role, _dead_letter())
    assert _denied(migrated, "registry", sql.SQL("CREATE SCHEMA elsewhere"))
    assert _denied(migrated, "lake", sql.SQL("SELECT count(*) FROM registry.schemas"))
    assert _denied(migrated, "aggregate", sql.SQL("SELECT count(*) FROM registry.schemas"))
    # the bridge reads device ids and states, not the credential hashes
    with connect(migrated, role="bridge") as conn:
        conn.execute("SELECT device_id FROM devices WHERE status = 'active'").fetchall()
    assert _denied(migrated, "bridge", sql.SQL("SELECT credential_hash FROM devices"))


def _scrape(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as reply:  # noqa: S310 - the stack's loopback exporter
        return str(reply.read().decode())


def test_the_exporters_read_postgres_over_tls_as_the_monitor(migrated: Config) -> None:
    m = migrated.metrics
    # prometheus-postgres-exporter: verify-full against the stack's CA, as the monitor role (pg_monitor)
    assert "\npg_up 1" in _scrape(f"http://{m.host}:{m.postgres_exporter_port}/metrics")
    # the project's exporter: the pipeline counters from the tables the monitor may read
    text = _scrape(f"http://{m.host}:{m.exporter_port}/metrics")
    assert 'kappa_pipeline_records{stage="aggregated"}' in text


def test_the_registry_holds_its_connections_over_tls_as_its_own_role(stack: Config) -> None:
    with connect(stack, admin=True) as conn:
        rows = conn.execute("SELECT a.usename, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
                            "WHERE a.application_name = 'kappa-registry'").fetchall()
    assert rows and all(row == (pg_security.user(stack, "registry"), True) for row in rows), rows


def test_a_job_runs_without_the_owners_password_on_tables_granted_beforehand(
        migrated: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kubernetes' set-up (postgres.grant_runs off): the migrate Job has granted the job's role its tables, and
    the job's process never reads the owner's password; its outputs are still complete."""
    from kappa.simulate import simulate
    from tests.integration.aggregate_support import assert_matches_python, faulty_spec
    from tests.integration.scratch import Names, run_bounded, versioned_outputs

    names = Names.new("nogrant")
    topic, suffix = names.topic, versioned_outputs(migrated, names.suffix)  # created by the owner
    manifest = simulate(migrated, faulty_spec(topic, seed=3, devices=4, readings=20), produce=True,
                        log=lambda _: None)
    with connect(migrated) as conn:
        pg_setup.grant_run(migrated, conn, "aggregate", suffix)  # what the migrate Job does for the live tables
    no_grants = migrated.model_copy(update={"postgres": migrated.postgres.model_copy(update={"grant_runs": False})})
    owner_env, secret = migrated.postgres.password_env, Config.secret

    def without_owner(self: Config, name: str) -> str:
        assert name != owner_env, "the job's run read the owner's password"
        return secret(self, name)

    with monkeypatch.context() as patch:
        patch.setattr(Config, "secret", without_owner)
        run_bounded(no_grants, "aggregate", topic, suffix)
    assert_matches_python(migrated, suffix, manifest, topic)
