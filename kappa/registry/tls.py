"""The registry's TLS: the server's certificate and context, and the CA every client verifies it against.

The registry serves HTTPS only. On the local stack its certificate is issued by the stack's CA (the one of
MQTT, Kafka, PostgreSQL and weed, `kappa.stack.mqtt_tls`), for the configured host, 127.0.0.1 and
localhost, so a client that trusts that one CA file verifies the registry's name as well. An external or
Kubernetes deployment names its own files (`registry.cert_file`, `key_file`, `ca_file`).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from kappa.config import Config
from kappa.errors import KappaError


class RegistryTlsError(KappaError):
    """The registry's certificate or key is missing or unusable."""


def ca_path(config: Config) -> Path:
    """The CA clients trust for the registry: `registry.ca_file`, else the stack's own."""
    if config.registry.ca_file:
        return Path(config.registry.ca_file)
    from kappa.stack.mosquitto import ca_file  # the one CA of the local stack

    return ca_file(config)


def server_files(config: Config) -> tuple[Path, Path]:
    """(certificate, key) the server serves: the configured files, else those `stack up` issues."""
    registry = config.registry
    folder = config.data_dir / "registry" / "tls"
    cert = Path(registry.cert_file) if registry.cert_file else folder / "server.crt"
    key = Path(registry.key_file) if registry.key_file else folder / "server.key"
    return cert, key


def issue(config: Config) -> tuple[Path, Path]:
    """The local stack's registry certificate (key mode 600), signed by the stack's CA, unless it exists.

    Configured files are left alone: whoever set `registry.cert_file` provides them."""
    from kappa.stack.mosquitto import tls_files
    from kappa.stack.mqtt_tls import ensure_tls, issue_server_cert

    cert, key = server_files(config)
    if not (config.registry.cert_file or config.registry.key_file):
        ca = ensure_tls(tls_files(config).folder, [config.mqtt.host, "127.0.0.1", "localhost"])
        issue_server_cert(ca, cert, key, [config.registry.host, "127.0.0.1", "localhost"])
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side context: TLS 1.2 or newer, no client certificate (clients log in with basic auth)."""
    if not cert.exists() or not key.exists():
        raise RegistryTlsError(f"registry: no TLS certificate at {cert} / key at {key} "
                               "(`kappa stack up` issues them; or set registry.cert_file and key_file)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise RegistryTlsError(f"registry: cannot load {cert} / {key}: {exc}") from exc
    return context
