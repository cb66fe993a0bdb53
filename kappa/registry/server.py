"""The registry's HTTPS server: the REST routes (`kappa.registry.app`) on the stdlib threading server.

The stdlib server is enough for a registry (a handful of requests per producer/consumer start, clients
cache ids) and adds no dependency next to PyFlink's pinned set. It speaks TLS only: each accepted
connection is wrapped in the request's own thread (a slow or plain-HTTP client cannot stall the accept
loop), and one that does not complete a TLS handshake is closed without a reply.
"""

from __future__ import annotations

import json
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg.conninfo import make_conninfo

from kappa.config import Config
from kappa.registry import errors, identities, roles, tls
from kappa.registry.app import CONTENT_TYPE, Registry
from kappa.registry.errors import RegistryError
from kappa.registry.store import Store

HANDSHAKE_TIMEOUT_S = 10.0  # a client that opens a connection and never completes TLS frees its thread
IDLE_TIMEOUT_S = 30.0  # a client that stops sending mid-request (or idles on a kept-alive connection) too
MAX_BODY_BYTES = 4 * 1024 * 1024  # a request body larger than this is refused unread (413): schemas are KBs


class RegistryServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], registry: Registry,
                 auth: dict[str, tuple[str, str]] | None, context: ssl.SSLContext) -> None:
        super().__init__(address, _Handler)
        self.registry = registry
        self.auth = roles.Authenticator(auth) if auth else None  # role -> (user, password); None: no auth
        self.context = context

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"https://{host!s}:{port}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        """TLS first (in this request's thread), then HTTP; a failed handshake is logged in one line."""
        if not isinstance(request, socket.socket):  # a TCP server: never a datagram
            raise TypeError(f"not a stream socket: {request!r}")
        request.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            secure = self.context.wrap_socket(request, server_side=True)  # takes over the descriptor
        except (ssl.SSLError, OSError) as exc:
            sys.stderr.write(f"{client_address[0]} TLS handshake failed: {getattr(exc, 'reason', None) or exc}\n")
            return
        try:
            secure.settimeout(IDLE_TIMEOUT_S)
            super().finish_request(secure, client_address)
        finally:
            self.shutdown_request(secure)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: avoid 40 ms delayed-ACK stalls
    server: RegistryServer
    server_version = "kappa-registry"
    timeout = IDLE_TIMEOUT_S  # StreamRequestHandler sets it on the socket: no thread held for ever

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        started, user = time.monotonic(), "-"
        headers: dict[str, str] = {}
        try:
            raw = self.rfile.read(_body_length(self.headers.get("Content-Length")))
            url = urlsplit(self.path)
            if self.server.auth is not None:  # 401, or 403 outside the caller's role (logged with its user)
                identity = self.server.auth.identify(self.headers.get("Authorization") or "")
                user = identity.user if identity else "-"
                self.server.auth.authorize(identity, method, url.path)
            try:
                body = json.loads(raw) if raw else None
            except ValueError as exc:
                raise RegistryError(400, f"Malformed JSON body: {exc}") from exc
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            status, payload = self.server.registry.handle(method, url.path, query, body)
        except RegistryError as exc:
            status, payload = exc.http_status, exc.body()
            if exc.error_code == errors.UNAUTHORIZED:
                headers["WWW-Authenticate"] = 'Basic realm="kappa-registry"'
            if status == 413:
                headers["Connection"] = "close"  # the body was not read: the connection cannot go on
                self.close_connection = True
        # Internal errors are logged here with their detail and answered without it (no SQL, paths or
        # class names to a client): the log line's id ties one to the other.
        except psycopg.Error:
            status, payload = 500, {"error_code": errors.STORE_ERROR,
                                    "message": f"Store error (see the registry log, id {_log_error()})"}
        except Exception:  # noqa: BLE001 - answer, log, keep serving
            status, payload = 500, {"error_code": 500,
                                    "message": f"Internal error (see the registry log, id {_log_error()})"}
        data = json.dumps(payload).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        elapsed_ms = (time.monotonic() - started) * 1000
        sys.stderr.write(f'{self.client_address[0]} {user} "{method} {self.path}" {status} {elapsed_ms:.1f}ms\n')

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def _body_length(header: str | None) -> int:
    """The request's Content-Length, refused (413) above MAX_BODY_BYTES before any of it is read."""
    try:
        length = int(header or 0)
    except ValueError as exc:
        raise RegistryError(400, "Malformed Content-Length") from exc
    if length < 0:
        raise RegistryError(400, "Malformed Content-Length")
    if length > MAX_BODY_BYTES:
        raise RegistryError(413, f"Request body of {length} bytes is larger than {MAX_BODY_BYTES}")
    return length


def _log_error() -> str:
    """Log the exception being handled with a short id, and return the id."""
    error_id = uuid.uuid4().hex[:12]
    sys.stderr.write(f"error {error_id}:\n")
    traceback.print_exc(file=sys.stderr)
    return error_id


def dsn(config: Config) -> str:
    """libpq connection string of the project database as the registry's own role (its schema only),
    TLS verified (kappa/pg_security.py); password from the configured secret."""
    from kappa import pg_security

    pg = config.postgres
    return make_conninfo(
        host=pg.host,
        port=pg.port,
        dbname=pg.database,
        user=pg_security.user(config, "registry"),
        password=config.secret(pg_security.password_env(config, "registry")),
        application_name="kappa-registry",
        **pg_security.libpq_params(config),
    )


def make_server(store: Store, host: str, port: int, context: ssl.SSLContext,
                auth: dict[str, tuple[str, str]] | None = None) -> RegistryServer:
    """Bind (port 0 = any free port), serving HTTPS with `context` (`tls.server_context`); `auth` maps
    role -> (user, password). The caller runs `serve_forever` and closes the store."""
    return RegistryServer((host, port), Registry(store), auth, context)


def run_server(config: Config, host: str | None = None, port: int | None = None) -> None:
    """Create tables, bind, serve; SIGTERM/SIGINT stop gracefully (in-flight requests finish)."""
    context = tls.server_context(*tls.server_files(config))  # before the store: no TLS, no start
    store = Store(dsn(config))
    auth = identities(config)
    try:
        port = config.registry.port if port is None else port
        server = make_server(store, host or config.registry.host, port, context, auth)
    except BaseException:
        store.close()
        raise

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    sys.stderr.write(f"kappa registry listening on {server.url} (auth {'on' if auth else 'off'})\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()
        store.close()
        sys.stderr.write("kappa registry stopped\n")
