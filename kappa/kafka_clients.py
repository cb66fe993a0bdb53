"""The one place Kafka clients are built from the config object (bootstrap, security, logging).

Callers pass only what is specific to their use (idempotence, group id, ...) and, for unattended
components, the principal they run as (`role`, see kappa/kafka_security.py; default: the admin
principal), so pointing the project at another cluster is a change of configuration, not of code.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from kappa.config import Config
from kappa.kafka_security import ADMIN, client_settings

# Typed Any on purpose: callers splat librdkafka settings (`**{"linger.ms": 5}`), whose values have mixed
# types, and mypy would otherwise match that dict against these two parameters too.
_Logger = Any  # logging.Logger | None
_Role = Any  # str: a role of kappa.kafka_security.PRINCIPALS, or ADMIN


CLIENT_LOG = "kafka-clients.log"
_loggers: dict[Path, logging.Logger] = {}
_lock = threading.Lock()


def client_log_path(config: Config) -> Path:
    return config.data_dir / "logs" / CLIENT_LOG


def file_logger(config: Config) -> logging.Logger:
    """The logger of librdkafka's lines for clients without their own: a file, never the terminal
    (it does not propagate to the root logger)."""
    path = client_log_path(config)
    with _lock:
        logger = _loggers.get(path)
        if logger is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            logger = logging.getLogger(f"kappa.librdkafka.{len(_loggers)}")
            logger.propagate = False
            logger.setLevel(logging.DEBUG)
            handler = logging.FileHandler(path, delay=True)
            handler.setFormatter(logging.Formatter("%(asctime)s pid %(process)d %(levelname)s %(message)s"))
            logger.addHandler(handler)
            _loggers[path] = logger
    return logger


def client_logger(config: Config, logger: logging.Logger | None) -> logging.Logger:
    """`logger` if a handler of its own or of an ancestor takes its records, else the file logger."""
    return logger if logger is not None and logger.hasHandlers() else file_logger(config)


def _base(config: Config, logger: logging.Logger | None, role: str) -> dict[str, Any]:
    conf = client_settings(config, role)
    # librdkafka's own log lines go to this logger (delivered when the client polls), not to stderr
    conf["logger"] = client_logger(config, logger)
    if config.kafka.client_debug:
        conf["debug"] = config.kafka.client_debug
    return conf


def producer(config: Config, logger: _Logger = None, *, role: _Role = ADMIN,
             **overrides: Any) -> Producer:
    """A producer for the configured cluster; `overrides` use librdkafka's dotted names as keys,
    so pass them through a dict: ``producer(config, **{"enable.idempotence": True})``."""
    return Producer({**_base(config, logger, role), **overrides})


def reliable_producer(config: Config, logger: _Logger = None, *, role: _Role = ADMIN,
                      **overrides: Any) -> Producer:
    """A producer that never gives up on a record by itself: acks=all, idempotent (no duplicates or
    reordering from its own retries), no delivery timeout (`message.timeout.ms=0` = infinite)."""
    conf = {"acks": "all", "enable.idempotence": True, "message.timeout.ms": 0, **overrides}
    return producer(config, logger, role=role, **conf)


def consumer(config: Config, group_id: str, logger: _Logger = None, *, role: _Role = ADMIN,
             **overrides: Any) -> Consumer:
    return Consumer({**_base(config, logger, role), "group.id": group_id, **overrides})


def admin(config: Config, logger: _Logger = None, *, role: _Role = ADMIN,
          **overrides: Any) -> AdminClient:
    return AdminClient({**_base(config, logger, role), **overrides})
