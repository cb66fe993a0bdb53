"""A registry HTTPS server in this process, with its own throw-away CA, for the unit tests of the HTTP layer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kappa.registry import tls
from kappa.registry.server import make_server
from kappa.stack.mqtt_tls import ensure_tls, issue_server_cert


@dataclass(frozen=True)
class Served:
    url: str
    ca: Path  # the CA that signed the server's certificate


def make_ca(folder: Path) -> Path:
    """A new CA (and the broker certificate ensure_tls makes with it); returns the CA certificate."""
    return ensure_tls(folder, ["127.0.0.1"]).ca_cert


@contextmanager
def serve(folder: Path, store: Any, auth: dict[str, tuple[str, str]] | None) -> Iterator[Served]:
    """`make_server` on a free port with a certificate for 127.0.0.1 from a CA made in `folder`."""
    ca = ensure_tls(folder / "ca", ["127.0.0.1"])
    cert, key = folder / "registry.crt", folder / "registry.key"
    issue_server_cert(ca, cert, key, ["127.0.0.1", "localhost"])
    server = make_server(store, "127.0.0.1", 0, tls.server_context(cert, key), auth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(server.url, ca.ca_cert)
    finally:
        server.shutdown()
        server.server_close()
