"""The project's schema registry against real PostgreSQL, driven by confluent-kafka's own client.

Uses the session `stack` fixture (tests/conftest.py: the local stack, yielding its Config). Subjects
get a random suffix so the module can run again against the same database. Every client verifies the
registry's certificate (HTTPS only; what is refused: tests/integration/test_registry_tls.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from kappa import waiting
from kappa.config import PROJECT_ROOT, Config
from kappa.registry import ADMIN, READ, WRITE, ca_file, client_conf, compat, credentials, session
from kappa.registry.http import VerifyingSession

with warnings.catch_warnings(record=True):  # authlib warns about httpx on import
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

pytestmark = pytest.mark.integration

CT = "application/vnd.schemaregistry.v1+json"


@pytest.fixture(scope="module")
def registry_url(stack: Config) -> str:
    return stack.registry.url


@pytest.fixture(scope="module")
def http(stack: Config) -> requests.Session:
    admin = session(stack, ADMIN)  # registers, deletes, changes levels
    admin.headers["Content-Type"] = CT
    return admin


@pytest.fixture()
def client(stack: Config) -> SchemaRegistryClient:
    return SchemaRegistryClient(client_conf(stack, ADMIN))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def reading(*extra: dict[str, Any], name: str = "Reading") -> str:
    fields = [{"name": "device_id", "type": "string"}, {"name": "value", "type": "double"}, *extra]
    return json.dumps({"type": "record", "name": name, "namespace": "io.kappa.test", "fields": fields})


def post_schema(http: requests.Session, url: str, schema: str, **body: Any) -> requests.Response:
    return http.post(url, data=json.dumps({"schema": schema, **body}), timeout=10)


# ---- wire format ---------------------------------------------------------------------------------
def test_avro_serializer_roundtrip(stack: Config, client: SchemaRegistryClient) -> None:
    topic = unique("roundtrip")
    schema = reading({"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}})
    serializer = AvroSerializer(client, schema, conf={"auto.register.schemas": True})
    ctx = SerializationContext(topic, MessageField.VALUE)
    record = {"device_id": "dev-1", "value": 21.5, "ts": 1_700_000_000_123}

    payload = serializer(record, ctx)
    assert payload is not None

    latest = client.get_latest_version(f"{topic}-value")
    assert latest.version == 1
    assert payload[0] == 0  # Confluent magic byte
    assert struct.unpack(">I", payload[1:5])[0] == latest.schema_id  # big-endian schema id

    # A fresh client has no cache: the deserializer must fetch the schema by id from the server.
    deserializer = AvroDeserializer(SchemaRegistryClient(client_conf(stack, READ)))
    decoded = deserializer(payload, ctx)
    assert decoded["device_id"] == "dev-1" and decoded["value"] == 21.5
    assert int(decoded["ts"].timestamp() * 1000) == record["ts"]  # logical type survived the registry


def test_registered_schema_keeps_defaults_docs_and_logical_types(
    http: requests.Session, registry_url: str
) -> None:
    subject = unique("keep")
    schema = reading({"name": "unit", "type": ["null", "string"], "default": None, "doc": "SI unit"})
    schema_id = post_schema(http, f"{registry_url}/subjects/{subject}/versions", schema).json()["id"]
    stored = json.loads(http.get(f"{registry_url}/schemas/ids/{schema_id}", timeout=10).json()["schema"])
    unit = stored["fields"][2]
    assert unit["default"] is None and unit["doc"] == "SI unit" and "default" in unit


# ---- compatibility -------------------------------------------------------------------------------
def test_incompatible_registration_is_409_with_reason(
    client: SchemaRegistryClient, http: requests.Session, registry_url: str
) -> None:
    subject = unique("compat")
    client.register_schema(subject, Schema(reading(), "AVRO"))
    breaking = reading({"name": "unit", "type": "string"})  # no default: cannot read v1 data

    with pytest.raises(SchemaRegistryError) as info:
        client.register_schema(subject, Schema(breaking, "AVRO"))
    assert info.value.http_status_code == 409 and info.value.error_code == 409
    assert (
        "unit" in info.value.error_message
        and "reader_field_missing_default_value" in info.value.error_message
    )

    response = post_schema(
        http, f"{registry_url}/compatibility/subjects/{subject}/versions/latest?verbose=true", breaking
    )
    assert response.status_code == 200 and response.headers["Content-Type"] == CT
    body = response.json()
    assert body["is_compatible"] is False and any("unit" in m for m in body["messages"])
    assert client.test_compatibility(
        subject, Schema(reading({"name": "unit", "type": "string", "default": ""}), "AVRO")
    )
    assert client.get_versions(subject) == [1]  # the refused schema left nothing behind

    # A compatible evolution is accepted as version 2.
    evolved = reading({"name": "unit", "type": ["null", "string"], "default": None})
    new_id = client.register_schema(subject, Schema(evolved, "AVRO"))
    assert client.get_latest_version(subject).version == 2
    assert client.get_latest_version(subject).schema_id == new_id


def test_same_schema_same_id_across_subjects(
    client: SchemaRegistryClient, http: requests.Session, registry_url: str
) -> None:
    schema = reading(name=f"Shared{uuid.uuid4().hex[:8]}")
    a, b = unique("shared-a"), unique("shared-b")
    id_a = client.register_schema(a, Schema(schema, "AVRO"))
    # Same schema, different layout: still the same schema, still the same id.
    id_b = post_schema(
        http, f"{registry_url}/subjects/{b}/versions", json.dumps(json.loads(schema), indent=2)
    ).json()["id"]
    assert id_a == id_b
    assert (
        post_schema(http, f"{registry_url}/subjects/{a}/versions", schema).json()["id"] == id_a
    )  # idempotent
    assert client.get_versions(a) == [1]
    other = client.register_schema(unique("shared-c"), Schema(reading(name="Different"), "AVRO"))
    assert other != id_a

    assert sorted(http.get(f"{registry_url}/schemas/ids/{id_a}/subjects", timeout=10).json()) == sorted(
        [a, b]
    )
    versions = http.get(f"{registry_url}/schemas/ids/{id_a}/versions", timeout=10).json()
    assert sorted((v["subject"], v["version"]) for v in versions) == sorted([(a, 1), (b, 1)])
    found = post_schema(http, f"{registry_url}/subjects/{b}", schema).json()  # lookup
    assert (found["subject"], found["version"], found["id"]) == (b, 1, id_a)


def test_concurrent_registrations_get_one_id(http: requests.Session, registry_url: str) -> None:
    subject = unique("race")
    schema = reading(name=f"Race{uuid.uuid4().hex[:8]}")
    n = 12
    barrier = threading.Barrier(n)
    results: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def register(i: int) -> None:
        target = subject if i % 2 else f"{subject}-{i}"  # half on one subject, half on their own
        own = VerifyingSession(str(http.verify))
        own.auth = http.auth
        barrier.wait()
        response = own.post(
            f"{registry_url}/subjects/{target}/versions",
            data=json.dumps({"schema": schema}),
            headers={"Content-Type": CT},
            timeout=30,
        )
        with lock:
            results.append((response.status_code, response.json()))

    threads = [threading.Thread(target=register, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert [status for status, _ in results] == [200] * n, results
    assert len({body["id"] for _, body in results}) == 1
    assert http.get(f"{registry_url}/subjects/{subject}/versions", timeout=10).json() == [1]


# ---- deletes -------------------------------------------------------------------------------------
def test_soft_then_permanent_delete(http: requests.Session, registry_url: str) -> None:
    subject = unique("delete")
    base = f"{registry_url}/subjects/{subject}"
    id1 = post_schema(http, f"{base}/versions", reading()).json()["id"]
    post_schema(http, f"{base}/versions", reading({"name": "unit", "type": "string", "default": ""}))

    def code(response: requests.Response) -> int:
        return int(response.json()["error_code"])

    # Versions: permanent needs a soft delete first (40407); a second soft delete is 40406.
    assert code(http.delete(f"{base}/versions/1?permanent=true", timeout=10)) == 40407
    assert http.delete(f"{base}/versions/1", timeout=10).json() == 1
    assert code(http.delete(f"{base}/versions/1", timeout=10)) == 40406
    assert http.get(f"{base}/versions", timeout=10).json() == [2]
    assert http.get(f"{base}/versions?deleted=true", timeout=10).json() == [1, 2]
    assert http.get(f"{base}/versions/1", timeout=10).status_code == 404
    assert http.get(f"{base}/versions/1?deleted=true", timeout=10).json()["id"] == id1
    assert (
        http.get(f"{registry_url}/schemas/ids/{id1}", timeout=10).status_code == 200
    )  # old data stays readable
    assert http.delete(f"{base}/versions/1?permanent=true", timeout=10).json() == 1
    assert http.get(f"{base}/versions?deleted=true", timeout=10).json() == [2]
    assert code(http.delete(f"{base}/versions/7", timeout=10)) == 40402
    assert code(http.delete(f"{base}/versions/zero", timeout=10)) == 42202

    # Subjects: same two steps (40405 before the soft delete, 40404 after it).
    assert code(http.delete(f"{base}?permanent=true", timeout=10)) == 40405
    assert http.delete(base, timeout=10).json() == [2]
    assert code(http.delete(base, timeout=10)) == 40404
    assert subject not in http.get(f"{registry_url}/subjects", timeout=10).json()
    assert subject in http.get(f"{registry_url}/subjects?deleted=true", timeout=10).json()
    assert http.delete(f"{base}?permanent=true", timeout=10).json() == [2]
    assert subject not in http.get(f"{registry_url}/subjects?deleted=true", timeout=10).json()
    missing = http.get(f"{base}/versions", timeout=10)
    assert missing.status_code == 404 and code(missing) == 40401
    assert code(http.delete(base, timeout=10)) == 40401


# ---- config --------------------------------------------------------------------------------------
def test_per_subject_config(client: SchemaRegistryClient, http: requests.Session, registry_url: str) -> None:
    subject = unique("config")
    global_level = http.get(f"{registry_url}/config", timeout=10).json()["compatibilityLevel"]
    assert global_level in ("BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FULL", "FULL_TRANSITIVE", "NONE")

    no_config = http.get(f"{registry_url}/config/{subject}", timeout=10)
    assert no_config.status_code == 404 and no_config.json()["error_code"] == 40408
    fallback = http.get(f"{registry_url}/config/{subject}?defaultToGlobal=true", timeout=10).json()
    assert fallback == {"compatibilityLevel": global_level}

    assert client.set_compatibility(subject, "NONE") == {"compatibility": "NONE"}
    assert client.get_compatibility(subject) == "NONE"
    client.register_schema(subject, Schema(reading(), "AVRO"))
    client.register_schema(subject, Schema(reading(name="Unrelated"), "AVRO"))  # NONE accepts anything
    assert client.get_versions(subject) == [1, 2]

    response = http.put(f"{registry_url}/config/{subject}", data='{"compatibility": "SIDEWAYS"}', timeout=10)
    assert response.status_code == 422 and response.json()["error_code"] == 42203

    http.put(f"{registry_url}/config/{subject}", data='{"compatibility": "FORWARD"}', timeout=10)
    with pytest.raises(SchemaRegistryError) as info:  # now FORWARD: v2 cannot read a record with no fields
        client.register_schema(
            subject,
            Schema(
                json.dumps(
                    {"type": "record", "name": "Unrelated", "namespace": "io.kappa.test", "fields": []}
                ),
                "AVRO",
            ),
        )
    assert info.value.error_code == 409 and "FORWARD" in info.value.error_message

    assert http.delete(f"{registry_url}/config/{subject}", timeout=10).json() == {
        "compatibilityLevel": "FORWARD"
    }
    assert http.get(f"{registry_url}/config/{subject}", timeout=10).json()["error_code"] == 40408
    assert http.get(f"{registry_url}/config", timeout=10).json()["compatibilityLevel"] == global_level


# ---- protocol details ----------------------------------------------------------------------------
def test_protocol_details(http: requests.Session, registry_url: str) -> None:
    root = http.get(f"{registry_url}/", timeout=10)
    assert root.json() == {} and root.headers["Content-Type"] == CT
    assert http.get(f"{registry_url}/schemas/types", timeout=10).json() == ["AVRO"]
    assert http.get(f"{registry_url}/mode", timeout=10).json() == {"mode": "READWRITE"}

    subject = unique("proto")
    url = f"{registry_url}/subjects/{subject}/versions"
    # Plain application/json requests work too.
    plain = requests.post(url, json={"schema": reading()}, auth=http.auth, verify=http.verify, timeout=10)
    assert plain.status_code == 200 and isinstance(plain.json()["id"], int)
    raw = http.get(f"{url}/1/schema", timeout=10).json()
    assert raw["name"] == "Reading" and raw["namespace"] == "io.kappa.test"
    latest = http.get(f"{url}/latest", timeout=10).json()
    assert (latest["subject"], latest["version"], latest["id"]) == (subject, 1, plain.json()["id"])

    def error(response: requests.Response) -> tuple[int, int]:
        return response.status_code, int(response.json()["error_code"])

    assert error(post_schema(http, url, reading(), schemaType="PROTOBUF")) == (422, 42201)
    assert "AVRO" in post_schema(http, url, reading(), schemaType="JSON").json()["message"]
    refs = [{"name": "x", "subject": "y", "version": 1}]
    assert error(post_schema(http, url, reading(), references=refs)) == (422, 42201)
    assert error(post_schema(http, url, '{"type": "record"}')) == (422, 42201)
    assert error(http.get(f"{url}/notaversion", timeout=10)) == (422, 42202)
    assert error(http.get(f"{url}/99", timeout=10)) == (404, 40402)
    assert error(http.get(f"{registry_url}/schemas/ids/999999999", timeout=10)) == (404, 40403)
    assert error(post_schema(http, f"{registry_url}/subjects/{subject}", reading(name="Nope"))) == (
        404,
        40403,
    )
    assert error(post_schema(http, f"{registry_url}/subjects/{unique('none')}", reading())) == (404, 40401)
    assert http.get(f"{registry_url}/associations/resources/-/topic", timeout=10).status_code == 404


# ---- separate server processes: restart durability and basic auth ----------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def registry_process(stack: Config, **env_extra: str) -> Iterator[str]:
    """Another `python -m kappa.registry` on a free port, against the stack's database."""
    port = _free_port()
    env = dict(os.environ)
    env.pop(stack.registry.user_env, None)
    env.update(
        KAPPA_PROFILE=stack.profile,
        KAPPA_POSTGRES__HOST=stack.postgres.host,
        KAPPA_POSTGRES__PORT=str(stack.postgres.port),
        KAPPA_POSTGRES__DATABASE=stack.postgres.database,
        KAPPA_POSTGRES__USER=stack.postgres.user,
        **{stack.postgres.password_env: stack.secret(stack.postgres.password_env)},
        **env_extra,
    )
    command = [sys.executable, "-m", "kappa.registry", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True)
    url, ca = f"https://127.0.0.1:{port}", ca_file(stack)  # the certificate `stack up` issued
    try:
        def answers() -> bool:
            if proc.poll() is not None:
                pytest.fail(
                    f"registry exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
                )
            return requests.get(f"{url}/subjects", timeout=1, verify=ca).status_code in (200, 401)

        waiting.wait_until(answers, timeout_s=30, interval_s=0.2, what="the registry",
                           retry_on=(requests.ConnectionError,),
                           on_timeout=lambda _: AssertionError("registry did not answer within 30 s"))
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == 0, "SIGTERM should stop the registry cleanly"


