"""`kappa bridge run | status`: the MQTT -> Kafka bridge in the foreground, and its health."""

from __future__ import annotations

import argparse
from pathlib import Path

from kappa.config import Config


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    bridge = subparsers.add_parser(
        "bridge", help="MQTT -> Kafka bridge (device readings from Mosquitto into the telemetry topic)"
    )
    actions = bridge.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="run a bridge in the foreground until Ctrl-C",
        description="Subscribe (MQTT v5, TLS, persistent session, QoS 1) to the shared subscription "
        "$share/<mqtt.bridge_share_group>/<mqtt.topic_prefix>/+/telemetry and produce each reading to "
        "kafka.telemetry_topic (key = device id from the topic), or to kafka.edge_dead_letter_topic with "
        "a reason. A message is acknowledged only after Kafka confirmed it. `kappa stack up` already runs "
        "one bridge as the 'bridge' service; run more with other --client-id values to split the load.",
    )
    run.add_argument("--client-id", help="MQTT client id, i.e. which persistent session (default: "
                     "mqtt.bridge_client_id)")
    run.add_argument("--log-file", type=Path,
                     help="where library logs go (default: <data_dir>/logs/bridge-<client id>.log)")
    run.add_argument("--quiet", action="store_true", help="nothing on the terminal, only the log file")
    run.set_defaults(func=_run)

    status = actions.add_parser("status", help="is the bridge connected to both sides; its backlog and counts")
    status.add_argument("--client-id", help="which bridge (default: mqtt.bridge_client_id)")
    status.set_defaults(func=_status)


def _run(args: argparse.Namespace, config: Config) -> int:
    from kappa.bridge.main import run

    client_id = args.client_id or config.mqtt.bridge_client_id
    log_file = args.log_file or config.data_dir / "logs" / f"bridge-{client_id}.log"
    print(f"bridge {client_id}: logs in {log_file}; Ctrl-C stops it (unacknowledged messages stay with the broker)")
    return run(config, client_id=client_id, log_file=log_file, console=not args.quiet)


def _status(args: argparse.Namespace, config: Config) -> int:
    from kappa.bridge import status

    path = status.status_file(config, args.client_id)
    current = status.read(path)
    if current is None:
        print(f"bridge {args.client_id or config.mqtt.bridge_client_id}: not running (no fresh {path})")
        return 1
    print(f"bridge {current.client_id} (pid {current.pid}) {current.line()}")
    return 0 if current.ready else 1
