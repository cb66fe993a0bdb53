"""Who may do what on Kafka: the principals, their ACLs and their client settings, declared once.

Every principal authenticates with SCRAM over TLS (the stack's CA). The admin principal (config
`kafka.user`) is the only super user: `stack up`, the operator commands (replay, demo, doctor,
reference data) and the tests use it. Everything that runs unattended has its own principal with
least privilege: the bridge and the producers write telemetry, each job reads its inputs and writes its
own outputs under its own consumer-group and transactional-id prefixes, the exporter
read. Topics, groups and transactional ids are SQL-style `${placeholder}` templates over the SQL
parameters (kappa/sqlfiles.py), so a job's ACLs name exactly the topics its SQL uses, for the live run
as for a replay (`${output_suffix}`) or a test run reading its own topic (`telemetry_topic=...`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kappa.config import Config
from kappa.private_files import write_private

if TYPE_CHECKING:
    from confluent_kafka.admin import AclBinding

    from kappa.sqlfiles import SqlParams

ADMIN = "admin"
# The Flink Kafka connector shades the Kafka client: its JAAS module and config provider live here.
FLINK_SHADED = "org.apache.flink.kafka.shaded.org.apache.kafka"


@dataclass(frozen=True)
class Principal:
    """One Kafka user's rights; every name is a template over the SQL parameters."""

    role: str
    reads: tuple[str, ...] = ()  # topics read (READ, DESCRIBE)
    references: tuple[str, ...] = ()  # reference topics read (created by kappa/reference_log.py)
    writes: tuple[str, ...] = ()  # topics written (WRITE, DESCRIBE); a job's are created before it runs
    groups: tuple[str, ...] = ()  # consumer-group id prefixes (READ, DESCRIBE)
    transactional_ids: tuple[str, ...] = ()  # transactional-id prefixes (WRITE, DESCRIBE)
    read_all_topics: bool = False  # READ + DESCRIBE on every topic and DESCRIBE on every group


_JOB = "${group_prefix}-${job_name}${output_suffix}"
PRINCIPALS: dict[str, Principal] = {p.role: p for p in (
    # the MQTT bridge: validated readings and what it rejects
    Principal("bridge", writes=("${telemetry_topic}", "${edge_dead_letter_topic}")),
    # `kappa simulate` and external producers: telemetry only (transactions under sim-*)
    Principal("producer", writes=("${telemetry_topic}",), transactional_ids=("sim-",)),
    Principal("smoke", reads=("${smoke_topic}",), groups=("${group_prefix}-smoke",)),
    Principal("aggregate", reads=("${telemetry_topic}",), references=("${devices_topic}",),
              writes=("${dead_letter_topic}${output_suffix}", "${aggregates_topic}${output_suffix}",
                      "${telemetry_topic}-late${output_suffix}"),
              groups=(_JOB,), transactional_ids=(_JOB,)),
    Principal("alerts", reads=("${telemetry_topic}",), references=("${rules_topic}",),
              writes=("${alerts_topic}${output_suffix}",), groups=(_JOB,), transactional_ids=(_JOB,)),
    Principal("metrics", read_all_topics=True, groups=("${group_prefix}-metrics-",)),
)}
# Job names (jobs/<name>.py) whose runs use their own principal; other runs (bench, sqltest) use admin.
JOB_ROLES = ("smoke", "aggregate", "alerts")


def user(config: Config, role: str) -> str:
    return config.kafka.user if role == ADMIN else f"{config.kafka.user_prefix}{role}"


def password_env(config: Config, role: str) -> str:
    return config.kafka.password_env if role == ADMIN else f"KAPPA_KAFKA_{role.upper()}_PASSWORD"


def all_roles() -> list[str]:
    return [ADMIN, *PRINCIPALS]


def ca_path(config: Config) -> Path:
    """The CA the clients trust: `kafka.ca_file`, else the stack's own (kappa/stack/mqtt_tls.py)."""
    if config.kafka.ca_file:
        return Path(config.kafka.ca_file)
    from kappa.stack.mosquitto import ca_file  # the one CA of the local stack

    return ca_file(config)


def client_settings(config: Config, role: str = ADMIN) -> dict[str, Any]:
    """librdkafka settings of `role`: bootstrap, and security unless the cluster is PLAINTEXT."""
    kafka = config.kafka
    conf: dict[str, Any] = {"bootstrap.servers": kafka.bootstrap}
    if kafka.secure:
        conf.update({
            "security.protocol": kafka.security_protocol,
            "sasl.mechanisms": kafka.sasl_mechanism,
            "sasl.username": user(config, role),
            "sasl.password": config.secret(password_env(config, role)),
            "ssl.ca.location": str(ca_path(config)),
        })
    return conf