def test_restart_keeps_data(stack: Config) -> None:
    subject = unique("durable")
    schema = reading(name=f"Durable{uuid.uuid4().hex[:8]}")
    with registry_process(stack) as first:
        client = SchemaRegistryClient({**client_conf(stack, ADMIN), "url": first})
        schema_id = client.register_schema(subject, Schema(schema, "AVRO"))
        client.set_compatibility(subject, "FULL_TRANSITIVE")
    # `first` is stopped (SIGTERM, exit code checked); a new process on another port sees everything.
    with registry_process(stack) as second:
        client = SchemaRegistryClient({**client_conf(stack, ADMIN), "url": second})
        assert client.get_latest_version(subject).schema_id == schema_id
        assert compat.canonical(client.get_schema(schema_id).schema_str or "") == compat.canonical(schema)
        assert client.get_compatibility(subject) == "FULL_TRANSITIVE"
        assert client.register_schema(subject, Schema(schema, "AVRO")) == schema_id  # no new version
        assert client.get_versions(subject) == [1]


def test_basic_auth(stack: Config) -> None:
    with registry_process(
        stack, **{stack.registry.user_env: "alice", stack.registry.password_env: "s3cret"}
    ) as url:
        http = VerifyingSession(ca_file(stack))
        anonymous = http.get(f"{url}/subjects", timeout=5)
        assert anonymous.status_code == 401 and anonymous.json()["error_code"] == 401
        assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
        assert http.get(f"{url}/subjects", auth=("alice", "wrong"), timeout=5).status_code == 401
        assert http.get(f"{url}/subjects", auth=("alice", "s3cret"), timeout=5).status_code == 200
        tls = {"ssl.ca.location": ca_file(stack)}
        client = SchemaRegistryClient({"url": url, "basic.auth.user.info": "alice:s3cret", **tls})
        subject = unique("auth")
        schema_id = client.register_schema(subject, Schema(reading(), "AVRO"))
        assert client.get_latest_version(subject).schema_id == schema_id
        with pytest.raises(SchemaRegistryError) as info:
            SchemaRegistryClient({"url": url, **tls}).get_subjects()
        assert info.value.http_status_code == 401


