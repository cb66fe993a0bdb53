"""The bridge's health as a small JSON file it rewrites every second or two.

Readiness for `kappa stack up` and the numbers for `kappa bridge status` come from this file: it
needs no port, survives nothing stale (a file older than `STALE_S` or of a dead PID means "down"),
and says why acknowledgements stopped (Kafka unreachable, backlog of unacknowledged messages).
"""

from __future__ import annotations

import bisect
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kappa.config import Config

STALE_S = 10.0
# Upper bounds (seconds) of the arrival-to-Kafka-acknowledgement latency histogram (kappa.metrics).
ACK_LATENCY_BOUNDS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def status_file(config: Config, client_id: str | None = None) -> Path:
    return config.data_dir / "bridge" / f"{client_id or config.mqtt.bridge_client_id}.status.json"


@dataclass
class BridgeStatus:
    pid: int = field(default_factory=os.getpid)
    client_id: str = ""
    mqtt_connected: bool = False
    kafka_connected: bool = False
    backlog: int = 0  # messages received, not yet acknowledged (waiting for Kafka)
    oldest_unacked_s: float = 0.0
    forwarded: int = 0  # telemetry records confirmed by Kafka
    dead_lettered: int = 0  # dead letters confirmed by Kafka
    redeliveries: int = 0  # messages the broker marked DUP (forwarded again, de-duplicated downstream)
    failed_deliveries: int = 0  # delivery reports with an error (the record is produced again)
    note: str = ""
    updated_at: float = 0.0
    # Records acknowledged by Kafka, by latency from MQTT arrival: one count per bound, then "more".
    ack_latency_counts: list[int] = field(default_factory=lambda: [0] * (len(ACK_LATENCY_BOUNDS_S) + 1))
    ack_latency_sum_s: float = 0.0

    def observe_ack_latency(self, seconds: float) -> None:
        self.ack_latency_counts[bisect.bisect_left(ACK_LATENCY_BOUNDS_S, seconds)] += 1
        self.ack_latency_sum_s += seconds

    @property
    def ready(self) -> bool:
        return self.mqtt_connected and self.kafka_connected

    def line(self) -> str:
        state = "ready" if self.ready else "NOT READY"
        return (f"{state}: mqtt {'up' if self.mqtt_connected else 'down'}, "
                f"kafka {'up' if self.kafka_connected else 'down'}, backlog {self.backlog} "
                f"(oldest {self.oldest_unacked_s:.1f}s), forwarded {self.forwarded}, "
                f"dead letters {self.dead_lettered}, redeliveries {self.redeliveries}"
                + (f"; {self.note}" if self.note else ""))


def write(path: Path, status: BridgeStatus) -> None:
    """Replace the file atomically so a reader never sees half of it."""
    status.updated_at = time.time()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(status), indent=1))
    os.replace(tmp, path)


def read(path: Path) -> BridgeStatus | None:
    """The last status, or None when there is none or it is stale (the bridge is not running)."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    status = BridgeStatus(**{k: v for k, v in data.items() if k in BridgeStatus.__dataclass_fields__})
    if time.time() - status.updated_at > STALE_S:
        return None
    return status
