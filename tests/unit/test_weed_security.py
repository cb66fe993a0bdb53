"""SeaweedFS's generated security.toml: every JWT key, mutual TLS on gRPC and HTTPS, mode 600; and the
stack's refusal to keep weed running if its internal ports answer plain HTTP."""

from __future__ import annotations

import stat
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from kappa.config import LOCAL_SECRETS_FILE, Config, load_config, read_env_file
from kappa.stack import weed_security
from kappa.stack.manager import ensure_local_secrets
from kappa.stack.objectstore import ObjectStoreService
from kappa.stack.process import ServiceError

pytestmark = pytest.mark.unit

TLS = weed_security.WeedTls(Path("/d/ca.crt"), Path("/d/weed.crt"), Path("/d/weed.key"))


def _keys(**overrides: str) -> dict[str, str]:
    return {section: f"key-of-{section}" for section in weed_security.JWT_KEY_ENVS} | overrides


def _section(document: dict, dotted: str) -> dict:
    for part in dotted.split("."):
        document = document[part]
    return document


def test_every_jwt_key_is_set_with_its_own_value() -> None:
    document = tomllib.loads(weed_security.render(_keys(), TLS))
    for section in ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read"):
        assert _section(document, section)["key"] == f"key-of-{section}"
        assert _section(document, section)["expires_after_seconds"] == weed_security.JWT_EXPIRES_S
    assert document["access"]["ui"] is False
    assert document["filer"]["expose_directory_metadata"]["enabled"] is False


def test_grpc_and_https_are_mutual_tls_with_the_stacks_ca() -> None:
    document = tomllib.loads(weed_security.render(_keys(), TLS))
    assert document["grpc"]["ca"] == "/d/ca.crt"
    for component in ("master", "volume", "filer", "s3", "client"):
        assert document["grpc"][component] == {"cert": "/d/weed.crt", "key": "/d/weed.key"}
    for server in ("master", "volume", "filer"):  # `ca` makes the server require a client certificate
        assert document["https"][server] == {"cert": "/d/weed.crt", "key": "/d/weed.key", "ca": "/d/ca.crt"}
    assert document["https"]["client"]["enabled"] is True
    assert document["https"]["client"]["ca"] == "/d/ca.crt"


@pytest.mark.parametrize("odd", ['a"b', "back\\slash", "new\nline", "ünï", "#hash = x"])
def test_a_key_from_the_environment_is_quoted_not_spliced(odd: str) -> None:
    document = tomllib.loads(weed_security.render(_keys(**{"jwt.signing": odd}), TLS))
    assert document["jwt"]["signing"]["key"] == odd


@pytest.mark.parametrize("section", list(weed_security.JWT_KEY_ENVS))
def test_an_empty_key_is_refused_rather_than_leaving_a_port_open(section: str) -> None:
    with pytest.raises(ValueError, match=section):
        weed_security.render(_keys(**{section: ""}), TLS)


@pytest.fixture()
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    for env in weed_security.JWT_KEY_ENVS.values():
        monkeypatch.delenv(env, raising=False)
    loaded = load_config(profile="test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path)})
    ensure_local_secrets(loaded)
    return loaded


def test_the_written_file_is_private_and_holds_the_generated_keys(config: Config, tmp_path: Path) -> None:
    path = weed_security.write(config, tmp_path / "objectstore")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    generated = read_env_file(config.data_dir / LOCAL_SECRETS_FILE)
    document = tomllib.loads(path.read_text())
    keys = [_section(document, section)["key"] for section in weed_security.JWT_KEY_ENVS]
    assert keys == [generated[env] for env in weed_security.JWT_KEY_ENVS.values()]
    assert len(set(keys)) == len(keys) and all(len(key) >= 32 for key in keys)
    before = path.read_text()
    weed_security.write(config, tmp_path / "objectstore")  # a restart: same keys, same certificate
    assert path.read_text() == before


def test_weeds_certificate_is_from_the_stacks_ca_for_both_directions(config: Config, tmp_path: Path) -> None:
    tls = weed_security.ensure_certs(config, tmp_path / "tls")
    assert stat.S_IMODE(tls.key.stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(tls.ca.read_bytes())
    cert = x509.load_pem_x509_certificate(tls.cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)


def _serve(status: int, body: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(status)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize(("status", "body", "closed"), [
    (400, b"Client sent an HTTP request to an HTTPS server.\n", True),  # what weed says with security.toml
    (200, b"<html>master UI</html>", False),
    (401, b'{"error":"wrong jwt"}', False),  # JWT without TLS: the master's admin URLs stay open
])
def test_the_stack_refuses_to_run_weed_with_open_internal_ports(tmp_path: Path, status: int, body: bytes,
                                                                 closed: bool) -> None:
    servers = [_serve(status, body) for _ in range(3)]
    try:
        ports = [server.server_address[1] for server in servers]
        config = load_config(profile="test", environ={
            "KAPPA_PATHS__DATA_DIR": str(tmp_path), "KAPPA_S3__MASTER_PORT": str(ports[0]),
            "KAPPA_S3__VOLUME_PORT": str(ports[1]), "KAPPA_S3__FILER_PORT": str(ports[2])})
        service = ObjectStoreService(config)
        if closed:
            service._insist_closed()
        else:
            with pytest.raises(ServiceError, match=f"port {ports[0]} answers plain HTTP"):
                service._insist_closed()
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
