"""Device and bridge passwords: generated here, stored only as Mosquitto's own `$7$` hash.

The hash is PBKDF2-HMAC-SHA512 in the exact layout `mosquitto_passwd` writes
(`$7$<iterations>$<base64 salt>$<base64 hash>`), so the broker's password file can be rendered
straight from the registry table without calling an external tool per device.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

ITERATIONS = 101  # mosquitto_passwd's default in 2.0 (the broker reads the count from each entry)
SALT_BYTES = 12
HASH_BYTES = 64  # SHA-512 output


def generate_password() -> str:
    """A random password for one device (URL-safe, no characters a device's config file would mangle)."""
    return secrets.token_urlsafe(24)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The `$7$` PBKDF2-SHA512 entry Mosquitto 2 verifies."""
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, HASH_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, entry: str) -> bool:
    """True if `password` matches a `$7$` entry (used by tests and `kappa devices show`-style checks)."""
    try:
        _, kind, iterations, salt_b64, hash_b64 = entry.split("$")
        if kind != "7":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(hash_b64)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(iterations), len(expected))
    return hmac.compare_digest(digest, expected)


def append_secrets(path: Path, pairs: list[tuple[str, str]]) -> None:
    """Append `device_id=password` lines to a file created with mode 600 (never chmod after the fact)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as out:
        for device_id, password in pairs:
            out.write(f"{device_id}={password}\n")
