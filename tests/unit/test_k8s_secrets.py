"""deploy/k8s against what the code reads at run time: secrets and PostgreSQL's CA, per container.

The secrets a container needs are not listed here: each container's own code path runs against the
config its manifest gives it (the ConfigMap and its literal env), with `Config.secret` recording every
name asked for and the database and Flink replaced by stand-ins. A job's start-up (JobContext: its SQL
placeholders, its grants as the owner), the registry's (its DSN and basic auth), and the migrate Job's two
steps (`kappa db roles`, `kappa db migrate`). Each container must then get exactly those names from
secretKeyRefs (nothing missing, nothing more: the registry holds no owner password), each PostgreSQL
password from the key of its role, and, as it talks to PostgreSQL, verified TLS with the CA file it names
mounted from the CA Secret.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any
from unittest import mock

import pytest

from kappa import flinkenv, kafka_security, pg_security, s3_security
from kappa.config import Config, load_config
from kappa.stack import kafka_setup
from kappa.stack import postgres as pg_stack
from kappa.stack.flink import REGISTRY_PASSWORD_ENV, REGISTRY_USER_ENV
from tests.unit.test_k8s_manifests import Manifest, _env, _of, load_manifests

pytestmark = pytest.mark.unit

PG_SECRET = "kappa-postgres"  # one key per role: the role's name (deploy/k8s/app/config.yaml)
CA_SECRET = "kappa-postgres-ca"
CA_KEY = "ca.crt"
# read by Flink's S3 file system plugin (checkpoints, HA storage), not by the project's code
FLINK_S3_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
# read by the Java decoder on the TaskManagers (udfs/java RegistrySchemaLookup): the registry's read role
JAVA_DECODER_ENV = {REGISTRY_PASSWORD_ENV}
REGISTRY_SECRET = "kappa-registry"
FLINK_CONTAINER = "flink-main-container"  # the operator merges it into the JobManager and TaskManagers


class _FakeCursor:
    def fetchone(self) -> None:
        return None

    def fetchall(self) -> list[Any]:
        return []

    def __iter__(self) -> Iterator[Any]:
        return iter([])


class _FakeConnection:
    """psycopg's connection as the setup code uses it: nothing exists yet, every statement succeeds."""

    def __enter__(self) -> _FakeConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, *args: object, **kwargs: object) -> _FakeCursor:
        return _FakeCursor()


def _run_job(job: str) -> Callable[[Config], object]:
    def run(config: Config) -> object:
        return flinkenv.JobContext(config, flinkenv.JobOptions(), job_name=job)
    return run


def _run_registry(config: Config) -> object:
    from kappa.registry import identities
    from kappa.registry.server import dsn

    return dsn(config), identities(config)


def _run_roles(config: Config) -> object:
    pg_stack.bootstrap(config)
    return None


def _run_migrate(config: Config) -> object:
    # the migrations and grants as the owner, then the reference topics' first versions (Kafka's admin client)
    return pg_stack.connect(config), kafka_security.client_settings(config, kafka_security.ADMIN)


# (kind, name, container) -> the code that container runs; every container of deploy/k8s must be here
CODE: dict[tuple[str, str, str], Callable[[Config], object]] = {
    ("FlinkDeployment", "kappa-aggregate", FLINK_CONTAINER): _run_job("aggregate"),
    ("FlinkDeployment", "kappa-alerts", FLINK_CONTAINER): _run_job("alerts"),
    ("Deployment", "kappa-registry", "registry"): _run_registry,
    ("Job", "kappa-migrate", "roles"): _run_roles,
    ("Job", "kappa-migrate", "migrate"): _run_migrate,
}


def _pod(manifest: Manifest) -> dict[str, Any]:
    if manifest["kind"] == "FlinkDeployment":
        return dict(manifest["spec"]["podTemplate"]["spec"])
    return dict(manifest["spec"]["template"]["spec"])


def containers(manifests: list[Manifest]) -> Iterator[tuple[tuple[str, str, str], Manifest, dict[str, Any]]]:
    for manifest in manifests:
        if manifest["kind"] in ("FlinkDeployment", "Deployment", "Job"):
            pod = _pod(manifest)
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                yield (manifest["kind"], manifest["metadata"]["name"], container["name"]), manifest, container


