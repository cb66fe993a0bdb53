"""SeaweedFS on the real stack: only the S3 API, with its keys, reaches the data (issue #14 item 5), and
each of its three identities (admin, writer, reader: kappa/s3_security.py) only what its role allows.

The master's, volume server's and filer's HTTP ports and every gRPC port ask for a client certificate
from the stack's CA that weed's own components hold (kappa/stack/weed_security.py); behind that, the
volume server and the filer still want a JWT signed with keys only weed has. Each refusal is checked
next to the same request that succeeds, so it is the missing certificate or token that is refused.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import grpc
import pytest
import requests

from kappa import s3_security
from kappa.config import Config
from kappa.stack import weed_security
from kappa.stack.mosquitto import tls_files
from kappa.stack.mqtt_tls import issue_server_cert
from kappa.stack.objectstore import ObjectStoreService, s3_filesystem
from tests.integration.s3_support import signed

pytestmark = pytest.mark.integration

PROBE_METHOD = "/kappa.Probe/Nothing"  # no weed service has it: UNIMPLEMENTED means the call got through


@pytest.fixture(scope="module")
def weed_tls(stack: Config) -> weed_security.WeedTls:
    return weed_security.ensure_certs(stack, ObjectStoreService(stack).data_dir / "tls")


def _http_ports(config: Config) -> dict[str, int]:
    s3 = config.s3
    return {"master": s3.master_port, "volume": s3.volume_port, "filer": s3.filer_port}


def _grpc_ports(config: Config) -> dict[str, int]:
    s3 = config.s3
    return {"master": s3.master_port + 1, "volume": s3.volume_port + 1, "filer": s3.filer_port + 1,
            "s3": s3.port + 1}


def _https(config: Config, port: int, path: str) -> str:
    return f"https://{config.s3.host}:{port}{path}"


def _grpc_call(target: str, credentials: grpc.ChannelCredentials | None, method: str = PROBE_METHOD,
               request: bytes = b"") -> tuple[grpc.StatusCode, bytes]:
    """(status, reply) of one unary call with raw protobuf bytes, on a plain or TLS channel."""
    with (grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)) as channel:
        call = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            return grpc.StatusCode.OK, call(request, timeout=5)
        except grpc.RpcError as exc:
            return exc.code(), b""


def _put_object(config: Config, data: bytes) -> str:
    key = f"weed-probe-{uuid.uuid4().hex[:8]}.bin"
    with s3_filesystem(config, s3_security.WRITER).open_output_stream(f"{config.s3.bucket}/{key}") as out:
        out.write(data)
    return key


def _read_object(config: Config, key: str) -> bytes:
    with s3_filesystem(config).open_input_stream(f"{config.s3.bucket}/{key}") as src:
        return bytes(src.read())


def _holder(weed_tls: weed_security.WeedTls) -> requests.Session:
    """An HTTPS client that trusts the stack's CA and presents weed's own certificate."""
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE would replace `verify`
    session.verify = str(weed_tls.ca)
    session.cert = (str(weed_tls.cert), str(weed_tls.key))
    return session


def test_internal_http_ports_refuse_plain_http_and_clients_without_weeds_certificate(
        stack: Config, weed_tls: weed_security.WeedTls, tmp_path: Path) -> None:
    key = _put_object(stack, b"kept")
    # a certificate from the same CA, but a server's only (what Kafka, PostgreSQL and MQTT hold)
    issue_server_cert(tls_files(stack), tmp_path / "other.crt", tmp_path / "other.key", ["127.0.0.1"])
    # the master's admin URL that deletes a bucket's volumes, and each server's front page
    refused = {"master": f"/col/delete?collection={stack.s3.bucket}", "volume": "/status", "filer": "/"}
    served = {"master": "/cluster/status", "volume": "/status", "filer": "/"}
    holder = _holder(weed_tls)
    for server, port in _http_ports(stack).items():
        url = _https(stack, port, refused[server])
        plain = requests.get(url.replace("https://", "http://"), timeout=5)
        assert plain.status_code == 400, f"{server}: plain HTTP answered {plain.status_code}"
        for cert in (None, (str(tmp_path / "other.crt"), str(tmp_path / "other.key"))):
            with pytest.raises(requests.exceptions.ConnectionError):
                requests.get(url, verify=str(weed_tls.ca), cert=cert, timeout=5)
        # with weed's certificate the same port answers (the volume server and filer: their JWT check)
        answer = holder.get(_https(stack, port, served[server]), timeout=5)
        assert answer.status_code in (200, 401), f"{server}: {answer.status_code}"
    assert _read_object(stack, key) == b"kept"  # the refused /col/delete deleted nothing


def test_every_grpc_port_refuses_a_client_without_weeds_certificate(
        stack: Config, weed_tls: weed_security.WeedTls) -> None:
    ca = weed_tls.ca.read_bytes()
    without = grpc.ssl_channel_credentials(ca)
    holder = grpc.ssl_channel_credentials(ca, weed_tls.key.read_bytes(), weed_tls.cert.read_bytes())
    for component, port in _grpc_ports(stack).items():
        target = f"{stack.s3.host}:{port}"
        assert _grpc_call(target, None)[0] == grpc.StatusCode.UNAVAILABLE, f"{component}: plaintext gRPC served"
        assert _grpc_call(target, without)[0] == grpc.StatusCode.UNAVAILABLE, f"{component}: no client cert served"
        assert _grpc_call(target, holder)[0] == grpc.StatusCode.UNIMPLEMENTED, component


def _field(message: bytes, number: int) -> list[bytes]:
    """The length-delimited values of field `number` in a protobuf `message` (enough for the lookup)."""
    values, i = [], 0
    while i < len(message):
        tag, i = _varint(message, i)
        wire = tag & 7
        if wire == 0:
            _, i = _varint(message, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            length, i = _varint(message, i)
            if tag >> 3 == number:
                values.append(message[i:i + length])
            i += length
        else:
            raise ValueError(f"wire type {wire}")
    return values


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if byte < 0x80:
            return value, i


def _delimited(number: int, value: bytes) -> bytes:
    assert len(value) < 0x80
    return bytes([number << 3 | 2, len(value)]) + value


def _chunk_ids(config: Config, weed_tls: weed_security.WeedTls, key: str) -> list[str]:
    """The file ids of an S3 object's chunks, asked of the filer over gRPC with weed's certificate
    (filer_pb LookupDirectoryEntry: directory=1, name=2 -> entry=1 -> chunks=3 -> file_id=1)."""
    credentials = grpc.ssl_channel_credentials(weed_tls.ca.read_bytes(), weed_tls.key.read_bytes(),
                                               weed_tls.cert.read_bytes())
    request = _delimited(1, f"/buckets/{config.s3.bucket}".encode()) + _delimited(2, key.encode())
    status, reply = _grpc_call(f"{config.s3.host}:{config.s3.filer_port + 1}", credentials,
                               "/filer_pb.SeaweedFiler/LookupDirectoryEntry", request)
    assert status == grpc.StatusCode.OK
    (entry,) = _field(reply, 1)
    return [_field(chunk, 1)[0].decode() for chunk in _field(entry, 3)]


def test_behind_the_certificate_the_volume_server_and_filer_still_want_weeds_jwt(
        stack: Config, weed_tls: weed_security.WeedTls) -> None:
    """Even a client holding weed's certificate cannot read or write a file without the JWT keys."""
    data = os.urandom(64 << 10)
    key = _put_object(stack, data)
    chunk_ids = _chunk_ids(stack, weed_tls, key)
    assert chunk_ids, "the object has no chunk on the volume server"
    holder, ports = _holder(weed_tls), _http_ports(stack)
    for chunk_id in chunk_ids:  # read a real file by its id
        refused = holder.get(_https(stack, ports["volume"], f"/{chunk_id}"), timeout=5)
        assert refused.status_code == 401 and data[:16] not in refused.content
    # the master assigns a file id but signs no write for it without the key ...
    assigned = holder.get(_https(stack, ports["master"], "/dir/assign"), timeout=5).json()
    assert assigned["fid"] and not assigned.get("auth")
    write = holder.post(_https(stack, ports["volume"], f"/{assigned['fid']}"), files={"file": b"intruder"},
                        timeout=5)
    assert write.status_code == 401
    # ... and the filer takes no upload and gives no listing
    bucket_url = _https(stack, ports["filer"], f"/buckets/{stack.s3.bucket}/")
    upload = holder.post(bucket_url + "intruder.txt", files={"file": b"intruder"}, timeout=5)
    assert upload.status_code == 401
    listing = holder.get(bucket_url, timeout=5)
    assert listing.status_code == 401 and key not in listing.text
    # S3 with its keys is served as before, and holds no intruder
    from pyarrow import fs as pafs

    assert _read_object(stack, key) == data
    names = [info.base_name for info in s3_filesystem(stack).get_file_info(pafs.FileSelector(stack.s3.bucket))]
    assert key in names and "intruder.txt" not in names


