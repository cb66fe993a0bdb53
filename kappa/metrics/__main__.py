"""`python -m kappa.metrics`: serve the project's exporter on metrics.host:metrics.exporter_port.

Started by `kappa stack up` (kappa/stack/exporters.py); the profile comes from KAPPA_PROFILE.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time

from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY

from kappa import kafka_clients
from kappa.config import load_config
from kappa.metrics.exporter import PipelineCollector, sources_for
from kappa.metrics.lag import LagReader
from kappa.registry import READ, ca_file, credentials
from udfs.avro_decoder import AvroDecoder
from udfs.schema_lookup import RegistrySchemaLookup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kappa.metrics",
        description="Serve kappa-iot's own Prometheus metrics (lag, outputs, bridge) until SIGTERM.")
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = load_config()
    quiet = logging.getLogger("kappa.metrics.kafka")
    quiet.setLevel(logging.ERROR)
    lookup = RegistrySchemaLookup(config.registry.url, auth=credentials(config, READ), verify=ca_file(config))
    decoder = AvroDecoder(lookup, max_future_ms=2**62)  # any event time: this only measures how old it is

    def event_time_of(payload: bytes | None, timestamp_ms: int) -> float:
        result = decoder.decode(payload)
        if result.ok and result.row is not None and result.row.get("event_time") is not None:
            return float(result.row["event_time"]) / 1000.0
        return timestamp_ms / 1000.0  # undecodable: its record time is the best estimate

    reader = LagReader(
        kafka_clients.admin(config, quiet, role="metrics"),
        kafka_clients.consumer(config, f"{config.job.group_prefix}-metrics-probe", quiet, role="metrics",
                               **{"enable.auto.commit": False, "isolation.level": "read_committed"}),
        config.job.group_prefix, event_time_of)
    REGISTRY.register(PipelineCollector(sources_for(config, reader)))
    server, thread = start_http_server(config.metrics.exporter_port, addr=config.metrics.host)
    logging.info("serving metrics on http://%s:%s/metrics", config.metrics.host, config.metrics.exporter_port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.is_set():
        time.sleep(0.5)
    server.shutdown()
    thread.join(timeout=5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
