"""deploy/k8s/ validated offline, since no cluster runs here.

Custom resources are checked against their operators' real CRD schemas: the Flink Kubernetes
Operator's API jar and Strimzi's CRDs generated from its api jar, both fetched from Maven Central by
`make setup` (deploy/k8s/crds/pom.xml) into .kappa/crds. Unknown fields are errors, as with kubectl's
strict field validation. Core kinds have no schema here: pod templates are checked against the Pod
schema the Flink CRD embeds, the rest by hand (names, references). The manifests are also checked
against the project itself: the KAPPA_* overrides load into its config, every topic it names exists
with the whole log kept, every secret-looking variable comes from a Secret, and every
flinkConfiguration key is an option of Flink 2.0 (the option classes of the installed PyFlink's jars).
Which secrets each container needs, and PostgreSQL's CA, are checked against the code in
tests/unit/test_k8s_secrets.py.
"""

from __future__ import annotations

import copy
import re
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from kappa import flinkenv
from kappa.config import PROJECT_ROOT, Config, load_config
from kappa.flinkenv import JobOptions, flink_settings

pytestmark = pytest.mark.unit

K8S_DIR = PROJECT_ROOT / "deploy" / "k8s"
CRDS_DIR = PROJECT_ROOT / ".kappa" / "crds"
Manifest = dict[str, Any]
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the CRDs are 1 MB of YAML
Schemas = dict[tuple[str, str], dict[str, Any]]
# Operator 1.10.0 is the newest API jar Maven Central serves here; 1.11 added Flink 2.0 as v2_0 to the
# flinkVersion enum, and that is the only change made to its schema (see `_allow_flink_2`).
FLINK_2 = "v2_0"
POD_TEMPLATE_OF = ("flink.apache.org/v1beta1", "FlinkDeployment")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|SECRET_KEY")
CORE_KINDS = {("v1", "ConfigMap"), ("v1", "ServiceAccount"), ("v1", "Service"), ("apps/v1", "Deployment"),
              ("batch/v1", "Job"), ("rbac.authorization.k8s.io/v1", "Role"),
              ("rbac.authorization.k8s.io/v1", "RoleBinding")}
WORKLOADS = ("Deployment", "Job")  # core kinds with a pod template


# --- the CRD schemas -------------------------------------------------------------------------------

