"""The registry's authorization rule (kappa/registry/roles.py): every route x every role, the identities the
server accepts, and the single-credential fallback of an external registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kappa.config import Config, load_config
from kappa.registry import ADMIN, READ, WRITE, credentials, identities, roles
from kappa.registry.app import Registry
from kappa.registry.errors import RegistryError
from kappa.registry.http import VerifyingSession
from tests.unit.registry_tls_support import Served, serve

pytestmark = pytest.mark.unit

# One concrete request per route of kappa/registry/app.py, and the least role it needs.
MATRIX: list[tuple[str, str, str]] = [
    ("GET", "/", READ),
    ("GET", "/subjects", READ),
    ("POST", "/subjects/t-value", READ),  # lookup: is this schema registered? changes nothing
    ("DELETE", "/subjects/t-value", ADMIN),
    ("GET", "/subjects/t-value/versions", READ),
    ("POST", "/subjects/t-value/versions", WRITE),
    ("GET", "/subjects/t-value/versions/latest", READ),
    ("DELETE", "/subjects/t-value/versions/1", ADMIN),
    ("GET", "/subjects/t-value/versions/1/schema", READ),
    ("GET", "/subjects/t-value/versions/1/referencedby", READ),
    ("GET", "/schemas", READ),
    ("GET", "/schemas/types", READ),
    ("GET", "/schemas/ids/1", READ),
    ("GET", "/schemas/ids/1/schema", READ),
    ("GET", "/schemas/ids/1/versions", READ),
    ("GET", "/schemas/ids/1/subjects", READ),
    ("POST", "/compatibility/subjects/t-value/versions/latest", WRITE),
    ("POST", "/compatibility/subjects/t-value/versions", WRITE),
    ("GET", "/config", READ),
    ("PUT", "/config", ADMIN),
    ("DELETE", "/config", ADMIN),
    ("GET", "/config/t-value", READ),
    ("PUT", "/config/t-value", ADMIN),
    ("DELETE", "/config/t-value", ADMIN),
    ("GET", "/mode", READ),
    ("PUT", "/mode", ADMIN),
    ("GET", "/mode/t-value", READ),
    ("PUT", "/mode/t-value", ADMIN),
    ("DELETE", "/mode/t-value", ADMIN),
]
RANK = {READ: 0, WRITE: 1, ADMIN: 2}
CREDS = {ADMIN: ("boss", "b-pw"), WRITE: ("owner", "w-pw"), READ: ("reader", "r-pw")}


def test_the_matrix_covers_every_route() -> None:
    """A route added to the registry without a decision here fails this test."""
    registry = Registry(store=None)  # type: ignore[arg-type]  # routes only, no request served
    for method, pattern, _ in registry.routes:
        assert any(m == method and pattern.match(path.rstrip("/")) for m, path, _ in MATRIX), (method, pattern)


@pytest.mark.parametrize(("method", "path", "needed"), MATRIX)
@pytest.mark.parametrize("role", [READ, WRITE, ADMIN])
def test_route_x_role(method: str, path: str, needed: str, role: str) -> None:
    assert roles.required_role(method, path) == needed
    assert roles.required_role(method, path + "/") == needed  # the handler strips a trailing slash too
    auth = roles.Authenticator(CREDS)
    header = roles.basic_header(*CREDS[role])
    if RANK[role] >= RANK[needed]:
        assert auth.identify(header) == roles.Identity(CREDS[role][0], role)
        auth.authorize(auth.identify(header), method, path)
    else:
        with pytest.raises(RegistryError) as info:
            auth.authorize(auth.identify(header), method, path)
        assert info.value.error_code == 40301 and info.value.http_status == 403
        assert f"'{role}' role" in info.value.message and f"'{needed}' role" in info.value.message


@pytest.mark.parametrize(("method", "path"), [("POST", "/unknown"), ("PATCH", "/subjects"), ("POST", "/config"),
                                               ("POST", "/subjects/a/versions/1")])
def test_anything_unlisted_needs_admin(method: str, path: str) -> None:
    assert roles.required_role(method, path) == ADMIN


@pytest.mark.parametrize("header", ["", "Basic", roles.basic_header("reader", "w-pw"),
                                    roles.basic_header("nobody", "r-pw"), roles.basic_header("reader", "r-pw") + "x",
                                    "Bearer r-pw"])
def test_wrong_or_missing_credentials_are_401(header: str) -> None:
    auth = roles.Authenticator(CREDS)
    assert auth.identify(header) is None
    with pytest.raises(RegistryError) as info:
        auth.authorize(auth.identify(header), "GET", "/subjects")
    assert info.value.http_status == 401


def test_one_credential_for_every_role_is_admin() -> None:
    """The single-credential fallback: the same user and password for all roles resolves to admin."""
    one = ("alice", "s3cret")
    auth = roles.Authenticator({READ: one, WRITE: one, ADMIN: one})
    assert auth.identify(roles.basic_header(*one)) == roles.Identity("alice", ADMIN)
    auth.authorize(auth.identify(roles.basic_header(*one)), "DELETE", "/subjects/x")


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **secrets: str) -> Config:
    for name in ("KAPPA_REGISTRY_USER", "KAPPA_REGISTRY_PASSWORD", "KAPPA_REGISTRY_READ_PASSWORD",
                 "KAPPA_REGISTRY_WRITE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    return load_config("test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path)})


def test_each_role_has_its_own_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path, monkeypatch, KAPPA_REGISTRY_PASSWORD="a", KAPPA_REGISTRY_WRITE_PASSWORD="w",
                     KAPPA_REGISTRY_READ_PASSWORD="r")
    assert identities(config) == {ADMIN: (config.registry.user, "a"), WRITE: (config.registry.write_user, "w"),
                                  READ: (config.registry.read_user, "r")}
    with pytest.raises(ValueError, match="unknown registry role"):
        credentials(config, "superuser")


def test_roles_without_a_password_fall_back_to_the_single_credential(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An external registry configured with one credential: every client uses it (and has its rights)."""
    config = _config(tmp_path, monkeypatch, KAPPA_REGISTRY_USER="ext", KAPPA_REGISTRY_PASSWORD="one")
    assert identities(config) == {role: ("ext", "one") for role in (READ, WRITE, ADMIN)}


class _NoStore:
    """The HTTP test below is refused before any store call; one would fail it loudly."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the store was used ({name}) by a request that should have been refused")


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[Served]:
    with serve(tmp_path, _NoStore(), CREDS) as server:
        yield server


def test_http_refusals(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    """The wiring in the HTTP layer: 401 with a challenge, 403 with Confluent's JSON error body; the access
    log names the user refused."""
    body, server_url = {"schema": '"string"'}, served.url
    http = VerifyingSession(str(served.ca))
    anonymous = http.post(f"{server_url}/subjects/x/versions", json=body, timeout=5)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    denied = http.post(f"{server_url}/subjects/x/versions", json=body, auth=CREDS[READ], timeout=5)
    assert denied.status_code == 403
    assert denied.json() == {"error_code": 40301,
                             "message": "User 'reader' has the 'read' role; this POST needs the 'write' role"}
    denied = http.delete(f"{server_url}/subjects/x?permanent=true", auth=CREDS[WRITE], timeout=5)
    assert denied.status_code == 403 and "'admin' role" in denied.json()["message"]
    assert denied.headers["Content-Type"] == "application/vnd.schemaregistry.v1+json"
    log = capsys.readouterr().err
    assert '127.0.0.1 - "POST /subjects/x/versions" 401' in log
    assert '127.0.0.1 reader "POST /subjects/x/versions" 403' in log and "r-pw" not in log