def jaas_quote(value: str) -> str:
    """A JAAS option value, quoted and escaped (a quote or backslash in it cannot end the value)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jaas_line(module: str, username: str, password: str) -> str:
    return f"{module} required username={jaas_quote(username)} password={jaas_quote(password)};"


def java_client_properties(config: Config, role: str = ADMIN) -> str:
    """A Java client's properties for `role` (Kafka's CLI tools: `--command-config FILE`); holds the
    password, so it is only ever written with `write_private`."""
    kafka = config.kafka
    module = "org.apache.kafka.common.security.scram.ScramLoginModule"
    jaas = jaas_line(module, user(config, role), config.secret(password_env(config, role)))
    return "".join(f"{k}={v}\n" for k, v in {
        "security.protocol": kafka.security_protocol,
        "sasl.mechanism": kafka.sasl_mechanism,
        "sasl.jaas.config": jaas.replace("\\", "\\\\"),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(ca_path(config)),
    }.items())


def flink_secret_file(config: Config, role: str) -> Path:
    return config.data_dir / "kafka-clients" / f"{user(config, role)}.properties"


def _jaas_options(config: Config, role: str, include_secrets: bool) -> dict[str, str]:
    """The connector's login options: the password never in the SQL text, always through a config provider."""
    module = f"{FLINK_SHADED}.common.security.scram.ScramLoginModule"
    provider = f"{FLINK_SHADED}.common.config.provider"
    if config.kafka.credentials_dir:  # a mounted Secret (Kubernetes): its file `password`, on every pod
        password = "${kappadir:" + config.kafka.credentials_dir + ":password}"  # replaced inside the quotes
        return {"properties.config.providers": "kappadir",
                "properties.config.providers.kappadir.class": f"{provider}.DirectoryConfigProvider",
                "properties.sasl.jaas.config": jaas_line(module, user(config, role), password)}
    path = flink_secret_file(config, role)
    if include_secrets:
        line = jaas_line(module, user(config, role), config.secret(password_env(config, role)))
        # java.util.Properties: a backslash is an escape character, so it is doubled once more
        write_private(path, "sasl.jaas.config=" + line.replace("\\", "\\\\") + "\n")
    return {"properties.config.providers": "kappafile",
            "properties.config.providers.kappafile.class": f"{provider}.FileConfigProvider",
            "properties.sasl.jaas.config": "${kappafile:" + str(path) + ":sasl.jaas.config}"}


def flink_options(config: Config, role: str, include_secrets: bool = True) -> str:
    """WITH options for the Flink Kafka connector, each followed by a comma (empty for PLAINTEXT).

    The password stays out of the SQL text: the JAAS entry is in a mode-600 properties file, which the
    Kafka client reads through its FileConfigProvider (`${kappafile:<path>:sasl.jaas.config}`), or, with
    `kafka.credentials_dir`, the password in a mounted Secret's file, through its DirectoryConfigProvider."""
    kafka = config.kafka
    if not kafka.secure:
        return ""
    options = {
        "properties.security.protocol": kafka.security_protocol,
        "properties.sasl.mechanism": kafka.sasl_mechanism,
        **_jaas_options(config, role, include_secrets),
        "properties.ssl.truststore.type": "PEM",
        "properties.ssl.truststore.location": str(ca_path(config)),
    }
    return "".join(f"'{name}' = '{value.replace(chr(39), chr(39) * 2)}', " for name, value in options.items())


def job_role(job_name: str) -> str:
    return job_name if job_name in JOB_ROLES else ADMIN


# --- ACLs -----------------------------------------------------------------------------------

def _render(templates: tuple[str, ...], params: SqlParams) -> list[str]:
    from kappa.sqlfiles import render

    return [render(t, params) for t in templates]


def topics_to_create(role: str, params: SqlParams) -> tuple[list[str], list[str]]:
    """(plain topics, reference topics) a run of `role` needs to exist before it starts."""
    principal = PRINCIPALS.get(role)
    if principal is None:
        return [], []
    return _render(principal.reads + principal.writes, params), _render(principal.references, params)


def output_topics(role: str, params: SqlParams) -> list[str]:
    """The topics a run of `role` writes (a job's outputs, with this run's suffix)."""
    principal = PRINCIPALS.get(role)
    return _render(principal.writes, params) if principal else []


def acl_bindings(config: Config, role: str, params: SqlParams) -> list[AclBinding]:
    """The ALLOW bindings of `role` for the topic, group and transactional-id names of `params`."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    principal = PRINCIPALS[role]
    who = f"User:{user(config, role)}"
    literal, prefixed = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
    wanted: list[tuple[ResourceType, str, ResourcePatternType, AclOperation]] = []
    read_topics = _render(principal.reads + principal.references, params)
    if principal.read_all_topics:
        wanted += [(ResourceType.TOPIC, "*", literal, op) for op in (AclOperation.READ, AclOperation.DESCRIBE)]
        wanted.append((ResourceType.GROUP, "*", literal, AclOperation.DESCRIBE))
    for topic in read_topics:
        wanted += [(ResourceType.TOPIC, topic, literal, op) for op in (AclOperation.READ, AclOperation.DESCRIBE)]
    for topic in _render(principal.writes, params):
        wanted += [(ResourceType.TOPIC, topic, literal, op) for op in (AclOperation.WRITE, AclOperation.DESCRIBE)]
    for group in _render(principal.groups, params):
        wanted += [(ResourceType.GROUP, group, prefixed, op) for op in (AclOperation.READ, AclOperation.DESCRIBE)]
    for tid in _render(principal.transactional_ids, params):
        wanted += [(ResourceType.TRANSACTIONAL_ID, tid, prefixed, op)
                   for op in (AclOperation.WRITE, AclOperation.DESCRIBE)]
    if principal.writes:  # idempotent producers (the default of every writer here)
        wanted.append((ResourceType.BROKER, "kafka-cluster", literal, AclOperation.IDEMPOTENT_WRITE))
    return [AclBinding(rtype, name, pattern, who, "*", op, AclPermissionType.ALLOW)
            for rtype, name, pattern, op in wanted]
