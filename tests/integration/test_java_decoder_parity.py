"""The Java decoder UDF (udfs/java, io.kappa.udfs.DecodeTelemetry) against the Python decoder
(udfs.avro_decoder) on the same bytes: same reason code, same fields, same schema id, per payload.

Self-contained (no stack): the schemas are served over HTTPS by a local http.server thread on port 0, with
a certificate from a CA of its own that both decoders are told to trust (the Java one through the JVM system
property kappa.flinkenv sets for a job); the UDF runs in a PyFlink MiniCluster (the jar is built with mvn if it
is not in .kappa/jars/flink yet).
"""

from __future__ import annotations

import io
import json
import math
import random
import re
import shutil
import ssl
import struct
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import fastavro
import pytest

from kappa.registry import tls
from kappa.stack.mqtt_tls import ensure_tls, issue_server_cert
from tests.unit.test_avro_decoder import reading  # the same valid reading as the unit tests
from udfs.avro_decoder import BATCH_FIELDS, AvroDecoder, DecodeResult, Reason
from udfs.java_udf import JAVA_DECODER_CLASS, find_java_udf_jar, register_java_decoder
from udfs.schema_lookup import RegistrySchemaLookup

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
JARS_DIR = ROOT / ".kappa/jars/flink"
SCHEMAS = ROOT / "schemas/avro/telemetry"
V1 = (SCHEMAS / "v1.avsc").read_text()
V2 = (SCHEMAS / "v2.avsc").read_text()
V3 = (SCHEMAS / "v3.avsc").read_text()
NO_SITE = json.dumps(
    {
        "type": "record",
        "name": "Telemetry",
        "namespace": "io.kappa.iot",
        "fields": [{"name": "device_id", "type": "string"}],
    }
)
OTHER_NAME = json.dumps({**json.loads(V1), "name": "Reading", "namespace": "io.other"})
INT_DEVICE = json.dumps(
    {**json.loads(V1), "fields": [{"name": "device_id", "type": "int"}, *json.loads(V1)["fields"][1:]]}
)
NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000
# id -> schema text served by the fake registry; other ids answer 404.
REGISTRY = {1: V1, 2: V2, 3: NO_SITE, 4: "{not json", 5: OTHER_NAME, 6: INT_DEVICE, 7: V3}
FIELDS = [name for name, _ in BATCH_FIELDS]


def frame(schema_id: int, schema: str, record: dict) -> bytes:
    buf = io.BytesIO()
    buf.write(struct.pack(">bi", 0, schema_id))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(json.loads(schema)), record)
    return buf.getvalue()


def random_reading(rng: random.Random) -> dict:
    kind = rng.choice(["thermal", "vibration", "environmental", "power"])
    value = lambda lo, hi: round(rng.uniform(lo, hi), rng.randrange(0, 6))  # noqa: E731
    return reading(
        device_id=f"dev-{rng.randrange(100000):05d}",
        site_id=rng.choice(["site-01", "site-02", "Werk München", "工厂-3"]),
        device_type=kind,
        seq=rng.randrange(2**40),
        event_time=NOW - rng.randrange(10 * DAY),
        status=rng.choice(["OK", "WARN", "FAULT", "MAINTENANCE"]),
        firmware_version=f"{rng.randrange(3)}.{rng.randrange(10)}.{rng.randrange(10)}",
        temperature_c=None if kind == "none" else value(-40, 120),
        humidity_pct=value(0, 100) if kind == "environmental" else None,
        pressure_hpa=value(950, 1050) if kind == "environmental" else None,
        vibration_mm_s=value(0, 40) if kind == "vibration" else None,
        power_w=value(0, 50_000) if kind == "power" else None,
        battery_pct=None if kind == "power" else value(0, 100),
        signal_rssi_dbm=rng.choice([None, rng.randrange(-110, -30)]),
        location=rng.choice(
            [None, {"lat": value(-90, 90), "lon": value(-180, 180), "alt_m": rng.choice([None, value(-50, 3000)])}]
        ),
    )


