"""The one typed configuration object: `kappa.toml` (base + profile) with `KAPPA_*` environment overrides.

Everything that needs an address, a port, a path or a job setting asks this object, so pointing the
project at another Kafka, PostgreSQL, S3 or Flink is a configuration change, never a code change.
Secrets are not part of the file: each `*_env` key names the environment variable that holds one.
"""

from __future__ import annotations

import copy
import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kappa.errors import ConfigError, MissingSecret

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "KAPPA_"
LOCAL_SECRETS_FILE = "local-secrets.env"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsConfig(_Section):
    data_dir: Path
    jars_dir: Path
    sql_dir: Path = PROJECT_ROOT / "sql"  # the jobs' SQL files; another folder = changed logic (replays)


class KafkaConfig(_Section):
    host: str
    port: int
    controller_port: int
    partitions: int
    telemetry_topic: str
    dead_letter_topic: str
    edge_dead_letter_topic: str  # what the MQTT bridge rejects (same DeadLetter schema)
    aggregates_topic: str
    alerts_topic: str
    smoke_topic: str
    # Reference data as versioned changelogs (kappa/rules, kappa/devices/versions.py): full history kept
    rules_topic: str = "alert-thresholds"
    devices_topic: str = "device-metadata"
    start: bool = True

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


class PostgresConfig(_Section):
    host: str
    port: int
    database: str
    user: str
    password_env: str
    start: bool = True

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{self.database}"


class S3Config(_Section):
    host: str
    port: int
    bucket: str
    region: str
    access_key_env: str
    secret_key_env: str
    master_port: int
    volume_port: int
    filer_port: int
    start: bool = True

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"


class RegistryConfig(_Section):
    host: str
    port: int
    start: bool = True
    user: str = "kappa"  # basic auth is always on; KAPPA_REGISTRY_USER (user_env) overrides the name
    user_env: str = "KAPPA_REGISTRY_USER"
    password_env: str = "KAPPA_REGISTRY_PASSWORD"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class FlinkConfig(_Section):
    host: str
    rest_port: int
    rpc_port: int
    blob_port: int
    taskmanager_rpc_port: int
    taskmanager_data_port: int
    slots: int  # per TaskManager
    parallelism: int  # the jobs' default parallelism (`kappa submit --parallelism N` overrides it)
    jobmanager_memory: str
    taskmanager_memory: str
    checkpoint_interval_ms: int
    # Where jobs write checkpoints: '' = <data_dir>/flink/checkpoints on the local file system; a URI
    # (s3://bucket/prefix) for a cluster whose JobManager and TaskManagers share no disk (deploy/k8s)
    checkpoint_dir: str = ""
    # TaskManagers of the local cluster: TaskManager i listens on taskmanager_rpc_port/taskmanager_data_port
    # + 10 * i (kappa/stack/flink.py). Two with parallelism 2: jobs run across TaskManagers (README)
    taskmanagers: int = Field(default=1, ge=1)
    start: bool = True

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"


class MqttConfig(_Section):
    """The edge: Mosquitto (TLS only, one credential per device) and the MQTT -> Kafka bridge."""

    host: str
    port: int  # the TLS listener devices and the bridge connect to
    topic_prefix: str = "devices"  # a device publishes only under <topic_prefix>/<device_id>/telemetry
    bridge_user: str = "kappa-bridge"
    bridge_password_env: str = "KAPPA_MQTT_BRIDGE_PASSWORD"
    bridge_share_group: str = "kappa-bridge"  # $share/<group>/...: several bridges split the load
    bridge_client_id: str = "kappa-bridge-1"  # persistent session (clean_start false) under this id
    # How long the broker keeps a disconnected bridge's session (and queues for it). A bridge down longer
    # loses what was queued; a retired bridge id stops collecting every device's messages after it.
    bridge_session_expiry_s: int = 7 * 86_400
    max_payload_bytes: int = 65536
    allow_unknown_devices: bool = False  # discovery mode: readings of unregistered devices pass
    start: bool = True

    def device_topic(self, device_id: str) -> str:
        return f"{self.topic_prefix}/{device_id}/telemetry"


class JobConfig(_Section):
    watermark_delay_s: int
    source_idle_timeout_s: int
    group_prefix: str
    max_clock_skew_s: int = 300  # event time further ahead of the record's reference time: dead-lettered
    # A live job's reference sources (rules, device metadata) release the temporal joins' watermark only
    # once idle this long (see sql/alerts/threshold_versions.sql): a one-off delay when a job starts
    reference_idle_timeout_s: int = 5
    # Failure-rate restart strategy of every job (and the cluster's default): a job failing this many
    # times within the interval fails for good instead of restarting for ever (a poison pill shows).
    # The delay spaces the failures out: a TaskManager lost (kill -9) makes restarts fail fast until the
    # JobManager notices it (heartbeat timeout, 20 s), which must not use up the budget.
    restart_max_failures: int = 5
    restart_interval_s: int = 300
    restart_delay_s: int = 10
    # how far behind its partition a reading may be and still update its windows (sql/telemetry/lateness.sql)
    allowed_lateness_s: int = 7200


