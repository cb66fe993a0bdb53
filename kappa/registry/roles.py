"""Who may do what on the registry: three roles, each a basic-auth identity, checked per request.

- read: every GET (subjects, versions, schemas, config and mode reads) and the lookup
  `POST /subjects/{s}` (is this schema registered? it changes nothing): jobs' decoders, consumers,
  the bridge, the exporter, the archive;
- write: read, plus registering (`POST /subjects/{s}/versions`) and compatibility checks
  (`POST /compatibility/...`): schema owners (the simulator, `kappa schema register/check`, and the
  jobs' avro-confluent sinks, which register their output schema on first write);
- admin: everything, including compatibility changes (`PUT/DELETE /config`), `PUT/DELETE /mode`
  and deletes (soft and hard): the history a replay depends on is changed only by the operator.

Anything not listed as read or write needs admin (deny by default). A wrong or missing password is a
401; a right password outside its role a 403 with Confluent's error code 40301.
"""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass

from kappa.registry import errors
from kappa.registry.errors import RegistryError

READ, WRITE, ADMIN = "read", "write", "admin"
ROLES = (READ, WRITE, ADMIN)  # each one includes the rights of those before it

_SUBJECT = r"[^/]+"
_WRITE_POSTS = (
    re.compile(rf"^/subjects/{_SUBJECT}/versions$"),
    re.compile(rf"^/compatibility/subjects/{_SUBJECT}/versions(/[^/]+)?$"),
)
_READ_POSTS = (re.compile(rf"^/subjects/{_SUBJECT}$"),)


def required_role(method: str, path: str) -> str:
    """The least role a request needs; `path` is the URL path without the query."""
    path = path.rstrip("/")
    if method in ("GET", "HEAD"):
        return READ
    if method == "POST" and any(p.match(path) for p in _READ_POSTS):
        return READ
    if method == "POST" and any(p.match(path) for p in _WRITE_POSTS):
        return WRITE
    return ADMIN


def allows(role: str, needed: str) -> bool:
    """Roles are ordered: admin includes write, write includes read."""
    return ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True)
class Identity:
    user: str
    role: str


class Authenticator:
    """Matches an Authorization header against each role's expected one (constant-time compares).

    `identities` maps role -> (user, password); two roles with the same credential (the single-credential
    fallback) resolve to the higher role, so a registry with one credential behaves as before."""

    def __init__(self, identities: dict[str, tuple[str, str]]) -> None:
        self._expected = [
            (Identity(identities[role][0], role), basic_header(*identities[role]).encode())
            for role in reversed(ROLES) if role in identities
        ]

    def identify(self, header: str) -> Identity | None:
        """The identity the header proves, or None (a 401)."""
        given, found = header.encode(), None
        for identity, expected in self._expected:  # no early exit: every compare runs
            if hmac.compare_digest(given, expected) and found is None:
                found = identity
        return found

    @staticmethod
    def authorize(identity: Identity | None, method: str, path: str) -> None:
        """RegistryError 401 unless a header proved an identity, 403 (40301) when its role is not enough."""
        if identity is None:
            raise RegistryError(errors.UNAUTHORIZED, "Unauthorized")
        needed = required_role(method, path)
        if not allows(identity.role, needed):
            raise RegistryError(errors.FORBIDDEN, forbidden_message(identity, method, needed))


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def forbidden_message(identity: Identity, method: str, needed: str) -> str:
    return (f"User '{identity.user}' has the '{identity.role}' role; this {method} needs the "
            f"'{needed}' role")
