"""librdkafka's log lines go to <data_dir>/logs/kafka-clients.log, not to the terminal: `make demo` used
to print a hundred `Connect to ipv4#127.0.0.1:...: Connection refused` lines while the broker started."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

# a producer against a port nothing listens on, polled until librdkafka has logged the refusal
_SCRIPT = """
import logging
import sys
from kappa import kafka_clients, waiting
from kappa.config import load_config

config = load_config()
# argv[1] 'module': a module's logger that nothing handles (Python would print it on stderr)
logger = logging.getLogger("kappa.reference") if sys.argv[1] == "module" else None
producer = kafka_clients.producer(config, logger, **{"reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 200})
producer.produce("nowhere", b"x")
path = kafka_clients.client_log_path(config)
deadline = waiting.Deadline(60)
while not deadline.passed:
    producer.poll(0.2)
    if path.exists() and "Connection refused" in path.read_text():
        print("logged")
        break
producer.purge()
producer.flush(0)
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("logger", ["none", "module"])
def test_refused_connections_go_to_the_log_file_not_stderr(logger: str, tmp_path: Path) -> None:
    env = {**os.environ, "KAPPA_PATHS__DATA_DIR": str(tmp_path), "KAPPA_KAFKA__HOST": "127.0.0.1",
           "KAPPA_KAFKA__PORT": str(_closed_port()), "KAPPA_KAFKA__SECURITY_PROTOCOL": "PLAINTEXT"}
    done = subprocess.run([sys.executable, "-c", _SCRIPT, logger], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "logged"  # the refusal happened, and was logged
    assert done.stderr == ""
    log = (tmp_path / "logs" / "kafka-clients.log").read_text()
    assert "Connection refused" in log


def test_a_handled_logger_keeps_the_lines(tmp_path: Path) -> None:
    """The bridge (and pytest) handle their loggers: the client logs there, not to the file."""
    import logging

    from kappa import kafka_clients
    from kappa.config import load_config

    config = load_config(environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path)})
    handled = logging.getLogger("kappa.test.handled")
    handled.addHandler(logging.NullHandler())
    unhandled = logging.getLogger("kappa.test.unhandled")
    unhandled.propagate = False
    assert kafka_clients.client_logger(config, handled) is handled
    file_logger = kafka_clients.client_logger(config, unhandled)
    assert file_logger is kafka_clients.client_logger(config, None) is kafka_clients.file_logger(config)
    assert not file_logger.propagate


def test_client_debug_contexts_reach_the_log_file_only_when_configured(tmp_path: Path) -> None:
    """`kafka.client_debug` (here "broker") turns on librdkafka's debug lines, which go to the same file."""
    base = {**os.environ, "KAPPA_KAFKA__HOST": "127.0.0.1", "KAPPA_KAFKA__PORT": str(_closed_port()),
            "KAPPA_KAFKA__SECURITY_PROTOCOL": "PLAINTEXT"}
    logs = {}
    for debug in ("", "broker"):
        folder = tmp_path / (debug or "none")
        env = {**base, "KAPPA_PATHS__DATA_DIR": str(folder), "KAPPA_KAFKA__CLIENT_DEBUG": debug}
        done = subprocess.run([sys.executable, "-c", _SCRIPT, "none"], capture_output=True, text=True, env=env,
                              check=False)
        assert done.returncode == 0 and done.stdout.strip() == "logged", done.stderr
        assert done.stderr == ""
        logs[debug] = (folder / "logs" / "kafka-clients.log").read_text().splitlines()
    assert not [line for line in logs[""] if " DEBUG " in line]
    debug_lines = [line for line in logs["broker"] if " DEBUG " in line]
    assert any("CONNECT" in line for line in debug_lines), debug_lines[:5]
