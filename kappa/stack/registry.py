"""The project's Confluent-compatible schema registry (`python -m kappa.registry`), backed by PostgreSQL,
served over HTTPS with a certificate from the stack's CA (kappa/registry/tls.py)."""

from __future__ import annotations

import os
import sys

from kappa.registry import READ, session, tls
from kappa.stack.base import Service


class RegistryService(Service):
    name = "registry"
    start_timeout_s = 45.0

    @property
    def host(self) -> str:
        return self.config.registry.host

    @property
    def ports(self) -> list[int]:
        return [self.config.registry.port]

    @property
    def enabled(self) -> bool:
        return self.config.registry.start

    def _launch(self) -> None:
        tls.issue(self.config)  # its certificate and key (mode 600), before the server reads them
        env = dict(os.environ)
        env["KAPPA_PROFILE"] = self.config.profile
        self.process.start(
            [sys.executable, "-m", "kappa.registry", "--host", self.host, "--port", str(self.ports[0])],
            env=env,
            cwd=self.config.root,
        )

    def ready(self) -> bool:
        with session(self.config, READ) as http:  # verifies the certificate: a wrong one is never "ready"
            return http.get(f"{self.config.registry.url}/subjects", timeout=2).status_code == 200
