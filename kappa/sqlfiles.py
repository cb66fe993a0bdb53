"""SQL files of `sql/` with named `${placeholders}` filled from the configuration.

Analysts write plain Flink SQL; addresses, topics and credentials come in as `${kafka_bootstrap}`,
`${pg_password}`, ... so the same file runs on the local MiniCluster, the standalone cluster, in
replays and in tests. Secrets are filled only into the text handed to Flink; the printable form
masks them, and that is the only form that may be logged.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from kappa import kafka_security, pg_security, s3_security
from kappa.config import PROJECT_ROOT, Config
from kappa.errors import KappaError
from kappa.registry import WRITE, ca_file, credentials
from udfs.limits import limits

SQL_DIR = PROJECT_ROOT / "sql"
AVRO_DIR = PROJECT_ROOT / "schemas" / "avro"
MASK = "******"


class SqlTemplateError(KappaError):
    """A SQL file uses a placeholder the configuration does not provide."""


@dataclass
class SqlParams:
    """Placeholder values; `secrets` names the ones to mask in printable output."""

    values: dict[str, str] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)

    def with_values(self, **extra: object) -> SqlParams:
        return SqlParams({**self.values, **{k: str(v) for k, v in extra.items()}}, set(self.secrets))


def params_from_config(config: Config, include_secrets: bool = True, owner_password: bool = True) -> SqlParams:
    """The standard placeholders every SQL file may use (`owner_password=False`: ${pg_password} masked, the
    owner's password not even read)."""
    kafka, pg, job = config.kafka, config.postgres, config.job
    values = {
        "kafka_bootstrap": kafka.bootstrap,
        "telemetry_topic": kafka.telemetry_topic,
        "dead_letter_topic": kafka.dead_letter_topic,
        "edge_dead_letter_topic": kafka.edge_dead_letter_topic,
        "aggregates_topic": kafka.aggregates_topic,
        "alerts_topic": kafka.alerts_topic,
        "smoke_topic": kafka.smoke_topic,
        "rules_topic": kafka.rules_topic,
        "devices_topic": kafka.devices_topic,
        "group_prefix": job.group_prefix,
        # TLS verified against the CA (kappa/pg_security.py); JobContext sets the job's own role
        "jdbc_url": pg_security.jdbc_url(config),
        "pg_user": pg.user,
        "lake_pg_user": pg_security.user(config, "lake"),  # the Iceberg JDBC catalog's own role
        "registry_url": config.registry.url,
        # the CA (PEM) the avro-confluent formats verify the registry's certificate against, a path on every
        # TaskManager (kappa/registry/tls.py); not a secret
        "registry_ca_file": sql_string(ca_file(config)),
        "s3_endpoint": config.s3.endpoint,
        "s3_bucket": config.s3.bucket,
        "watermark_delay_s": str(job.watermark_delay_s),
        "source_idle_timeout_s": str(job.source_idle_timeout_s),
        "max_clock_skew_ms": str(job.max_clock_skew_s * 1000),
        "allowed_lateness_s": str(job.allowed_lateness_s),
        "allowed_lateness_ms": str(job.allowed_lateness_s * 1000),
        # schemas/avro/telemetry/limits.json, the one declaration of what a record may hold
        "max_record_bytes": str(limits().max_record_bytes),
        "max_key_bytes": str(limits().max_key_bytes),
        # Extra WITH options appended to Kafka sources, e.g. bounded reads (see kappa.flinkenv).
        "source_options": "",
        # The same for the reference sources (rules, device metadata): bounded runs read them to their end.
        "reference_options": "",
        "reference_idle_timeout_s": str(job.reference_idle_timeout_s),
        # Suffix of output tables/topics: '' for live outputs, '_v2' etc. for replays.
        "output_suffix": "",
        # The Iceberg tables' suffix (the output suffix unless a replay writes a branch of the live ones)
        # and the INSERTs' table hint naming that branch ('' = main); kappa.flinkenv.JobOptions
        "lake_suffix": "",
        "lake_write_options": "",
        "job_name": "adhoc",
        "aggregates_avro_schema": avro_schema_literal("aggregates/v2.avsc"),
        "alerts_avro_schema": avro_schema_literal("alerts/v1.avsc"),
        "dead_letters_avro_schema": avro_schema_literal("dead_letters/v1.avsc"),
    }
    s3, lake = config.s3, config.lake
    values.update({  # the Iceberg archive (sql/archive, kappa.lake)
        "lake_catalog": lake.catalog, "lake_namespace": lake.namespace, "s3_region": s3.region,
        "lake_warehouse": f"s3://{s3.bucket}/{lake.warehouse_prefix}",
    })
    # The Kafka connector's security options (kappa/kafka_security.py), each followed by a comma; they
    # name the principal's mode-600 JAAS file, never the password. JobContext sets the job's own.
    values["kafka_security"] = kafka_security.flink_options(config, kafka_security.ADMIN, include_secrets)
    secrets = {"pg_password", "lake_pg_password", "registry_user_info", "s3_access_key", "s3_secret_key"}
    # the owner's; a job's context puts its own role's in its place, and asks for the owner's only to grant
    values["pg_password"] = (sql_string(config.secret(pg.password_env)) if include_secrets and owner_password
                             else MASK)
    values["lake_pg_password"] = (sql_string(config.secret(pg_security.password_env(config, "lake")))
                                  if include_secrets else MASK)
    # avro-confluent sinks: 'basic-auth.user-info' (the registry's auth is always on). The write role: Flink's
    # avro-confluent format registers the sink's schema under its subject on first write (an idempotent
    # POST /subjects/{s}/versions), so the jobs own their output subjects; they change no levels, delete nothing
    values["registry_user_info"] = (sql_string(":".join(credentials(config, WRITE))) if include_secrets
                                    else MASK)
    # the Iceberg catalog's S3FileIO (sql/archive/catalog.sql: the jobs' sinks, lake maintenance): the writer's
    # keys (kappa/s3_security.py), Read/Write/List on the bucket only
    access_key, secret_key = s3_security.keys(config, s3_security.WRITER) if include_secrets else (MASK, MASK)
    values["s3_access_key"] = sql_string(access_key) if include_secrets else MASK
    values["s3_secret_key"] = sql_string(secret_key) if include_secrets else MASK
    return SqlParams(values, secrets)


def sql_string(value: str) -> str:
    """`value` as the body of a Flink SQL string literal: quotes doubled, so a secret containing `'`
    ends neither the literal nor the statement. Every secret placeholder is filled through this."""
    if any(ch in value for ch in "\x00\r\n"):
        raise SqlTemplateError("a secret for a SQL placeholder contains a NUL byte or a line break")
    return value.replace("'", "''")


def avro_schema_literal(relative: str) -> str:
    """An Avro schema from schemas/avro as the body of a SQL string literal (quotes doubled)."""
    text = json.dumps(json.loads((AVRO_DIR / relative).read_text()), separators=(",", ":"))
    return text.replace("'", "''")


_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def render(text: str, params: SqlParams, *, printable: bool = False, source: str = "<sql>") -> str:
    """Fill `${name}` placeholders; unknown names are an error naming the file and the name."""
    missing = placeholders(text) - params.values.keys()
    if missing:
        raise SqlTemplateError(f"{source}: unknown placeholder(s) {', '.join(sorted(missing))}")
    values = dict(params.values)
    if printable:
        values.update({name: MASK for name in params.secrets})
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def split_statements(text: str) -> list[str]:
    """Split a SQL file on ';' at line ends, ignoring '--' comment lines (Flink runs one at a time)."""
    statements: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.strip().startswith("--") and not current:
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            statement = "\n".join(current).strip().rstrip(";").strip()
            if statement:
                statements.append(statement)
            current = []
    tail = "\n".join(current).strip()
    if tail and not all(line.strip().startswith("--") or not line.strip() for line in current):
        statements.append(tail)
    return statements


def load(relative: str | Path, params: SqlParams, *, printable: bool = False,
         sql_dir: Path = SQL_DIR) -> list[str]:
    """Rendered statements of `<sql_dir>/<relative>` (jobs pass `paths.sql_dir`; default: the repo's sql/)."""
    path = Path(sql_dir) / relative
    if not path.exists():
        raise SqlTemplateError(f"SQL file not found: {path}")
    return split_statements(render(strip_comments(path.read_text()), params, printable=printable,
                                   source=str(path)))


def strip_comments(text: str) -> str:
    """Drop whole-line `--` comments, so placeholders named in comments are neither filled nor required."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