def test_roles_on_the_stack_registry(stack: Config) -> None:
    """Each generated role credential of the stack's registry, refused outside its rights (403, 40301),
    and a wrong password refused (401). The requests refused first would each change the subject."""
    url, subject = stack.registry.url, unique("roles-value")
    base = f"{url}/subjects/{subject}"
    auth = {role: credentials(stack, role) for role in (READ, WRITE, ADMIN)}
    assert len({user for user, _ in auth.values()}) == 3, "stack up generates one identity per role"

    http = session(stack)  # verifies the certificate; each call logs in as its role

    def call(role: str, method: str, path: str, body: Any = None) -> requests.Response:
        return http.request(method, path, auth=auth[role], json=body, timeout=10)

    def refused(response: requests.Response, role: str) -> bool:
        body = response.json()
        return response.status_code == 403 and body["error_code"] == 40301 and f"'{role}' role" in body["message"]

    schema = {"schema": reading(name=f"Roles{uuid.uuid4().hex[:8]}")}
    assert refused(call(READ, "POST", f"{base}/versions", schema), READ)
    assert refused(call(READ, "POST", f"{url}/compatibility/subjects/{subject}/versions", schema), READ)
    schema_id = call(WRITE, "POST", f"{base}/versions", schema).json()["id"]
    assert call(READ, "GET", f"{base}/versions/latest").json()["id"] == schema_id
    assert call(READ, "POST", base, schema).json()["id"] == schema_id  # lookup: a read
    assert call(WRITE, "POST", f"{url}/compatibility/subjects/{subject}/versions", schema).json() == {
        "is_compatible": True}
    for role in (READ, WRITE):
        assert refused(call(role, "PUT", f"{url}/config/{subject}", {"compatibility": "NONE"}), role)
        assert refused(call(role, "PUT", f"{url}/config", {"compatibility": "NONE"}), role)
        assert refused(call(role, "PUT", f"{url}/mode/{subject}", {"mode": "READWRITE"}), role)
        assert refused(call(role, "DELETE", base), role)
        assert refused(call(role, "DELETE", f"{base}/versions/1?permanent=true"), role)
    assert call(READ, "GET", f"{base}/versions").json() == [1], "nothing refused changed the subject"
    assert "error_code" in call(READ, "GET", f"{url}/config/{subject}").json()  # no level was set
    assert call(ADMIN, "PUT", f"{url}/config/{subject}", {"compatibility": "NONE"}).status_code == 200
    assert call(ADMIN, "DELETE", base).json() == [1]
    assert call(ADMIN, "DELETE", f"{base}?permanent=true").json() == [1]
    assert call(READ, "GET", f"{base}/versions").status_code == 404
    for role, (user, password) in auth.items():
        wrong = http.get(f"{url}/subjects", auth=(user, password + "x"), timeout=10)
        assert wrong.status_code == 401 and wrong.json()["error_code"] == 401, role


