"""The stack's schema registry over TLS: HTTPS only, a certificate from the stack's CA, and every kind of
client refused unless it verifies against that CA (that they work when they do: every other registry test).
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import requests
from cryptography import x509

from kappa import waiting
from kappa.config import PROJECT_ROOT, Config
from kappa.registry import READ, ca_file, client_conf, credentials, session, tls
from kappa.registry.http import VerifyingSession
from kappa.stack.mqtt_tls import ensure_tls
from kappa.stack.registry import RegistryService
from udfs.schema_lookup import RegistrySchemaLookup, SchemaRegistryUnavailable

with warnings.catch_warnings(record=True):  # authlib warns about httpx on import
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Another CA, made the same way as the stack's: a client trusting it must not reach the registry."""
    return str(ensure_tls(tmp_path_factory.mktemp("foreign-ca"), ["127.0.0.1"]).ca_cert)


def test_plain_http_is_refused(stack: Config) -> None:
    plain = stack.registry.url.replace("https://", "http://")
    assert plain != stack.registry.url
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{plain}/subjects", auth=credentials(stack, READ), timeout=5)
    log = RegistryService(stack).log_file
    waiting.wait_until(lambda: "TLS handshake failed" in log.read_text(), timeout_s=10, interval_s=0.2,
                       what="the refused plain-HTTP request in the registry's log")


def test_the_certificate_is_issued_by_the_stack_s_ca(stack: Config) -> None:
    served = x509.load_pem_x509_certificate(
        ssl.get_server_certificate((stack.registry.host, stack.registry.port)).encode())
    served.verify_directly_issued_by(x509.load_pem_x509_certificate(Path(ca_file(stack)).read_bytes()))
    cert, key = tls.server_files(stack)
    assert x509.load_pem_x509_certificate(cert.read_bytes()) == served
    assert key.stat().st_mode & 0o777 == 0o600


def test_clients_trusting_another_ca_are_refused(stack: Config, foreign_ca: str) -> None:
    url, auth = stack.registry.url, credentials(stack, READ)
    with pytest.raises(requests.exceptions.SSLError):
        VerifyingSession(foreign_ca).get(f"{url}/subjects", auth=auth, timeout=5)
    # the system's trust store (what a client that is not told the CA uses) does not know the stack's CA
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{url}/subjects", auth=auth, verify=True, timeout=5)
    with pytest.raises(SchemaRegistryUnavailable, match="unreachable"):
        RegistrySchemaLookup(url, auth=auth, verify=foreign_ca)(1)
    client = SchemaRegistryClient({**client_conf(stack, READ), "ssl.ca.location": foreign_ca})
    with pytest.raises(Exception) as info:  # the handshake fails: no HTTP status, no registry error
        client.get_subjects()
    assert not isinstance(info.value, SchemaRegistryError) and "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    with session(stack, READ) as http:  # and with the stack's CA, the same request is answered
        assert http.get(f"{url}/subjects", timeout=5).status_code == 200


def test_the_schema_cli_names_a_failed_verification(stack: Config, foreign_ca: str) -> None:
    env = {**os.environ, "KAPPA_PROFILE": stack.profile, "KAPPA_REGISTRY__CA_FILE": foreign_ca}
    done = subprocess.run([sys.executable, "-m", "kappa.cli", "schema", "list"], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in done.stderr and "is not reachable" in done.stderr, done.stderr


def test_a_registry_without_its_certificate_does_not_start(stack: Config, tmp_path: Path) -> None:
    env = {**os.environ, "KAPPA_PROFILE": stack.profile, "KAPPA_REGISTRY__CERT_FILE": str(tmp_path / "none.crt"),
           "KAPPA_REGISTRY__KEY_FILE": str(tmp_path / "none.key")}
    done = subprocess.run([sys.executable, "-m", "kappa.registry", "--port", "0"], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no TLS certificate" in done.stderr, done.stderr
