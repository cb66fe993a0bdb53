"""The one place Kafka clients are built from the config object (bootstrap servers, logging).

Callers pass only what is specific to their use (idempotence, group id, ...), so pointing the
project at another cluster, or adding security settings later, is a change here and nowhere else.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from kappa.config import Config


def _base(config: Config, logger: logging.Logger | None) -> dict[str, Any]:
    conf: dict[str, Any] = {"bootstrap.servers": config.kafka.bootstrap}
    if logger is not None:  # librdkafka's own log lines go to this logger, not to stderr
        conf["logger"] = logger
    return conf


def producer(config: Config, logger: logging.Logger | None = None, **overrides: Any) -> Producer:
    """A producer for the configured cluster; `overrides` use librdkafka's dotted names as keys,
    so pass them through a dict: ``producer(config, **{"enable.idempotence": True})``."""
    return Producer({**_base(config, logger), **overrides})


def reliable_producer(config: Config, logger: logging.Logger | None = None, **overrides: Any) -> Producer:
    """A producer that never gives up on a record by itself: acks=all, idempotent (no duplicates or
    reordering from its own retries), no delivery timeout (`message.timeout.ms=0` = infinite)."""
    conf = {"acks": "all", "enable.idempotence": True, "message.timeout.ms": 0, **overrides}
    return producer(config, logger, **conf)


def consumer(config: Config, group_id: str, logger: logging.Logger | None = None, **overrides: Any) -> Consumer:
    return Consumer({**_base(config, logger), "group.id": group_id, **overrides})


def admin(config: Config, logger: logging.Logger | None = None, **overrides: Any) -> AdminClient:
    return AdminClient({**_base(config, logger), **overrides})
