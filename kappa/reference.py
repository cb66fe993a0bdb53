"""First versions of the reference topics, from PostgreSQL (after `kappa db migrate`): idempotent."""

from __future__ import annotations

import psycopg

from kappa.config import Config
from kappa.devices import versions
from kappa.rules import service


def seed(config: Config, conn: psycopg.Connection) -> str:
    """Every default threshold and registered device without a version gets one valid from the epoch;
    PostgreSQL's copy of the rules is refreshed. Returns a line saying what was written ('' if nothing)."""
    rules = service.seed(config, conn)
    if not rules:
        service.refresh(config, conn)
    devices = versions.seed(config, conn)
    parts = [f"{len(rules)} rule version(s) to {config.kafka.rules_topic}"] if rules else []
    parts += [f"{len(devices)} device version(s) to {config.kafka.devices_topic}"] if devices else []
    return ("seeded " + " and ".join(parts) + " (valid from the epoch)") if parts else ""
