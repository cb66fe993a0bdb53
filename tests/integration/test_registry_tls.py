"""The stack's schema registry over TLS: HTTPS only, a certificate from the stack's CA, and every kind of
client refused unless it verifies against that CA (that they work when they do: every other registry test).
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from cryptography import x509

from kappa import waiting
from kappa.config import PROJECT_ROOT, Config
from kappa.registry import READ, ca_file, client_conf, credentials, session, tls
from kappa.registry.http import VerifyingSession
from kappa.stack.mosquitto import tls_files
from kappa.stack.mqtt_tls import ensure_tls, issue_server_cert
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def registry_with(stack: Config, cert: Path, key: Path) -> Iterator[str]:
    """Another `python -m kappa.registry` of the stack's, serving `cert`; its URL once it accepts connections."""
    port = _free_port()
    env = {**os.environ, "KAPPA_PROFILE": stack.profile, "KAPPA_REGISTRY__CERT_FILE": str(cert),
           "KAPPA_REGISTRY__KEY_FILE": str(key)}
    proc = subprocess.Popen([sys.executable, "-m", "kappa.registry", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, cwd=PROJECT_ROOT, stderr=subprocess.DEVNULL)
    try:
        def listening() -> bool:
            assert proc.poll() is None, f"the registry exited with {proc.returncode}"
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True

        waiting.wait_until(listening, timeout_s=30, interval_s=0.2, what="the second registry",
                           retry_on=(ConnectionRefusedError,))
        yield f"https://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def test_a_certificate_of_the_stack_s_ca_for_another_name_is_refused(stack: Config, tmp_path: Path) -> None:
    """Clients check the host name, not only the CA: a certificate the stack's own CA issued for another host
    (what any other service of the stack holds) does not pass for the registry's."""
    cert, key = tmp_path / "elsewhere.crt", tmp_path / "elsewhere.key"
    issue_server_cert(tls_files(stack), cert, key, ["registry.elsewhere.example"])
    auth = credentials(stack, READ)
    with registry_with(stack, cert, key) as url:
        with pytest.raises(requests.exceptions.SSLError, match="match|mismatch"):
            VerifyingSession(ca_file(stack)).get(f"{url}/subjects", auth=auth, timeout=5)
        with pytest.raises(SchemaRegistryUnavailable, match="unreachable"):
            RegistrySchemaLookup(url, auth=auth, verify=ca_file(stack))(1)
        client = SchemaRegistryClient({**client_conf(stack, READ), "url": url})
        with pytest.raises(Exception) as info:
            client.get_subjects()
        assert not isinstance(info.value, SchemaRegistryError) and "CERTIFICATE_VERIFY_FAILED" in str(info.value)


SINK = """CREATE TABLE {name} (v STRING NOT NULL) WITH (
  'connector' = 'kafka', 'topic' = '{topic}',
  'properties.bootstrap.servers' = '${{kafka_bootstrap}}', ${{kafka_security}}
  'format' = 'avro-confluent',
  'avro-confluent.url' = '{url}',
  'avro-confluent.ssl.truststore.location' = '${{registry_ca_file}}',
  'avro-confluent.properties.schema.registry.ssl.truststore.type' = 'PEM',
  'avro-confluent.properties.schema.registry.ssl.endpoint.identification.algorithm' = 'https',
  'avro-confluent.basic-auth.credentials-source' = 'USER_INFO',
  'avro-confluent.basic-auth.user-info' = '${{registry_user_info}}',
  'avro-confluent.subject' = '{topic}-value'
)"""


def test_the_flink_avro_confluent_sink_verifies_the_registry(stack: Config, tmp_path: Path) -> None:
    """The options of sql/*/sinks.sql in a Flink job: a write through the stack's registry succeeds (the JVM's
    default trust store would refuse it, so the PEM truststore is what is used); through a registry holding a
    certificate of the same CA for another name it fails (the host name is checked)."""
    from kappa import flinkenv, sqlfiles
    from kappa.stack import kafka_setup

    topic = f"registry-tls-{os.getpid()}"
    kafka_setup.ensure_topics(stack, [topic])  # auto-create is off
    options = flinkenv.JobOptions(parallelism=1, flink={"restart-strategy.type": "none"})
    _, t_env = flinkenv.create_table_env(stack, options)
    params = flinkenv.sql_params(stack, options)
    t_env.execute_sql(sqlfiles.render(SINK.format(name="good", topic=topic, url=stack.registry.url), params))
    t_env.execute_sql("INSERT INTO good VALUES ('over TLS')").wait()
    with session(stack, READ) as http:
        assert http.get(f"{stack.registry.url}/subjects/{topic}-value/versions", timeout=5).json() == [1]

    cert, key = tmp_path / "elsewhere.crt", tmp_path / "elsewhere.key"
    issue_server_cert(tls_files(stack), cert, key, ["registry.elsewhere.example"])
    with registry_with(stack, cert, key) as url:
        t_env.execute_sql(sqlfiles.render(SINK.format(name="misnamed", topic=topic, url=url), params))
        with pytest.raises(Exception) as info:
            t_env.execute_sql("INSERT INTO misnamed VALUES ('refused')").wait()
    refusals = ("SSLHandshakeException", "SSLPeerUnverifiedException", "HTTPS hostname wrong")
    assert any(refusal in str(info.value) for refusal in refusals), str(info.value)[-3000:]
