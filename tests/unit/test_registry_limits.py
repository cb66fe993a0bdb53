"""The registry's HTTP layer refuses what would hold its memory or threads, and keeps internal detail out
of its replies (issue #14 item 3): a body over MAX_BODY_BYTES is refused unread (413), a client that
stops sending is dropped after IDLE_TIMEOUT_S, and a store failure is answered without its text."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from kappa.registry import ADMIN, server
from kappa.registry.http import VerifyingSession
from tests.unit.registry_tls_support import Served, serve

pytestmark = pytest.mark.unit

CREDS = {ADMIN: ("boss", "b-pw")}
SECRET_DETAIL = 'relation "registry.schemas" does not exist at 10.0.0.7'


class _FailingStore:
    """A store whose every call fails as PostgreSQL would, with internal detail in the message."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> None:
            raise psycopg.OperationalError(SECRET_DETAIL)
        return fail


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[Served]:
    with serve(tmp_path, _FailingStore(), CREDS) as running:
        yield running


def test_a_store_failure_is_answered_without_its_detail(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    answer = VerifyingSession(served.ca).get(f"{served.url}/schemas/ids/1", auth=CREDS[ADMIN], timeout=10)
    assert answer.status_code == 500
    message = answer.json()["message"]
    assert SECRET_DETAIL not in answer.text and "registry log, id " in message
    error_id = message.rsplit("id ", 1)[1].rstrip(")")
    logged = capsys.readouterr().err
    assert f"error {error_id}:" in logged and SECRET_DETAIL in logged  # the detail is in the log


def test_a_body_over_the_limit_is_refused_unread(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "MAX_BODY_BYTES", 1000)
    http = VerifyingSession(served.ca)
    answer = http.post(f"{served.url}/subjects/s/versions", auth=CREDS[ADMIN], data=b"x" * 1001, timeout=10,
                       headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and answer.json()["error_code"] == 413
    assert answer.headers["Connection"] == "close"
    # a declared length alone is refused: nothing waits for gigabytes that never come
    context = ssl.create_default_context(cafile=str(served.ca))
    host, port = served.url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(b"POST /subjects/s/versions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n")
        assert tls.recv(100).startswith(b"HTTP/1.1 413")


def test_a_client_that_stops_sending_is_dropped(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "IDLE_TIMEOUT_S", 0.5)
    monkeypatch.setattr(server._Handler, "timeout", 0.5)
    context = ssl.create_default_context(cafile=str(served.ca))
    host, port = served.url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(b"GET /schemas/ids/1 HTTP/1.1\r\nHost: x\r\n")  # the headers never end
        assert tls.recv(100) == b""  # closed by the server (the client's own timeout would raise instead)