def container_config(manifests: list[Manifest], container: dict[str, Any]) -> tuple[Config, dict[str, str]]:
    """The config the container loads (ConfigMap, then its literal env), and that environment."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        wanted = source["configMapRef"]["name"]
        (config_map,) = [m for m in _of(manifests, "ConfigMap") if m["metadata"]["name"] == wanted]
        env.update(config_map["data"])
    env.update({v["name"]: v["value"] for v in _env(container) if "value" in v})
    return load_config(environ=env), env


@pytest.fixture
def record_secrets(monkeypatch: pytest.MonkeyPatch) -> Callable[[Config, dict[str, str], Callable[[Config], object]],
                                                                set[str]]:
    """Run `code` for a container with the database, Kafka and Flink stood in; the secret names it read."""
    asked: list[str] = []
    monkeypatch.setattr(Config, "secret", lambda self, name: asked.append(name) or "not-a-secret")
    monkeypatch.setattr(pg_stack.psycopg, "connect", lambda **kwargs: _FakeConnection())
    monkeypatch.setattr(flinkenv, "create_table_env", lambda config, options: (mock.MagicMock(), mock.MagicMock()))
    monkeypatch.setattr(flinkenv, "pipeline_jars_value", lambda config: "")

    def kafka_prepare(config: Config, role: str, params: object) -> None:
        # the run's topics (and, unless an operator owns them, ACLs): the admin's client or the run's own
        kafka_security.client_settings(config, kafka_setup.creator(config, role))

    monkeypatch.setattr(kafka_setup, "prepare_run", kafka_prepare)

    def run(config: Config, env: dict[str, str], code: Callable[[Config], object]) -> set[str]:
        asked.clear()
        plain = {k: v for k, v in env.items() if "__" not in k}  # KAPPA_REGISTRY_USER is read from os.environ
        with mock.patch.dict("os.environ", plain):
            code(config)
        return set(asked)

    return run


def _pg_role_of_env(config: Config) -> dict[str, str]:
    """KAPPA_PG_<ROLE>_PASSWORD (and the owner's) -> the role, the key of that password in PG_SECRET."""
    return {pg_security.password_env(config, role): role for role in [pg_security.OWNER, *pg_security.ROLES]}


def secret_errors(manifests: list[Manifest], where: tuple[str, str, str], container: dict[str, Any],
                  needed: set[str], config: Config) -> list[str]:
    """Why `container` does not get exactly the secrets `needed` (plus the S3 plugin's in Flink pods)."""
    refs = {v["name"]: v["valueFrom"]["secretKeyRef"] for v in _env(container)
            if "secretKeyRef" in v.get("valueFrom", {})}
    allowed = needed | (FLINK_S3_ENV | JAVA_DECODER_ENV if where[0] == "FlinkDeployment" else set())
    errors = [f"{where}: {name} is read but not given from a Secret" for name in sorted(needed - refs.keys())]
    errors += [f"{where}: {name} is given but never read" for name in sorted(refs.keys() - allowed)]
    for name, ref in refs.items():
        role = _pg_role_of_env(config).get(name)
        if role is not None and (ref["name"], ref["key"]) != (PG_SECRET, role):
            errors.append(f"{where}: {name} comes from {ref['name']}/{ref['key']}, not {PG_SECRET}/{role}")
    return errors


def ca_errors(manifest: Manifest, container: dict[str, Any], config: Config) -> list[str]:
    """Why the container would not verify PostgreSQL's certificate against the CA Secret."""
    name = manifest["metadata"]["name"]
    params = pg_security.libpq_params(config)
    if params["sslmode"] != "verify-full":
        return [f"{name}: sslmode {params['sslmode']}, not verify-full"]
    if not config.postgres.ca_file:  # else the stack's own CA, which no pod has
        return [f"{name}: no KAPPA_POSTGRES__CA_FILE"]
    ca = PurePosixPath(params["sslrootcert"])
    if mounted_from(manifest, container, ca) == (CA_SECRET, CA_KEY):
        return []
    return [f"{name}/{container['name']}: {ca} is not {CA_SECRET}/{CA_KEY} mounted from a volume"]


def mounted_from(manifest: Manifest, container: dict[str, Any], path: PurePosixPath) -> tuple[str, str] | None:
    """(Secret, key) whose volume puts a file at `path` in the container, None if none does."""
    volumes = {v["name"]: v for v in _pod(manifest).get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        secret = volumes.get(mount["name"], {}).get("secret", {})
        if not secret:
            continue
        items = {i["path"]: i["key"] for i in secret.get("items", [])}
        key = items.get(str(path.relative_to(mount["mountPath"]))) if path.is_relative_to(mount["mountPath"]) else None
        if key is not None:
            return secret["secretName"], key
    return None


def test_every_container_of_the_manifests_runs_code_this_test_knows(manifests: list[Manifest]) -> None:
    assert {where for where, _, _ in containers(manifests)} == CODE.keys()


def test_each_container_gets_exactly_the_secrets_its_code_reads(manifests: list[Manifest], record_secrets: Any) -> None:
    seen: dict[tuple[str, str, str], set[str]] = {}
    for where, _, container in containers(manifests):
        config, env = container_config(manifests, container)
        seen[where] = needed = record_secrets(config, env, CODE[where])
        assert secret_errors(manifests, where, container, needed, config) == []
    # what the recording found, stated once in words: a job its own role (never the owner's: the ConfigMap's
    # postgres.grant_runs is off, the migrate Job grants), the lake's role, S3 and the registry; the registry
    # its role only; `roles` every role and the superuser
    config = load_config(environ={})
    pw = {role: pg_security.password_env(config, role) for role in [pg_security.OWNER, *pg_security.ROLES]}
    # S3: the writer's key pair (kappa/s3_security.py), never the admin's
    reg, s3 = config.registry, set(s3_security.key_envs(config, s3_security.WRITER))
    # a job's Python code: the registry's write role (the avro-confluent sinks register their schema)
    # ... and Kafka: its own principal's password (it creates its outputs itself), never the admin's
    kafka = {role: kafka_security.password_env(config, role) for role in kafka_security.all_roles()}
    assert seen["FlinkDeployment", "kappa-aggregate", FLINK_CONTAINER] == {
        pw["aggregate"], pw["lake"], reg.write_password_env, *s3, kafka["aggregate"]}
    assert seen["FlinkDeployment", "kappa-alerts", FLINK_CONTAINER] == {
        pw["alerts"], pw["lake"], reg.write_password_env, *s3, kafka["alerts"]}
    assert seen["Deployment", "kappa-registry", "registry"] == {
        pw["registry"], reg.password_env, reg.write_password_env, reg.read_password_env}
    assert seen["Job", "kappa-migrate", "roles"] == {*pw.values(), pg_stack.ADMIN_PASSWORD_ENV}
    assert seen["Job", "kappa-migrate", "migrate"] == {pw["owner"], kafka[kafka_security.ADMIN]}


KAFKA_CA = ("kappa-cluster-ca-cert", "ca.crt")  # Strimzi's cluster CA Secret (cluster kappa)


def test_kafka_clients_log_in_as_their_kafka_user_and_verify_the_cluster_ca(manifests: list[Manifest]) -> None:
    """Each Kafka password comes from the Secret Strimzi's User Operator makes for that principal's KafkaUser;
    a pod that talks to Kafka mounts the cluster CA where its config says; a job's Kafka tables find its own
    principal's password in the folder its config names (on every TaskManager)."""
    users = {u["metadata"]["name"] for u in _of(manifests, "KafkaUser")}
    talking = 0
    for where, manifest, container in containers(manifests):
        config, _ = container_config(manifests, container)
        envs = {kafka_security.password_env(config, role): role for role in kafka_security.all_roles()}
        roles = [envs[v["name"]] for v in _env(container) if v["name"] in envs]
        for role in roles:
            user = kafka_security.user(config, role)
            assert user in users, (where, user)
            assert _secret_key(container, kafka_security.password_env(config, role)) == (user, "password"), where
        if not roles:
            continue
        talking += 1
        assert mounted_from(manifest, container, PurePosixPath(config.kafka.ca_file)) == KAFKA_CA, where
        if where[0] == "FlinkDeployment":
            role = kafka_security.job_role(manifest["metadata"]["labels"]["kappa-iot/job"])
            password = PurePosixPath(config.kafka.credentials_dir) / "password"
            assert roles == [role] and mounted_from(manifest, container, password) == (
                kafka_security.user(config, role), "password"), where
    assert talking == 3  # both jobs and the migrate Job


def test_every_container_verifies_postgres_against_the_mounted_ca(manifests: list[Manifest]) -> None:
    for _, manifest, container in containers(manifests):
        config, _ = container_config(manifests, container)
        assert ca_errors(manifest, container, config) == []


def _secret_key(container: dict[str, Any], name: str) -> tuple[str, str] | None:
    refs = [v["valueFrom"]["secretKeyRef"] for v in _env(container) if v["name"] == name and "valueFrom" in v]
    return (refs[0]["name"], refs[0]["key"]) if refs else None


REGISTRY_KEYS = {"password_env": "password", "write_password_env": "write-password",
                 "read_password_env": "read-password"}


def test_the_java_decoder_reads_the_registry_s_read_role(manifests: list[Manifest]) -> None:
    """The Flink pods give the decoder's two fixed names the read user and the read password; the registry
    gets each role's password from the key of that role, so the users and passwords match."""
    for where, _, container in containers(manifests):
        config, env = container_config(manifests, container)
        if where[0] == "FlinkDeployment":
            assert env.get(REGISTRY_USER_ENV) == config.registry.read_user, where
            assert _secret_key(container, REGISTRY_PASSWORD_ENV) == (REGISTRY_SECRET, "read-password"), where
            assert _secret_key(container, config.registry.write_password_env) == (REGISTRY_SECRET, "write-password")
        elif where == ("Deployment", "kappa-registry", "registry"):
            for field, key in REGISTRY_KEYS.items():
                assert _secret_key(container, getattr(config.registry, field)) == (REGISTRY_SECRET, key), field


def _container(doc: Manifest, name: str) -> dict[str, Any]:
    return next(c for where, _, c in containers([doc]) if where[2] == name)


def _drop_env(name: str) -> Callable[[Manifest, str], None]:
    def apply(doc: Manifest, container: str) -> None:
        c = _container(doc, container)
        c["env"] = [v for v in c["env"] if v["name"] != name]
    return apply


def _add_ref(name: str, secret: str, key: str) -> Callable[[Manifest, str], None]:
    def apply(doc: Manifest, container: str) -> None:
        ref = {"secretKeyRef": {"name": secret, "key": key}}
        _container(doc, container)["env"].append({"name": name, "valueFrom": ref})
    return apply


def _set_key(name: str, key: str) -> Callable[[Manifest, str], None]:
    def apply(doc: Manifest, container: str) -> None:
        var = next(v for v in _container(doc, container)["env"] if v["name"] == name)
        var["valueFrom"]["secretKeyRef"]["key"] = key
    return apply


BROKEN_SECRETS: dict[str, tuple[str, str, Callable[[Manifest, str], None], str]] = {
    "job without its role": ("kappa-aggregate", FLINK_CONTAINER, _drop_env("KAPPA_PG_AGGREGATE_PASSWORD"), "not given"),
    "job without the registry": ("kappa-alerts", FLINK_CONTAINER, _drop_env("KAPPA_REGISTRY_WRITE_PASSWORD"),
                                 "not given"),
    "registry without a role": ("kappa-registry", "registry", _drop_env("KAPPA_REGISTRY_READ_PASSWORD"), "not given"),
    "job without the lake": ("kappa-alerts", FLINK_CONTAINER, _drop_env("KAPPA_PG_LAKE_PASSWORD"), "not given"),
    "registry with the owner": ("kappa-registry", "registry", _add_ref("KAPPA_PG_PASSWORD", PG_SECRET, "owner"),
                                "never read"),
    "job with another role": ("kappa-aggregate", FLINK_CONTAINER,
                              _add_ref("KAPPA_PG_ALERTS_PASSWORD", PG_SECRET, "alerts"), "never read"),
    "swapped keys": ("kappa-alerts", FLINK_CONTAINER, _set_key("KAPPA_PG_ALERTS_PASSWORD", "aggregate"), "not kappa"),
    "roles without one role": ("kappa-migrate", "roles", _drop_env("KAPPA_PG_MONITOR_PASSWORD"), "not given"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_SECRETS))
def test_a_secret_missing_extra_or_swapped_is_found(case: str, manifests: list[Manifest], record_secrets: Any) -> None:
    name, container_name, breaks, expected = BROKEN_SECRETS[case]
    (doc,) = [copy.deepcopy(m) for m in manifests if m.get("metadata", {}).get("name") == name and "spec" in m
              and m["kind"] in ("FlinkDeployment", "Deployment", "Job")]
    breaks(doc, container_name)
    ((where, _, container),) = [c for c in containers([doc]) if c[0][2] == container_name]
    config, env = container_config(manifests, container)
    errors = secret_errors(manifests, where, container, record_secrets(config, env, CODE[where]), config)
    assert errors and expected in "\n".join(errors), errors


BROKEN_CA: dict[str, Callable[[Manifest], None]] = {
    "no mount": lambda doc: _pod(doc)["containers"][0].pop("volumeMounts"),
    "another Secret": lambda doc: _pod(doc)["volumes"][0]["secret"].update(secretName="kappa-postgres"),
    "another path": lambda doc: _pod(doc)["containers"][0]["volumeMounts"][0].update(mountPath="/etc/ca"),
    "another key": lambda doc: _pod(doc)["volumes"][0]["secret"]["items"][0].update(key="tls.crt"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_CA))
def test_a_ca_not_mounted_where_the_config_says_is_found(case: str, manifests: list[Manifest]) -> None:
    for kind in ("FlinkDeployment", "Deployment", "Job"):
        doc = copy.deepcopy(_of(manifests, kind)[0])
        container = _pod(doc)["containers"][0]
        config, _ = container_config(manifests, container)
        assert ca_errors(doc, container, config) == []
        unverified = config.model_copy(update={"postgres": config.postgres.model_copy(update={"sslmode": "require"})})
        assert ca_errors(doc, container, unverified)
        BROKEN_CA[case](doc)
        assert ca_errors(doc, container, config), (case, kind)


@pytest.fixture
def manifests() -> list[Manifest]:
    return [doc for _, doc in load_manifests()]
