"""Schema-id -> writer schema lookups for the Avro decoder.

A lookup is any callable `id -> schema JSON string | None` (None: the id is not registered), so
tests use a dict and the job uses the registry. An unreachable registry raises
`SchemaRegistryUnavailable` instead of returning None: that is an outage, not bad data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import requests

SchemaLookup = Callable[[int], "str | None"]


class SchemaRegistryUnavailable(RuntimeError):
    """The registry could not answer (network error, 5xx, bad response); retry later."""


class DictSchemaLookup:
    """A fixed id -> schema mapping; counts calls so tests can assert on caching."""

    def __init__(self, schemas: Mapping[int, str]) -> None:
        self._schemas = dict(schemas)
        self.calls: list[int] = []

    def __call__(self, schema_id: int) -> str | None:
        self.calls.append(schema_id)
        return self._schemas.get(schema_id)


class RegistrySchemaLookup:
    """`GET {url}/schemas/ids/{id}` against a Confluent-compatible registry, cached per id.

    Found schemas are immutable in a registry, so they are cached forever. A 404 returns None (the
    decoder caches that too); anything else that is not a schema raises SchemaRegistryUnavailable.
    """

    def __init__(
        self,
        url: str,
        *,
        auth: tuple[str, str] | None = None,
        timeout_s: float = 10.0,
        session: requests.Session | None = None,
        verify: str | bool = True,
    ) -> None:
        """`verify`: the CA file an https registry's certificate is checked against (True: the system's)."""
        self.url = url.rstrip("/")
        self._auth = auth
        self._timeout = timeout_s
        self._session = session or requests.Session()
        self._verify = verify  # per request: REQUESTS_CA_BUNDLE would override a session's own `verify`
        self._cache: dict[int, str] = {}
        self._lock = threading.Lock()

    def __call__(self, schema_id: int) -> str | None:
        with self._lock:
            if schema_id in self._cache:
                return self._cache[schema_id]
        try:
            response = self._session.get(
                f"{self.url}/schemas/ids/{schema_id}", auth=self._auth, timeout=self._timeout, verify=self._verify
            )
        except requests.RequestException as exc:
            raise SchemaRegistryUnavailable(f"schema registry {self.url} unreachable: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise SchemaRegistryUnavailable(
                f"schema registry {self.url} answered {response.status_code} for id {schema_id}: "
                f"{response.text[:200]}"
            )
        try:
            body = response.json()
            schema = body["schema"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SchemaRegistryUnavailable(
                f"schema registry {self.url}: bad response for id {schema_id}"
            ) from exc
        if body.get("schemaType", "AVRO") != "AVRO":
            return None  # a Protobuf/JSON schema id cannot be a telemetry writer schema
        with self._lock:
            self._cache[schema_id] = schema
        return str(schema)