# --- S3 identities (kappa/s3_security.py): admin, writer, reader -----------------------------------------

def test_the_reader_reads_and_lists_but_cannot_put_or_delete(stack: Config) -> None:
    writer, reader = s3_security.keys(stack, s3_security.WRITER), s3_security.keys(stack, s3_security.READER)
    bucket, key = stack.s3.bucket, f"roles-{uuid.uuid4().hex[:8]}.txt"
    path = f"/{bucket}/{key}"
    assert signed(stack, "PUT", path, writer, b"written by the writer").status_code == 200
    assert signed(stack, "GET", path, reader).content == b"written by the writer"
    listing = signed(stack, "GET", f"/{bucket}", reader, query={"list-type": "2", "prefix": "roles-"})
    assert listing.status_code == 200 and key in listing.text
    # the reader may neither overwrite, nor add, nor delete
    assert signed(stack, "PUT", path, reader, b"overwritten").status_code == 403
    assert signed(stack, "PUT", f"{path}.new", reader, b"new").status_code == 403
    assert signed(stack, "DELETE", path, reader).status_code == 403
    assert signed(stack, "GET", path, reader).content == b"written by the writer"
    assert signed(stack, "GET", f"{path}.new", reader).status_code == 404
    # the writer may (DELETE answers 204), and the object is gone for both
    assert signed(stack, "DELETE", path, writer).status_code == 204
    assert signed(stack, "GET", path, reader).status_code == 404


