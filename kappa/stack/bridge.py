"""The MQTT -> Kafka bridge as a stack service (`python -m kappa.bridge`), after kafka, registry and mqtt.

Ready means connected to both sides, as its status file says (`kappa.bridge.status`). Before the first
start it registers the subjects it writes under (the declared versions of `schemas/avro/subjects.toml`,
as `kappa schema register` does, idempotent): the bridge itself never auto-registers.
"""

from __future__ import annotations

import os
import sys
import warnings

from kappa.bridge import status
from kappa.config import Config
from kappa.registry import WRITE, client_conf, ensure_compatibility
from kappa.schemas import default_root, load_subjects, read_schema
from kappa.stack.base import Service
from kappa.stack.process import ServiceError


def register_bridge_subjects(config: Config) -> None:
    """Register the declared versions of the telemetry and edge dead-letter subjects (no-op if present)."""
    with warnings.catch_warnings(record=True):
        from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    wanted = {f"{config.kafka.telemetry_topic}-value", f"{config.kafka.edge_dead_letter_topic}-value"}
    client = SchemaRegistryClient(client_conf(config, WRITE))
    specs = [spec for spec in load_subjects(default_root(config.root)) if spec.subject in wanted]
    missing = wanted - {spec.subject for spec in specs}
    if missing:
        raise ServiceError(f"bridge: subject(s) {', '.join(sorted(missing))} not declared in subjects.toml")
    for spec in specs:
        ensure_compatibility(config, spec.subject, spec.compatibility)  # admin, only if it differs
        for path in spec.versions:
            client.register_schema(spec.subject, Schema(read_schema(path), "AVRO"))


class BridgeService(Service):
    name = "bridge"
    start_timeout_s = 60.0

    @property
    def host(self) -> str:
        return self.config.mqtt.host

    @property
    def ports(self) -> list[int]:
        return [self.config.mqtt.port]  # the broker port it connects to; it listens on nothing

    def taken_ports(self) -> list[int]:
        return []  # the port above is the broker's, in use by design

    def _launch(self) -> None:
        register_bridge_subjects(self.config)
        env = dict(os.environ)
        env["KAPPA_PROFILE"] = self.config.profile
        self.process.start([sys.executable, "-m", "kappa.bridge"], env=env, cwd=self.config.root)

    def ready(self) -> bool:
        current = status.read(status.status_file(self.config))
        return current is not None and current.pid == self.process.pid() and current.ready
