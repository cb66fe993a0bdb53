"""`kappa bridge run | status`: the MQTT -> Kafka bridge in the foreground, and its health (kappa.bridge)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from kappa.cli.common import pass_config

if TYPE_CHECKING:
    from kappa.config import Config


@click.group(help="MQTT -> Kafka bridge (device readings from Mosquitto into the telemetry topic)")
def bridge() -> None:
    pass


@bridge.command(
    short_help="run a bridge in the foreground until Ctrl-C",
    help="Subscribe (MQTT v5, TLS, persistent session, QoS 1) to the shared subscription "
    "$share/<mqtt.bridge_share_group>/<mqtt.topic_prefix>/+/telemetry and produce each reading to "
    "kafka.telemetry_topic (key = device id from the topic), or to kafka.edge_dead_letter_topic with "
    "a reason. A message is acknowledged only after Kafka confirmed it. `kappa stack up` already runs "
    "one bridge as the 'bridge' service; run more with other --client-id values to split the load.")
@click.option("--client-id", help="MQTT client id, i.e. which persistent session (default: mqtt.bridge_client_id)")
@click.option("--log-file", type=click.Path(path_type=Path),
              help="where library logs go (default: <data_dir>/logs/bridge-<client id>.log)")
@click.option("--quiet", is_flag=True, help="nothing on the terminal, only the log file")
@pass_config
def run(config: Config, client_id: str | None, log_file: Path | None, quiet: bool) -> int:
    from kappa.bridge.main import run as run_bridge

    client_id = client_id or config.mqtt.bridge_client_id
    log_file = log_file or config.data_dir / "logs" / f"bridge-{client_id}.log"
    click.echo(f"bridge {client_id}: logs in {log_file}; "
               "Ctrl-C stops it (unacknowledged messages stay with the broker)")
    return run_bridge(config, client_id=client_id, log_file=log_file, console=not quiet)


@bridge.command(help="is the bridge connected to both sides; its backlog and counts")
@click.option("--client-id", help="which bridge (default: mqtt.bridge_client_id)")
@pass_config
def status(config: Config, client_id: str | None) -> int:
    from kappa.bridge import status as bridge_status

    path = bridge_status.status_file(config, client_id)
    current = bridge_status.read(path)
    if current is None:
        click.echo(f"bridge {client_id or config.mqtt.bridge_client_id}: not running (no fresh {path})")
        return 1
    click.echo(f"bridge {current.client_id} (pid {current.pid}) {current.line()}")
    return 0 if current.ready else 1