def test_a_wrong_or_missing_key_is_refused(stack: Config) -> None:
    writer = s3_security.keys(stack, s3_security.WRITER)
    path = f"/{stack.s3.bucket}/wrong-key-{uuid.uuid4().hex[:8]}.txt"
    assert signed(stack, "PUT", path, (writer[0], writer[1] + "x"), b"x").status_code == 403  # wrong secret
    assert signed(stack, "PUT", path, ("kappaunknown0", writer[1]), b"x").status_code == 403  # unknown access key
    assert signed(stack, "PUT", path, None, b"x").status_code == 403  # anonymous
    assert signed(stack, "GET", f"/{stack.s3.bucket}", None, query={"list-type": "2"}).status_code == 403
    assert signed(stack, "GET", path, s3_security.keys(stack, s3_security.READER)).status_code == 404  # nothing written


def test_only_the_admin_manages_buckets(stack: Config) -> None:
    """The writer and reader are scoped to the project's bucket: no bucket created, deleted, or read elsewhere."""
    admin, writer, reader = (s3_security.keys(stack, role) for role in s3_security.ROLES)
    other = f"kappa-other-{uuid.uuid4().hex[:8]}"
    for keys in (writer, reader):
        assert signed(stack, "PUT", f"/{other}", keys).status_code == 403
        assert signed(stack, "DELETE", f"/{stack.s3.bucket}", keys).status_code == 403
    assert signed(stack, "PUT", f"/{other}", admin).status_code == 200
    try:
        assert signed(stack, "PUT", f"/{other}/x.txt", admin, b"admin's").status_code == 200
        assert signed(stack, "GET", f"/{other}/x.txt", writer).status_code == 403
        assert signed(stack, "PUT", f"/{other}/y.txt", writer, b"y").status_code == 403
        assert signed(stack, "GET", f"/{other}/x.txt", reader).status_code == 403
    finally:
        signed(stack, "DELETE", f"/{other}/x.txt", admin)
        assert signed(stack, "DELETE", f"/{other}", admin).status_code == 204


def test_clients_get_the_reader_unless_they_write(stack: Config) -> None:
    """pyarrow's filesystem reads with the reader's keys by default: a write through it is refused."""
    key = _put_object(stack, b"through the writer")
    assert _read_object(stack, key) == b"through the writer"
    denied = pytest.raises(OSError, match="ACCESS_DENIED|AccessDenied|403")
    with denied, s3_filesystem(stack).open_output_stream(f"{stack.s3.bucket}/{key}") as out:
        out.write(b"through the reader")
    assert _read_object(stack, key) == b"through the writer"
    s3_filesystem(stack, s3_security.WRITER).delete_file(f"{stack.s3.bucket}/{key}")
