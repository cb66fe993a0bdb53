"""`kappa demo`: the whole pipeline on the local stack, shown end to end (kappa.demo)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kappa.cli.common import pass_config

if TYPE_CHECKING:
    from kappa.config import Config


@click.command(help="run the pipeline on the local stack and show its results")
@click.option("--devices", type=int, default=20, show_default=True, help="simulated devices")
@click.option("--readings", type=int, default=120, show_default=True, help="readings per device")
@click.option("--seed", type=int, default=7, show_default=True, help="simulator seed")
@click.option("--via", type=click.Choice(["mqtt", "kafka"]), default="mqtt", show_default=True,
              help="mqtt: the devices publish through the broker and the bridge; "
                   "kafka: the simulator produces to Kafka directly")
@click.option("--keep-running", is_flag=True, help="leave the stack up afterwards")
@pass_config
def demo(config: Config, devices: int, readings: int, seed: int, via: str, keep_running: bool) -> int:
    from kappa.demo import DemoOptions, run

    return run(config, DemoOptions(devices=devices, readings=readings, seed=seed, via=via, keep_running=keep_running))