class MetricsConfig(_Section):
    """Prometheus and what it scrapes: every port binds to the loopback host."""

    host: str = "127.0.0.1"
    prometheus_port: int = 19090
    scrape_interval_s: int = 5
    retention: str = "2d"  # Prometheus keeps this much history in the data folder
    pushgateway_port: int = 19091  # Flink pushes here (its pull reporter cannot bind to one address)
    postgres_exporter_port: int = 19187
    exporter_port: int = 19400  # the project's exporter: consumer lag, dead letters, fleet activity
    start: bool = True

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.host}:{self.prometheus_port}"

    @property
    def pushgateway_url(self) -> str:
        return f"http://{self.host}:{self.pushgateway_port}"


class LakeConfig(_Section):
    """The Iceberg archive (kappa.lake): a JDBC catalog in the project's PostgreSQL, data on the S3 bucket."""

    catalog: str = "kappa"              # the catalog's name in Iceberg's JDBC tables (and in Flink SQL)
    namespace: str = "archive"
    warehouse_prefix: str = "iceberg"   # s3://<s3.bucket>/<warehouse_prefix>
    target_file_size_mb: int = 128
    # `kappa lake expire`: snapshots older than this expire (time travel reaches back this far) ...
    snapshot_max_age_hours: float = 24.0
    snapshot_retain_last: int = 10      # ... except the newest N, whatever their age
    orphan_min_age_hours: float = 72.0  # `kappa lake orphans`: unreferenced files older than this are deleted


class Config(_Section):
    """The whole configuration of one profile, resolved against the project root."""

    profile: str
    root: Path
    paths: PathsConfig
    kafka: KafkaConfig
    postgres: PostgresConfig
    s3: S3Config
    registry: RegistryConfig
    flink: FlinkConfig
    mqtt: MqttConfig
    job: JobConfig
    metrics: MetricsConfig = MetricsConfig()
    lake: LakeConfig = LakeConfig()

    @property
    def data_dir(self) -> Path:
        return self.paths.data_dir

    @property
    def jars_dir(self) -> Path:
        return self.paths.jars_dir

    @property
    def sql_dir(self) -> Path:
        return self.paths.sql_dir

    def secret(self, env_name: str) -> str:
        """A secret from the environment; the local stack's generated file is the fallback.

        The fallback exists only because `kappa stack up` generates random credentials for the
        services it starts itself; for any external service the variable must be set.
        """
        value = os.environ.get(env_name)
        if value:
            return value
        local = read_env_file(self.data_dir / LOCAL_SECRETS_FILE)
        if env_name in local:
            return local[env_name]
        raise MissingSecret(
            f"secret {env_name} is not set: export it, or run `kappa stack up` to generate local ones"
        )


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a KEY=VALUE file (no shell expansion); missing file -> empty."""
    if not path.exists():
        return {}
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """`KAPPA_KAFKA__PORT=1` -> {"kafka": {"port": "1"}} (pydantic coerces the type)."""
    overrides: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        overrides.setdefault(section, {})[key] = value
    return overrides


def load_config(
    profile: str | None = None,
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Build the configuration: base tables, then the profile's table, then KAPPA_* variables."""
    env = dict(os.environ if environ is None else environ)
    profile = profile or env.get("KAPPA_PROFILE", "local")
    path = config_file or Path(env.get("KAPPA_CONFIG", PROJECT_ROOT / "kappa.toml"))
    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc}") from exc
    profiles = raw.pop("profiles", {})
    if profile != "local" and profile not in profiles:
        raise ConfigError(f"unknown profile {profile!r} in {path}; known: local, {', '.join(profiles)}")
    merged = _deep_merge(raw, profiles.get(profile, {}))
    merged = _deep_merge(merged, _env_overrides(env))
    root = Path(path).resolve().parent
    paths = merged.setdefault("paths", {})
    for key in ("data_dir", "jars_dir", "sql_dir"):
        if key in paths and not Path(paths[key]).is_absolute():
            paths[key] = str(root / paths[key])
    try:
        return Config(profile=profile, root=root, **merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid configuration ({path}, profile {profile}, KAPPA_* variables): {problems}") from exc


@lru_cache(maxsize=1)
def get_config() -> Config:
    """The process-wide configuration, loaded once."""
    return load_config()