def payloads() -> list[tuple[str, bytes | None]]:
    """(kind, payload): valid v1/v2/v3 and every malformed kind, ~300 in all."""
    rng = random.Random(20260101)
    out: list[tuple[str, bytes | None]] = []
    for _ in range(40):
        rec = random_reading(rng)
        out.append(("valid-v2", frame(2, V2, rec)))
        out.append(("valid-v1", frame(1, V1, rec)))
        out.append(("valid-v3", frame(7, V3, {**rec, "uptime_s": rng.choice([None, rng.randrange(3_153_600_000)])})))
    out.append(("valid-bound", frame(2, V2, reading(event_time=NOW + DAY))))
    out.append(("valid-unicode", frame(2, V2, reading(device_id="dév-✓-🚀"))))
    out += [("too-short", p) for p in (None, b"", b"\x00", b"\x00\x00\x00\x02")]
    out += [("bad-magic", p) for p in (b'{"device_id": "dev-1"}', b"\x01\x00\x00\x00\x02abc", b"\xff" * 9)]
    out += [("unknown-id", frame(i, V2, reading())) for i in (99, 4, -7)]
    out.append(("resolution", frame(3, NO_SITE, {"device_id": "dev-1"})))
    out.append(("resolution-name", frame(5, OTHER_NAME, reading())))
    out.append(("resolution-type", frame(6, INT_DEVICE, reading(device_id=42))))
    out.append(("corrupt-empty-no-site", b"\x00\x00\x00\x00\x03"))
    good_v2, good_v1 = frame(2, V2, reading()), frame(1, V1, reading(location=None))
    out += [("truncated-v2", good_v2[:cut]) for cut in range(5, len(good_v2))]
    out += [("truncated-v1", good_v1[:cut]) for cut in range(5, len(good_v1), 3)]
    out += [("trailing", good_v2 + b"\x00\x01"), ("trailing", good_v1 + b"\x00")]
    enum_at = 5 + 1 + len("dev-00001") + 1 + len("site-01")
    for index_byte in (0x7E, 0x0A, 0x08):  # device_type index 63, 5 (out of range), 4 ('unknown')
        bad = bytearray(good_v2)
        bad[enum_at] = index_byte
        out.append(("enum-index", bytes(bad)))
    bad_utf8 = bytearray(good_v2)
    bad_utf8[6] = 0xFF
    out.append(("bad-utf8", bytes(bad_utf8)))
    out.append(("surrogate-utf8", frame(2, V2, reading(device_id="ab")).replace(b"ab", b"\xed\xa0")))
    for overrides in (
        {"temperature_c": math.nan},
        {"humidity_pct": math.inf},
        {"battery_pct": -math.inf},
        {"location": {"lat": math.nan, "lon": 1.0, "alt_m": None}},
        {"event_time": NOW + DAY + 1},
    ):
        out.append(("invalid-value", frame(2, V2, reading(**overrides))))
    out.append(("invalid-value-v1", frame(1, V1, reading(power_w=math.inf))))
    for overrides in (  # outside schemas/avro/telemetry/limits.json: same reason and text in both
        {"device_id": "dev\x00-1"},
        {"site_id": "\x00"},
        {"device_id": ""},
        {"site_id": "s" * 129},
        {"device_id": "\u00e9" * 129},
        {"firmware_version": "1" * 65},
        {"humidity_pct": 1e300},
        {"battery_pct": -5.0},
        {"signal_rssi_dbm": 40},
        {"location": {"lat": 1.0, "lon": 181.0, "alt_m": None}},
    ):
        out.append(("limits", frame(2, V2, reading(**overrides))))
    out += [("limits-v3", frame(7, V3, reading(uptime_s=value))) for value in (-1, 3_153_600_001, 2**63 - 1)]
    out.append(("limits-edge-v3", frame(7, V3, reading(uptime_s=3_153_600_000))))
    out.append(("limits-edge", frame(2, V2, reading(device_id="\u00e9" * 128, humidity_pct=100.0))))
    out.append(("oversized", frame(2, V2, reading(firmware_version="f" * 70_000))))
    for _ in range(60):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
        out.append(("garbage", struct.pack(">bI", 0, rng.choice([1, 2, 3])) + body))
    for _ in range(60):
        schema_id, schema = rng.choice([(1, V1), (2, V2), (7, V3)])
        flipped = bytearray(frame(schema_id, schema, random_reading(rng)))
        flipped[rng.randrange(5, len(flipped))] ^= 1 << rng.randrange(8)
        out.append(("bit-flip", bytes(flipped)))
    return out


