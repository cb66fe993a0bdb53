"""deploy/k8s and the registry's TLS: the registry serves the certificate of its TLS Secret, and every pod that
talks to it verifies it against the CA Secret mounted where its config (KAPPA_REGISTRY__CA_FILE) says."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from kappa.registry import ca_file, tls
from tests.unit.test_k8s_manifests import Manifest, _of, load_manifests
from tests.unit.test_k8s_secrets import _pod, container_config, containers, mounted_from

pytestmark = pytest.mark.unit

SERVER_SECRET = "kappa-registry-tls"
CA = ("kappa-registry-ca", "ca.crt")
REGISTRY = ("Deployment", "kappa-registry", "registry")


@pytest.fixture
def manifests() -> list[Manifest]:
    return [doc for _, doc in load_manifests()]


def test_the_registry_serves_the_certificate_of_its_tls_secret(manifests: list[Manifest]) -> None:
    ((_, manifest, container),) = [c for c in containers(manifests) if c[0] == REGISTRY]
    config, _ = container_config(manifests, container)
    cert, key = tls.server_files(config)  # what run_server loads
    assert mounted_from(manifest, container, PurePosixPath(cert)) == (SERVER_SECRET, "tls.crt")
    assert mounted_from(manifest, container, PurePosixPath(key)) == (SERVER_SECRET, "tls.key")
    pod = _pod(manifest)
    (volume,) = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == SERVER_SECRET]
    # the key readable by the registry's user (through its group) and nobody else
    assert volume["secret"]["defaultMode"] == 0o440 and pod["securityContext"]["fsGroup"] == pod[
        "securityContext"]["runAsUser"]
    assert "httpGet" not in container["readinessProbe"]  # the kubelet's plain GET would get a 401
    (service,) = [s for s in _of(manifests, "Service") if s["metadata"]["name"] == "kappa-registry"]
    assert [p["name"] for p in service["spec"]["ports"]] == ["https"]


def test_every_registry_client_verifies_against_the_mounted_ca(manifests: list[Manifest]) -> None:
    clients = 0
    for where, manifest, container in containers(manifests):
        config, _ = container_config(manifests, container)
        assert config.registry.url.startswith("https://"), where
        if where[0] != "FlinkDeployment":  # the jobs: avro-confluent sinks and the Java decoder
            continue
        clients += 1
        assert config.registry.ca_file, f"{where}: no KAPPA_REGISTRY__CA_FILE (the stack's CA, which no pod has)"
        assert mounted_from(manifest, container, PurePosixPath(ca_file(config))) == CA, where
    assert clients == 2
