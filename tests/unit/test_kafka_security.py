"""Kafka principals, their ACLs and client settings (kappa/kafka_security.py), without a broker."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from kappa import kafka_security, sqlfiles
from kappa.config import LOCAL_SECRETS_FILE, Config, load_config
from kappa.stack.manager import ensure_local_secrets

pytestmark = pytest.mark.unit

PASSWORD = 'p"w\\x\'1'  # a quote of each kind and a backslash


@pytest.fixture()
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    for role in kafka_security.all_roles():
        monkeypatch.setenv(f"KAPPA_KAFKA_{'' if role == 'admin' else role.upper() + '_'}PASSWORD", PASSWORD)
    monkeypatch.setenv("KAPPA_PG_PASSWORD", "unused")
    monkeypatch.setenv("KAPPA_REGISTRY_PASSWORD", "unused")
    for name in ("KAPPA_S3_ACCESS_KEY", "KAPPA_S3_SECRET_KEY", "KAPPA_PG_LAKE_PASSWORD"):  # every placeholder filled
        monkeypatch.setenv(name, "unused")
    return load_config("test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path)})


def test_every_principal_has_a_generated_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config("test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path)})
    for role in kafka_security.all_roles():
        monkeypatch.delenv(kafka_security.password_env(config, role), raising=False)
    ensure_local_secrets(config)
    text = (tmp_path / LOCAL_SECRETS_FILE).read_text()
    names = [kafka_security.password_env(config, r) for r in kafka_security.all_roles()]
    assert all(f"{name}=" in text for name in [*names, config.kafka.controller_password_env])
    assert len(set(names)) == len(names)


def test_clients_authenticate_over_tls_with_their_own_user(config: Config) -> None:
    settings = kafka_security.client_settings(config, "bridge")
    assert settings["security.protocol"] == "SASL_SSL" and settings["sasl.mechanisms"] == "SCRAM-SHA-512"
    assert settings["sasl.username"] == "kappa-bridge" and settings["sasl.password"] == PASSWORD
    assert settings["ssl.ca.location"].endswith("ca.crt")
    assert kafka_security.client_settings(config)["sasl.username"] == config.kafka.user


def test_a_plaintext_cluster_gets_no_security_settings(tmp_path: Path) -> None:
    config = load_config("test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path),
                                          "KAPPA_KAFKA__SECURITY_PROTOCOL": "PLAINTEXT"})
    assert kafka_security.client_settings(config) == {"bootstrap.servers": config.kafka.bootstrap}
    assert kafka_security.flink_options(config, "aggregate") == ""


def test_the_kafka_password_stays_out_of_the_sql_text(config: Config) -> None:
    params = sqlfiles.params_from_config(config).with_values(
        job_name="aggregate", kafka_security=kafka_security.flink_options(config, "aggregate"))
    statements = sqlfiles.load("aggregates/sinks.sql", params) + sqlfiles.load("telemetry/source.sql", params)
    kafka_tables = [s for s in statements if "'connector' = 'kafka'" in s or "'connector' = 'upsert-kafka'" in s]
    assert len(kafka_tables) == 4
    secret_file = kafka_security.flink_secret_file(config, "aggregate")
    for statement in kafka_tables:
        assert PASSWORD not in statement and PASSWORD.replace("'", "''") not in statement
        assert f"'properties.sasl.jaas.config' = '${{kappafile:{secret_file}:sasl.jaas.config}}'" in statement
        assert "'properties.security.protocol' = 'SASL_SSL'" in statement
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    # the file holds the JAAS entry of the job's own user, quotes and backslashes escaped, as a
    # java.util.Properties value (backslashes doubled once more)
    text = secret_file.read_text()
    assert 'username="kappa-aggregate"' in text
    assert 'password="p\\\\"w\\\\\\\\x\'1"' in text


def test_a_job_is_granted_its_own_topics_groups_and_transactional_ids_only(config: Config) -> None:
    params = sqlfiles.params_from_config(config, include_secrets=False).with_values(
        job_name="aggregate", output_suffix="_v2", telemetry_topic="replay-input")
    rights = {(b.restype, b.name, b.resource_pattern_type, b.operation)
              for b in kafka_security.acl_bindings(config, "aggregate", params)}
    lit, pre = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
    assert (ResourceType.TOPIC, "replay-input", lit, AclOperation.READ) in rights
    assert (ResourceType.TOPIC, f"{config.kafka.aggregates_topic}_v2", lit, AclOperation.WRITE) in rights
    assert (ResourceType.GROUP, "kappa-aggregate_v2", pre, AclOperation.READ) in rights
    assert (ResourceType.TRANSACTIONAL_ID, "kappa-aggregate_v2", pre, AclOperation.WRITE) in rights
    assert not any(op in (AclOperation.DELETE, AclOperation.ALTER, AclOperation.ALL, AclOperation.CREATE)
                   for *_, op in rights)
    assert all(name != "*" for _, name, _, _ in rights)
    assert not any(name == "replay-input" and op == AclOperation.WRITE for _, name, _, op in rights)


def test_producers_write_telemetry_and_read_nothing(config: Config) -> None:
    params = sqlfiles.params_from_config(config, include_secrets=False)
    for role in ("producer", "bridge"):
        bindings = kafka_security.acl_bindings(config, role, params)
        assert not any(b.operation == AclOperation.READ for b in bindings)
        written = {b.name for b in bindings if b.operation == AclOperation.WRITE and b.restype == ResourceType.TOPIC}
        assert config.kafka.telemetry_topic in written
        assert config.kafka.aggregates_topic not in written and config.kafka.alerts_topic not in written


def test_jaas_values_cannot_end_early() -> None:
    line = kafka_security.jaas_line("M", "u", 'a";x=y')
    assert line == 'M required username="u" password="a\\";x=y";'


def test_kafkas_own_cli_tools_get_a_java_client_file(config: Config) -> None:
    text = kafka_security.java_client_properties(config)
    assert "security.protocol=SASL_SSL\n" in text and "sasl.mechanism=SCRAM-SHA-512\n" in text
    assert f'username="{config.kafka.user}"' in text and "ssl.truststore.type=PEM\n" in text


# --- a cluster whose ACLs an operator owns (Strimzi's User Operator, deploy/k8s) ------------------------

def _operator_config(tmp_path: Path, **extra: str) -> Config:
    return load_config("test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path), "KAPPA_KAFKA__ACLS": "operator",
                                        "KAPPA_KAFKA__CREDENTIALS_DIR": "/etc/kappa/kafka-user", **extra})


def test_a_mounted_password_file_is_read_on_every_pod_not_written(config: Config, tmp_path: Path) -> None:
    """With `kafka.credentials_dir` the Kafka tables' JAAS entry names the mounted Secret's `password` file
    (DirectoryConfigProvider, replaced inside the quoted value); no JAAS file is written, no password read."""
    operator = _operator_config(tmp_path / "op")
    options = kafka_security.flink_options(operator, "alerts")
    module = f"{kafka_security.FLINK_SHADED}.common.security.scram.ScramLoginModule"
    assert (f"'properties.sasl.jaas.config' = '{module} required username=\"kappa-alerts\" "
            "password=\"${kappadir:/etc/kappa/kafka-user:password}\";'") in options
    assert (f"'properties.config.providers.kappadir.class' = "
            f"'{kafka_security.FLINK_SHADED}.common.config.provider.DirectoryConfigProvider'") in options
    assert "'properties.config.providers' = 'kappadir'" in options and PASSWORD not in options
    assert not kafka_security.flink_secret_file(operator, "alerts").exists()


def test_with_operator_acls_a_run_creates_its_outputs_as_itself_and_grants_nothing(
        config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kappa.stack import kafka_setup

    created: list[tuple[list[str], str]] = []
    monkeypatch.setattr(kafka_setup, "ensure_topics", lambda cfg, topics, role="admin": created.append((topics, role)))
    monkeypatch.setattr(kafka_setup, "grant", lambda *args: pytest.fail("an ACL granted under an operator"))
    operator = _operator_config(tmp_path)
    params = sqlfiles.params_from_config(operator, include_secrets=False).with_values(
        job_name="aggregate", output_suffix="_v2")
    kafka_setup.prepare_run(operator, "aggregate", params)
    assert created == [(["telemetry-dlq_v2", "aggregates-1m_v2", "telemetry-late_v2"], "aggregate")]
    assert kafka_setup.creator(operator, "aggregate") == "aggregate"
    assert kafka_setup.creator(operator, "admin") == "admin"  # operator commands stay the admin's
    assert kafka_setup.revoke_version(operator, "aggregate", params) == []  # prefixed ACLs: nothing per version
    # the local stack: the admin creates the topics and the run's ACLs are granted
    assert kafka_setup.creator(config, "aggregate") == "admin"