# ---- the `kappa schema` CLI ------------------------------------------------------------------------
def run_schema_cli(stack: Config, *argv: str) -> int:
    from kappa.cli import main

    return main(["--profile", stack.profile, "schema", *argv])


def test_schema_cli_check_register_diff(
    stack: Config, tmp_path: Any, capsys: pytest.CaptureFixture[str], client: SchemaRegistryClient
) -> None:
    subject = unique("cli-value")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "v1.avsc").write_text(reading())
    (tmp_path / "r" / "v2.avsc").write_text(
        reading({"name": "unit", "type": ["null", "string"], "default": None})
    )
    (tmp_path / "r" / "v3.avsc").write_text(reading({"name": "site", "type": "string"}))  # no default
    toml = tmp_path / "subjects.toml"

    def declare(*versions: str, level: str = "FULL") -> None:
        listed = ", ".join(f'"r/{v}.avsc"' for v in versions)
        toml.write_text(f'[subjects."{subject}"]\ncompatibility = "{level}"\nversions = [{listed}]\n')

    root = ("--root", str(tmp_path))
    declare("v1", "v2")
    assert run_schema_cli(stack, *root, "check", "--offline") == 0
    assert run_schema_cli(stack, *root, "check") == 0
    assert run_schema_cli(stack, *root, "diff") == 1  # nothing registered yet
    assert "+ r/v1.avsc  not registered" in capsys.readouterr().out

    assert run_schema_cli(stack, *root, "register") == 0
    assert client.get_versions(subject) == [1, 2]
    assert client.get_compatibility(subject) == "FULL"  # the declared level was set
    assert run_schema_cli(stack, *root, "diff") == 0
    assert run_schema_cli(stack, *root, "register") == 0  # idempotent
    assert client.get_versions(subject) == [1, 2]
    capsys.readouterr()

    declare("v1", "v2", "v3")
    assert run_schema_cli(stack, *root, "check", "--offline") == 1
    assert "r/v3.avsc" in capsys.readouterr().out
    assert run_schema_cli(stack, *root, "check") == 1  # the registry's /compatibility says no, too
    out = capsys.readouterr().out
    assert "FAIL" in out and "site" in out and "reader_field_missing_default_value" in out
    assert run_schema_cli(stack, *root, "register") == 1
    assert client.get_versions(subject) == [1, 2]

    assert run_schema_cli(stack, *root, "show", subject, "--version", "1") == 0
    assert '"name": "Reading"' in capsys.readouterr().out
    assert run_schema_cli(stack, *root, "list") == 0
    assert subject in capsys.readouterr().out
