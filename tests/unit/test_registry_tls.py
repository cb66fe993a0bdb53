"""The registry over TLS (kappa/registry/tls.py, server.py): HTTPS only, and every client verifies it.

The server runs in this process on a throw-away CA; the clients are the project's own (the `requests`
session helper, confluent-kafka's SchemaRegistryClient through `client_conf`, the Python schema lookup).
"""

from __future__ import annotations

import re
import ssl
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509

from kappa import sqlfiles, waiting
from kappa.config import Config, load_config
from kappa.registry import ADMIN, READ, ca_file, client_conf, session, tls
from kappa.registry.http import VerifyingSession
from kappa.stack.mosquitto import ca_file as stack_ca
from tests.unit.registry_tls_support import Served, make_ca, serve
from udfs.schema_lookup import RegistrySchemaLookup, SchemaRegistryUnavailable

with warnings.catch_warnings(record=True):  # authlib warns about httpx on import
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError

pytestmark = pytest.mark.unit

CREDS = {ADMIN: ("boss", "b-pw")}


class _Schemas:
    """The one store call a GET /schemas/ids/{id} makes."""

    def schema_by_id(self, schema_id: int) -> tuple[str, str] | None:
        return ('"string"', "AVRO") if schema_id == 1 else None

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected store call {name}")


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[Served]:
    with serve(tmp_path, _Schemas(), CREDS) as server:
        yield server


def _config(tmp_path: Path, **environ: str) -> Config:
    return load_config("test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path), **environ})


def test_the_url_is_https_and_the_ca_is_the_stack_s_unless_set(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path)
    monkeypatch.setenv(config.registry.password_env, "pw")
    assert config.registry.url.startswith("https://")
    assert ca_file(config) == str(stack_ca(config)) == client_conf(config, READ)["ssl.ca.location"]
    external = _config(tmp_path, KAPPA_REGISTRY__CA_FILE="/etc/registry-ca.pem")
    assert ca_file(external) == "/etc/registry-ca.pem" == client_conf(external, READ)["ssl.ca.location"]
    assert tls.server_files(config) == (tmp_path / "registry/tls/server.crt", tmp_path / "registry/tls/server.key")


def test_plain_http_is_refused(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.get(served.url.replace("https://", "http://") + "/schemas/ids/1", auth=CREDS[ADMIN], timeout=5)
    log: list[str] = []  # the server logs the refusal in its own thread, after closing the connection

    def logged() -> bool:
        log.append(capsys.readouterr().err)
        return "TLS handshake failed" in "".join(log)

    waiting.wait_until(logged, timeout_s=10, interval_s=0.05, what="the refusal in the registry's log")


def test_a_client_trusting_another_ca_is_refused(served: Served, tmp_path: Path) -> None:
    foreign = str(make_ca(tmp_path / "foreign"))
    with pytest.raises(requests.exceptions.SSLError):
        VerifyingSession(foreign).get(f"{served.url}/schemas/ids/1", auth=CREDS[ADMIN], timeout=5)
    with pytest.raises(SchemaRegistryUnavailable, match="unreachable"):
        RegistrySchemaLookup(served.url, auth=CREDS[ADMIN], verify=foreign)(1)
    client = SchemaRegistryClient({"url": served.url, "basic.auth.user.info": "boss:b-pw", "ssl.ca.location": foreign})
    with pytest.raises(Exception) as info:  # httpx's ConnectError: the handshake fails, no HTTP status
        client.get_schema(1)
    assert not isinstance(info.value, SchemaRegistryError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)


def test_the_project_s_clients_verify_and_work(served: Served, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Each client over TLS against the right CA, with a CA bundle in the environment that does not
    contain it (requests would let REQUESTS_CA_BUNDLE override a session's `verify`)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(make_ca(tmp_path / "bundle")))
    port = served.url.rsplit(":", 1)[1]
    config = _config(tmp_path, KAPPA_REGISTRY__PORT=port, KAPPA_REGISTRY__CA_FILE=str(served.ca))
    monkeypatch.setenv(config.registry.user_env, CREDS[ADMIN][0])
    monkeypatch.setenv(config.registry.password_env, CREDS[ADMIN][1])
    assert config.registry.url == served.url
    with session(config, ADMIN) as http:
        assert http.get(f"{config.registry.url}/schemas/ids/1", timeout=5).json() == {"schema": '"string"'}
    assert RegistrySchemaLookup(config.registry.url, auth=CREDS[ADMIN], verify=ca_file(config))(1) == '"string"'
    assert SchemaRegistryClient(client_conf(config, ADMIN)).get_schema(1).schema_str == '"string"'


def test_the_server_needs_its_certificate(tmp_path: Path) -> None:
    with pytest.raises(tls.RegistryTlsError, match="no TLS certificate"):
        tls.server_context(tmp_path / "server.crt", tmp_path / "server.key")
    (tmp_path / "server.crt").write_text("not a certificate")
    (tmp_path / "server.key").write_text("not a key")
    with pytest.raises(tls.RegistryTlsError, match="cannot load"):
        tls.server_context(tmp_path / "server.crt", tmp_path / "server.key")


def test_the_stack_issues_a_certificate_from_its_ca(tmp_path: Path) -> None:
    config = _config(tmp_path)
    cert, key = tls.issue(config)
    assert key.stat().st_mode & 0o777 == 0o600
    assert isinstance(tls.server_context(cert, key), ssl.SSLContext)
    served = x509.load_pem_x509_certificate(cert.read_bytes())
    # signed by the stack's CA (the one MQTT, Kafka and PostgreSQL use), for the names clients dial
    served.verify_directly_issued_by(x509.load_pem_x509_certificate(stack_ca(config).read_bytes()))
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert tls.issue(config) == (cert, key) and x509.load_pem_x509_certificate(cert.read_bytes()) == served  # kept


AVRO_TABLE = re.compile(r"CREATE TABLE (\w+).*?\)\s*WITH\s*\((.*?)\n\);", re.S)


@pytest.mark.parametrize("path", sorted(sqlfiles.SQL_DIR.rglob("*.sql")), ids=lambda p: p.name)
def test_every_avro_confluent_table_verifies_the_registry(path: Path) -> None:
    """A table with the avro-confluent format without the truststore would fail its first write only."""
    for name, options in AVRO_TABLE.findall(path.read_text()):
        for prefix in sorted(set(re.findall(r"'((?:\w+\.)?)avro-confluent\.url'", options))):
            wanted = [f"'{prefix}avro-confluent.ssl.truststore.location' = '${{registry_ca_file}}'",
                      f"'{prefix}avro-confluent.properties.schema.registry.ssl.truststore.type' = 'PEM'",
                      f"'{prefix}avro-confluent.properties.schema.registry.ssl.endpoint.identification.algorithm'"
                      " = 'https'"]
            for option in wanted:
                assert option in options, f"{path.name} {name}: missing {option}"


def test_the_ca_placeholder_is_the_client_ca(tmp_path: Path) -> None:
    config = _config(tmp_path, KAPPA_REGISTRY__CA_FILE="/etc/it's/ca.pem")
    params = sqlfiles.params_from_config(config, include_secrets=False)
    assert params.values["registry_ca_file"] == "/etc/it''s/ca.pem"  # a SQL literal's body
    assert params.values["registry_url"].startswith("https://")
