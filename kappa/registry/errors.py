"""Confluent Schema Registry error codes, so clients (confluent-kafka) can branch on them unchanged."""

from __future__ import annotations

SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
SCHEMA_NOT_FOUND = 40403
SUBJECT_SOFT_DELETED = 40404
SUBJECT_NOT_SOFT_DELETED = 40405
VERSION_SOFT_DELETED = 40406
VERSION_NOT_SOFT_DELETED = 40407
SUBJECT_LEVEL_CONFIG_NOT_FOUND = 40408
INVALID_SCHEMA = 42201
INVALID_VERSION = 42202
INVALID_COMPATIBILITY_LEVEL = 42203
INVALID_MODE = 42204
INCOMPATIBLE_SCHEMA = 409
UNAUTHORIZED = 401
FORBIDDEN = 40301  # authenticated, but the request is outside the caller's role (kappa/registry/roles.py)
NOT_FOUND = 404
STORE_ERROR = 50001


class RegistryError(Exception):
    """An error answered as `{"error_code": N, "message": ...}`; the HTTP status derives from the code."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message

    @property
    def http_status(self) -> int:
        """Confluent's mapping: 404xx -> 404, 422xx -> 422, 500xx -> 500, plain codes as they are."""
        code = self.error_code
        return code // 100 if code >= 10000 else code

    def body(self) -> dict[str, object]:
        return {"error_code": self.error_code, "message": self.message}


def subject_not_found(subject: str) -> RegistryError:
    return RegistryError(SUBJECT_NOT_FOUND, f"Subject '{subject}' not found.")


def version_not_found(version: int | str) -> RegistryError:
    return RegistryError(VERSION_NOT_FOUND, f"Version {version} not found.")


def schema_not_found(detail: str = "Schema not found") -> RegistryError:
    return RegistryError(SCHEMA_NOT_FOUND, detail)


def invalid_schema(detail: str) -> RegistryError:
    return RegistryError(INVALID_SCHEMA, f"Invalid schema: {detail}")


def invalid_version(raw: str) -> RegistryError:
    return RegistryError(
        INVALID_VERSION,
        f"The specified version '{raw}' is not a valid version id. "
        'Allowed values are between [1, 2^31-1] and the string "latest"',
    )


def invalid_level(raw: object) -> RegistryError:
    return RegistryError(
        INVALID_COMPATIBILITY_LEVEL,
        f"Invalid compatibility level. Valid values are none, "
        f"backward, forward, full, backward_transitive, forward_transitive, and "
        f"full_transitive; got {raw!r}",
    )


def incompatible(subject: str, messages: list[str]) -> RegistryError:
    return RegistryError(
        INCOMPATIBLE_SCHEMA,
        f'Schema being registered is incompatible with an earlier schema for subject "{subject}", '
        f"details: [{'; '.join(messages)}]",
    )