def _strict(schema: Any) -> None:
    """Objects with declared properties accept no other field (kubectl --validate=strict)."""
    if isinstance(schema, list):
        for item in schema:
            _strict(item)
        return
    if not isinstance(schema, dict):
        return
    if ("properties" in schema and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        schema["additionalProperties"] = False
    for key in ("properties", "patternProperties"):
        for sub in schema.get(key, {}).values():
            _strict(sub)
    for key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
        if key in schema:
            _strict(schema[key])


def _allow_flink_2(schema: dict[str, Any]) -> None:
    enum = schema["properties"]["spec"]["properties"]["flinkVersion"]["enum"]
    assert "v1_20" in enum, enum
    if FLINK_2 not in enum:
        enum.append(FLINK_2)


def _crd_documents() -> Iterator[dict[str, Any]]:
    jars = sorted((CRDS_DIR / "lib").glob("flink-kubernetes-operator-api-*.jar"))
    strimzi = sorted((CRDS_DIR / "strimzi").glob("*.yaml"))
    assert jars and len(strimzi) == 4, f"CRD schemas missing in {CRDS_DIR}: run `make setup`"
    with zipfile.ZipFile(jars[-1]) as jar:
        for name in jar.namelist():
            if name.startswith("META-INF/fabric8/") and name.endswith("-v1.yml"):
                yield yaml.load(jar.read(name), Loader=LOADER)
    for path in strimzi:
        yield yaml.load(path.read_text(), Loader=LOADER)


def load_schemas() -> Schemas:
    """(apiVersion, kind) -> the openAPIV3Schema of that served version, made strict."""
    schemas: Schemas = {}
    for crd in _crd_documents():
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1", crd["apiVersion"]
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("served", True):
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                if spec["names"]["kind"] == "FlinkDeployment":
                    _allow_flink_2(schema)
                schemas[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    # The API server adds the fields every object has; metadata is the ObjectMeta of the Pod schema
    # the Flink CRD embeds (fabric8's, from the Kubernetes model).
    object_meta = schemas[POD_TEMPLATE_OF]["properties"]["spec"]["properties"]["podTemplate"]["properties"]["metadata"]
    for schema in schemas.values():
        schema["properties"].update(apiVersion={"type": "string"}, kind={"type": "string"}, metadata=object_meta)
        _strict(schema)
    return schemas


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return load_schemas()


# --- the manifests --------------------------------------------------------------------------------

def load_manifests() -> list[tuple[Path, Manifest]]:
    manifests = []
    for path in sorted(K8S_DIR.rglob("*.yaml")):
        if path.is_relative_to(K8S_DIR / "crds") or path.name == "kustomization.yaml":
            continue
        manifests += [(path, doc) for doc in yaml.load_all(path.read_text(), Loader=LOADER) if doc is not None]
    return manifests


@pytest.fixture
def manifests() -> list[Manifest]:
    return [doc for _, doc in load_manifests()]


def _of(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m.get("kind") == kind]


def _env(container: dict[str, Any]) -> list[dict[str, Any]]:
    return list(container.get("env", []))


def _pod_specs(manifest: Manifest) -> list[dict[str, Any]]:
    if manifest["kind"] == "FlinkDeployment":
        return [manifest["spec"]["podTemplate"]["spec"]]
    if manifest["kind"] in WORKLOADS:
        return [manifest["spec"]["template"]["spec"]]
    return []


def validation_errors(manifest: Manifest, schemas: Schemas) -> list[str]:
    """Why `manifest` would be refused; [] when it validates."""
    key = (manifest.get("apiVersion", ""), manifest.get("kind", ""))
    name = manifest.get("metadata", {}).get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name):
        return [f"{key}: metadata.name {name!r} is not a Kubernetes name"]
    if key in schemas:
        validator = jsonschema.Draft7Validator(schemas[key])
        errors = [f"{key[1]}/{name} {'.'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator.iter_errors(manifest)]
    elif key in CORE_KINDS:
        errors = []
    else:
        return [f"{key[1]}/{name}: no schema for apiVersion {key[0]!r} kind {key[1]!r}"]
    pod = schemas[POD_TEMPLATE_OF]["properties"]["spec"]["properties"]["podTemplate"]
    if key in CORE_KINDS:  # their own schemas are not here: the metadata at least
        validator = jsonschema.Draft7Validator(pod["properties"]["metadata"])
        errors += [f"{key[1]}/{name} metadata: {e.message}" for e in validator.iter_errors(manifest["metadata"])]
    if manifest["kind"] in WORKLOADS:  # the pod template against the Pod schema the Flink CRD embeds
        template = manifest["spec"]["template"]
        validator = jsonschema.Draft7Validator(pod)
        errors += [f"{key[1]}/{name} template {'.'.join(map(str, e.absolute_path))}: {e.message}"
                   for e in validator.iter_errors(template)]
    if manifest["kind"] == "Deployment":
        template = manifest["spec"]["template"]
        if manifest["spec"]["selector"]["matchLabels"].items() - template["metadata"]["labels"].items():
            errors.append(f"Deployment/{name}: the selector does not match the pod template's labels")
    for spec in _pod_specs(manifest):
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            for var in _env(container):
                if SECRET_NAME.search(var["name"]) and "secretKeyRef" not in var.get("valueFrom", {}):
                    errors.append(f"{key[1]}/{name}: {var['name']} must come from a Secret (secretKeyRef)")
    if manifest["kind"] == "Secret":
        errors.append(f"Secret/{name}: secrets are created in the cluster, never written in deploy/k8s")
    return errors


def test_every_manifest_validates_against_its_schema(schemas: Schemas) -> None:
    found = load_manifests()
    kinds = {doc["kind"] for _, doc in found}
    assert {"FlinkDeployment", "Kafka", "KafkaNodePool", "KafkaTopic"} <= kinds
    errors = [f"{path.relative_to(K8S_DIR)}: {e}" for path, doc in found for e in validation_errors(doc, schemas)]
    assert errors == []


def _mutate(path: tuple[Any, ...], value: Any) -> Callable[[Manifest], None]:
    def apply(doc: Manifest) -> None:
        target = doc
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
    return apply


BROKEN: dict[str, tuple[str, Callable[[Manifest], None], str]] = {
    "misspelt field": ("FlinkDeployment", _mutate(("spec", "jobManager", "replica"), 2), "replica"),
    "wrong type": ("FlinkDeployment", _mutate(("spec", "job", "parallelism"), "two"), "parallelism"),
    "unknown upgrade mode": ("FlinkDeployment", _mutate(("spec", "job", "upgradeMode"), "keep-state"), "upgradeMode"),
    "unknown Flink version": ("FlinkDeployment", _mutate(("spec", "flinkVersion"), "v3_0"), "flinkVersion"),
    "bad pod field": ("FlinkDeployment", _mutate(("spec", "podTemplate", "spec", "containers", 0, "envFrom"),
                                                 [{"configMap": {"name": "x"}}]), "envFrom"),
    "literal secret": ("FlinkDeployment", _mutate(("spec", "podTemplate", "spec", "containers", 0, "env", 3),
                                                  {"name": "KAPPA_PG_PASSWORD", "value": "hunter2"}),
                       "must come from a Secret"),
    "no partitions": ("KafkaTopic", _mutate(("spec", "partitions"), 0), "partitions"),
    "unknown node role": ("KafkaNodePool", _mutate(("spec", "roles"), ["leader"]), "roles"),
    "unknown Kafka field": ("Kafka", _mutate(("spec", "kafka", "listener"), []), "listener"),
    "unknown apiVersion": ("Kafka", _mutate(("apiVersion",), "kafka.strimzi.io/v9"), "no schema"),
    "bad name": ("KafkaTopic", _mutate(("metadata", "name"), "aggregates_1m"), "not a Kubernetes name"),
    "core pod field": ("Deployment", _mutate(("spec", "template", "spec", "containers", 0, "port"), 8081), "port"),
    "bad restart policy": ("Job", _mutate(("spec", "template", "spec", "restartPolicy"), 5), "restartPolicy"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_manifest_is_refused(case: str, schemas: Schemas, manifests: list[Manifest]) -> None:
    kind, breaks, expected = BROKEN[case]
    doc = copy.deepcopy(_of(manifests, kind)[0])
    assert validation_errors(doc, schemas) == []
    breaks(doc)
    errors = validation_errors(doc, schemas)
    assert errors and expected in "\n".join(errors), errors


# --- the manifests against the project ------------------------------------------------------------

def _literal_env(manifests: list[Manifest], deployment: Manifest) -> dict[str, str]:
    """The environment a job's pods get, secrets left out: the ConfigMap, then the literal env."""
    container = deployment["spec"]["podTemplate"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        config_map = next(m for m in _of(manifests, "ConfigMap")
                          if m["metadata"]["name"] == source["configMapRef"]["name"])
        env.update(config_map["data"])
    env.update({v["name"]: v["value"] for v in _env(container) if "value" in v})
    return env


def _job_config(manifests: list[Manifest], deployment: Manifest) -> Config:
    return load_config(environ=_literal_env(manifests, deployment))


def test_each_job_gets_a_valid_config_with_checkpoints_on_s3(manifests: list[Manifest],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flinkenv, "pipeline_jars_value", lambda config: "file:///opt/kappa/.kappa/jars/x.jar")
    deployments = _of(manifests, "FlinkDeployment")
    assert {d["metadata"]["labels"]["kappa-iot/job"] for d in deployments} == {"aggregate", "alerts"}
    for deployment in deployments:
        spec, job = deployment["spec"], deployment["metadata"]["labels"]["kappa-iot/job"]
        config = _job_config(manifests, deployment)  # an unknown or mistyped KAPPA_* key raises here
        settings = flink_settings(config, JobOptions())
        flink_conf = spec["flinkConfiguration"]
        assert settings["execution.checkpointing.dir"] == flink_conf["execution.checkpointing.dir"]
        for key in ("execution.checkpointing.dir", "execution.checkpointing.savepoint-dir",
                    "high-availability.storageDir"):
            assert flink_conf[key].startswith(f"s3://kappa-flink/{job}/"), key
        assert flink_conf["high-availability.type"] == "kubernetes"
        assert settings["parallelism.default"] == str(spec["job"]["parallelism"])
        assert spec["job"]["upgradeMode"] == "last-state"
        args = spec["job"]["args"]
        script = args[args.index("-py") + 1]
        assert (PROJECT_ROOT / Path(script).relative_to("/opt/kappa")) == PROJECT_ROOT / "jobs" / f"{job}.py"
        assert flink_conf["python.executable"] == args[args.index("-pyclientexec") + 1]
        assert spec["serviceAccount"] in {m["metadata"]["name"] for m in _of(manifests, "ServiceAccount")}


def test_the_image_and_the_manifests_name_the_projects_flink_version(manifests: list[Manifest]) -> None:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    flink = next(d.split("==")[1] for d in pyproject["project"]["dependencies"] if d.startswith("apache-flink=="))
    dockerfile = (K8S_DIR / "Dockerfile").read_text()
    assert f"ARG FLINK_VERSION={flink}\n" in dockerfile
    for deployment in _of(manifests, "FlinkDeployment"):
        env = {v["name"]: v.get("value") for v in _env(deployment["spec"]["podTemplate"]["spec"]["containers"][0])}
        assert env["ENABLE_BUILT_IN_PLUGINS"] == f"flink-s3-fs-presto-{flink}.jar"
        assert deployment["spec"]["flinkVersion"] == "v" + "_".join(flink.split(".")[:2])


def test_every_topic_of_the_project_exists_and_keeps_its_whole_log(manifests: list[Manifest]) -> None:
    config = _job_config(manifests, _of(manifests, "FlinkDeployment")[0])
    kafka = config.kafka
    needed = {kafka.telemetry_topic, kafka.dead_letter_topic, kafka.edge_dead_letter_topic, kafka.aggregates_topic,
              kafka.alerts_topic, kafka.rules_topic, kafka.devices_topic, f"{kafka.telemetry_topic}-late"}
    (cluster,) = _of(manifests, "Kafka")
    (pool,) = _of(manifests, "KafkaNodePool")
    name = cluster["metadata"]["name"]
    assert kafka.host == f"{name}-kafka-bootstrap"
    broker = cluster["spec"]["kafka"]["config"]
    assert pool["spec"]["replicas"] == 3 and pool["metadata"]["labels"]["strimzi.io/cluster"] == name
    assert broker["min.insync.replicas"] == 2 and broker["default.replication.factor"] == 3
    assert broker["log.retention.ms"] == -1 and broker["auto.create.topics.enable"] is False
    topics = {t["spec"]["topicName"]: t for t in _of(manifests, "KafkaTopic")}
    assert needed <= topics.keys(), needed - topics.keys()
    for topic in topics.values():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == name
        assert topic["spec"]["config"]["retention.ms"] == -1
        assert topic["spec"]["config"]["cleanup.policy"] == "delete"
        assert topic["spec"]["replicas"] == 3
    assert topics[kafka.rules_topic]["spec"]["partitions"] == 1  # versions read in order (reference_log)
    assert topics[kafka.telemetry_topic]["spec"]["partitions"] == kafka.partitions


def test_kustomization_lists_every_manifest_and_the_references_resolve(manifests: list[Manifest]) -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    listed = {K8S_DIR / r for r in kustomization["resources"]}
    assert listed == {path for path, _ in load_manifests()}
    names = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    for binding in _of(manifests, "RoleBinding"):
        assert (binding["roleRef"]["kind"], binding["roleRef"]["name"]) in names
        assert all(("ServiceAccount", s["name"]) in names for s in binding["subjects"])
    for service in _of(manifests, "Service"):
        selected = [d for d in _of(manifests, "Deployment")
                    if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert selected, service["metadata"]["name"]


def _flink_option_keys_blob() -> bytes:
    """The constant pools of Flink 2.0's option classes, from the installed PyFlink's own jars."""
    import pyflink

    home = Path(pyflink.__file__).parent
    jars = [*home.glob("lib/flink-dist-*.jar"), *home.glob("lib/flink-table-api-java-uber-*.jar"),
            *home.glob("opt/flink-python-*.jar"), *home.glob("plugins/metrics-prometheus/*.jar")]
    assert len(jars) == 4, jars
    blob = bytearray()
    for path in jars:
        with zipfile.ZipFile(path) as jar:
            for name in jar.namelist():
                if name.endswith(".class") and "Option" in name.rsplit("/", 1)[-1]:
                    blob += jar.read(name)
    return bytes(blob)


def unknown_flink_keys(conf: dict[str, str], blob: bytes) -> list[str]:
    """Keys of a flinkConfiguration that no Flink 2.0 option class declares (a CONSTANT_Utf8 entry)."""
    unknown = []
    reporters = conf.get("metrics.reporters", "").split(",")
    for key in conf:
        option = key
        match = re.fullmatch(r"metrics\.reporter\.([^.]+)\.(.+)", key)
        if match:  # a reporter's own option: its name must be declared, the option is the reporter's
            option = match.group(2) if match.group(1) in reporters else key
        if b"\x01" + len(option).to_bytes(2, "big") + option.encode() not in blob:
            unknown.append(key)
    return unknown


def test_every_flink_configuration_key_is_an_option_of_flink_2(manifests: list[Manifest]) -> None:
    """The CRD takes any string map: a misspelt key would be ignored by Flink, silently."""
    blob = _flink_option_keys_blob()
    for deployment in _of(manifests, "FlinkDeployment"):
        conf = deployment["spec"]["flinkConfiguration"]
        assert unknown_flink_keys(conf, blob) == []
        broken = {**conf, "high-availability.storagedir": "s3://x", "metrics.reporter.push.port": "1",
                  "taskmanager.numberOfTaskslots": "1"}  # typos, and a reporter not in metrics.reporters
        assert unknown_flink_keys(broken, blob) == ["high-availability.storagedir", "metrics.reporter.push.port",
                                                    "taskmanager.numberOfTaskslots"]

