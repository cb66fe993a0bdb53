"""Process entry for the bridge (`python -m kappa.bridge` and `kappa bridge run`): logging, signals, exit code.

Library output (paho's and librdkafka's log lines, Python warnings) goes to the log file only; with a
log file, the terminal gets just the bridge's own messages.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from kappa.config import Config

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Why: paho's network thread gives up the GIL ~7 times per MQTT packet (select, SSL pending/read/write);
# with the default 5 ms switch interval it then waits behind the busy worker for up to 5 ms each time,
# so the network thread starved while the worker idled. 1 ms measured +15-35% drain rate; the bridge
# is its own process, so this touches nothing else.
GIL_SWITCH_INTERVAL_S = 0.001


class _OwnMessages(logging.Filter):
    """Only the bridge's own logger, not the libraries it hands loggers to (kappa.bridge.paho, ...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "kappa.bridge"


def configure_logging(log_file: Path | None, console: bool = True) -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if log_file is None:  # a stack service: stdout/stderr already are the service's log file
        root.addHandler(_handler(logging.StreamHandler(sys.stderr)))
    else:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        root.addHandler(_handler(logging.FileHandler(log_file)))
        if console:
            screen = _handler(logging.StreamHandler(sys.stderr))
            screen.addFilter(_OwnMessages())
            root.addHandler(screen)
    logging.getLogger("kappa.bridge.paho").setLevel(logging.INFO)  # DEBUG would log every packet
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per registry request otherwise
    logging.captureWarnings(True)


def _handler(handler: logging.Handler) -> logging.Handler:
    handler.setFormatter(logging.Formatter(FORMAT))
    return handler


def run(config: Config, client_id: str | None = None, log_file: Path | None = None, console: bool = True) -> int:
    """Run one bridge in this process until SIGTERM/SIGINT; returns the exit code."""
    configure_logging(log_file, console)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    from kappa.bridge.runtime import Bridge  # after logging: importing the serdes may warn

    bridge = Bridge(config, client_id=client_id)

    def stop(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("kappa.bridge").info("signal %d: stopping", signum)
        bridge.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return bridge.run()
