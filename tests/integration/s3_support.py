"""Raw S3 requests signed with AWS Signature V4 (stdlib hmac + requests): the tests see the gateway's
own HTTP status for each operation, which pyarrow and DuckDB hide behind their error texts."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from urllib.parse import quote

import requests

from kappa.config import Config


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signed(config: Config, method: str, path: str, keys: tuple[str, str] | None, body: bytes = b"",
           query: dict[str, str] | None = None) -> requests.Response:
    """`method` on `path` (`/bucket/key`) at the stack's S3 port, signed with `keys` (None: unsigned)."""
    s3 = config.s3
    host = f"{s3.host}:{s3.port}"
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                               for k, v in sorted((query or {}).items()))
    url = f"http://{host}{quote(path)}" + (f"?{canonical_query}" if canonical_query else "")
    if keys is None:
        return requests.request(method, url, data=body, timeout=10)
    now = dt.datetime.now(dt.UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed_headers = ";".join(sorted(headers))
    canonical = "\n".join([method, quote(path), canonical_query,
                           "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed_headers, payload])
    scope = f"{day}/{s3.region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{keys[1]}".encode(), day), s3.region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={keys[0]}/{scope}, SignedHeaders={signed_headers}, "
                                f"Signature={signature}")
    return requests.request(method, url, data=body, headers=headers, timeout=10)