def negative_indexes() -> list[tuple[str, bytes]]:
    """Corrupt enum/union indexes < 0: fastavro indexes Python lists with them (-1 = last symbol/branch)
    and decodes the record as valid; Avro Java (and the Java UDF) report CORRUPT_BODY."""
    good = frame(2, V2, reading())
    enum_at = 5 + 1 + len("dev-00001") + 1 + len("site-01")
    union_at = good.index(b"1.5.0") + len("1.5.0")  # temperature_c's branch index
    out = []
    for kind, at, byte in (("enum -1", enum_at, 0x01), ("enum -2", enum_at, 0x03), ("union -1", union_at, 0x01)):
        bad = bytearray(good)
        bad[at] = byte
        out.append((kind, bytes(bad)))
    return out


class _Registry(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server API
        schema_id = int(self.path.rsplit("/", 1)[1])
        if schema_id in REGISTRY:
            status, body = 200, json.dumps({"schema": REGISTRY[schema_id]})
        else:
            status, body = 404, json.dumps({"error_code": 40403, "message": "Schema not found"})
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def registry_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ssl.SSLContext]]:
    """A CA of the test's own, its server context for 127.0.0.1, and the Java decoder told to trust it (the
    system property the decoder reads first; restored after the module)."""
    from pyflink.java_gateway import get_gateway

    folder = tmp_path_factory.mktemp("registry-tls")
    ca = ensure_tls(folder / "ca", ["127.0.0.1"])
    issue_server_cert(ca, folder / "server.crt", folder / "server.key", ["127.0.0.1"])
    system = get_gateway().jvm.System
    before = system.getProperty("kappa.registry.ca_file")
    system.setProperty("kappa.registry.ca_file", str(ca.ca_cert))
    try:
        yield ca.ca_cert, tls.server_context(folder / "server.crt", folder / "server.key")
    finally:
        if before is None:
            system.clearProperty("kappa.registry.ca_file")
        else:
            system.setProperty("kappa.registry.ca_file", before)


@pytest.fixture(scope="module")
def registry_url(registry_ca: tuple[Path, ssl.SSLContext]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    server.socket = registry_ca[1].wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def python_lookup(registry_url: str, registry_ca: tuple[Path, ssl.SSLContext]) -> RegistrySchemaLookup:
    return RegistrySchemaLookup(registry_url, verify=str(registry_ca[0]))


@pytest.fixture(scope="module")
def java_udf_jar() -> Path:
    jar = find_java_udf_jar(JARS_DIR)
    if jar is None:
        if shutil.which("mvn") is None:
            pytest.skip("kappa-udfs jar not built and mvn not available")
        subprocess.run(["mvn", "-q", "-B", "-f", str(ROOT / "udfs/java/pom.xml"), "package", "-DskipTests"], check=True)
        jar = find_java_udf_jar(JARS_DIR)
    assert jar is not None
    return jar


def run_java_decoder(jar: Path, url: str, data: list[bytes | None], now_ms: int) -> list[tuple]:
    """decode_telemetry over `data` in a PyFlink MiniCluster; one tuple of FIELDS per payload, in order."""
    from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    t_env.get_config().set("pipeline.jars", jar.resolve().as_uri())
    t_env.get_config().set("parallelism.default", "1")
    register_java_decoder(t_env)
    rows = [(i, None if p is None else bytearray(p)) for i, p in enumerate(data)]  # BYTES takes bytearray
    schema = DataTypes.ROW([DataTypes.FIELD("idx", DataTypes.INT()), DataTypes.FIELD("payload", DataTypes.BYTES())])
    t_env.create_temporary_view("payloads", t_env.from_elements(rows, schema))
    fields = ", ".join(f"r.{name} AS {name}" for name in FIELDS)
    table = t_env.sql_query(
        f"SELECT idx, {fields} FROM "
        f"(SELECT idx, decode_telemetry(payload, '{url}', CAST({now_ms} AS BIGINT)) AS r FROM payloads)"
    )
    out: dict[int, tuple] = {}
    with table.execute().collect() as results:
        for row in results:
            values = tuple(row)
            out[values[0]] = values[1:]
    return [out[i] for i in range(len(data))]


def expected(result: DecodeResult) -> tuple:
    """The Java row the Python result stands for (the Java UDF keeps schema_id on failures too)."""
    row = dict(result.row or {})
    row["schema_id"] = result.schema_id
    row["dlq_reason"] = None if result.reason is None else str(result.reason)
    row["dlq_error"] = result.error
    return tuple(row.get(name) for name in FIELDS)


# dlq_error texts that come from the decoder itself (not from the Avro library) must match too.
_SAME_TEXT = ("is not registered", "trailing bytes", "No default value")
_NEGATIVE_INDEX = re.compile(r"IndexOutOfBoundsException at body byte \d+: Index -\d+ out of bounds")


@pytest.fixture(scope="module")
def java_rows(registry_url: str, java_udf_jar: Path) -> dict[bytes | None, tuple]:
    """payload -> the Java UDF's row, for payloads() + negative_indexes(), in one Flink job."""
    data = [p for _, p in payloads() + negative_indexes()]
    return dict(zip(data, run_java_decoder(java_udf_jar, registry_url, data, NOW), strict=True))


def test_java_udf_matches_python_decoder(python_lookup: RegistrySchemaLookup,
                                         java_rows: dict[bytes | None, tuple]) -> None:
    cases = payloads()
    assert len(cases) >= 200
    data = [p for _, p in cases]
    python = AvroDecoder(python_lookup)
    want = [expected(python.decode(p, NOW)) for p in data]
    got = [java_rows[p] for p in data]

    reason_at, error_at = FIELDS.index("dlq_reason"), FIELDS.index("dlq_error")
    mismatches, negative = [], 0
    for (kind, payload), w, g in zip(cases, want, got, strict=True):
        if w[reason_at] is None and g[reason_at] == "CORRUPT_BODY" and _NEGATIVE_INDEX.search(g[error_at]):
            negative += 1  # the known fastavro leniency, see negative_indexes()
            continue
        same_text = w[reason_at] in {"TOO_SHORT", "BAD_MAGIC", "INVALID_VALUE", None} or any(
            s in (w[error_at] or "") for s in _SAME_TEXT
        )
        if (
            w[:error_at] != g[:error_at]
            or (same_text and w[error_at] != g[error_at])
            or (g[error_at] is None) != (w[error_at] is None)
        ):
            mismatches.append((kind, payload, w, g))
    reasons = {w[reason_at] for w in want}
    assert reasons == {None, *(str(r) for r in Reason)}, reasons  # every code was exercised
    detail = "\n".join(f"{k}: {p!r}\n  python {w}\n  java   {g}" for k, p, w, g in mismatches[:10])
    assert not mismatches, f"{len(mismatches)} of {len(cases)} differ:\n{detail}"
    assert negative <= 3, negative
    # v3's uptime_s in both: set or null as written by v3, always null from v1 and v2 writers
    uptime_at = FIELDS.index("uptime_s")
    by_kind: dict[str, list[object]] = {}
    for (kind, _), g in zip(cases, got, strict=True):
        by_kind.setdefault(kind, []).append(g[uptime_at])
    assert None in by_kind["valid-v3"] and any(u is not None for u in by_kind["valid-v3"])
    assert set(by_kind["valid-v1"] + by_kind["valid-v2"]) == {None} and by_kind["limits-edge-v3"] == [3_153_600_000]


def test_negative_indexes_are_corrupt_in_java(python_lookup: RegistrySchemaLookup,
                                              java_rows: dict[bytes | None, tuple]) -> None:
    """The one known divergence: Java is stricter than fastavro here (see negative_indexes)."""
    python = AvroDecoder(python_lookup)
    reason_at = FIELDS.index("dlq_reason")
    for kind, payload in negative_indexes():
        assert java_rows[payload][reason_at] == "CORRUPT_BODY", kind
        assert python.decode(payload, NOW).reason in (None, Reason.CORRUPT_BODY), kind  # None today (fastavro)


def test_java_class_name_is_the_registered_one() -> None:
    source = ROOT / "udfs/java/src/main/java" / (JAVA_DECODER_CLASS.replace(".", "/") + ".java")
    assert source.is_file()
