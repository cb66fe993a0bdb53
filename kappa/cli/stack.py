"""`kappa stack up | down | status | logs`: the local stack (kappa.stack.manager)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kappa.cli.common import pass_config

if TYPE_CHECKING:
    from kappa.config import Config


@click.group(help="start, stop and inspect the local stack")
def stack() -> None:
    pass


@stack.command(help="start every service (idempotent) and wait until each answers")
@click.argument("services", nargs=-1)
@pass_config
def up(config: Config, services: tuple[str, ...]) -> int:
    from kappa.stack import manager

    click.echo(f"starting the local stack (profile {config.profile}, data in {config.data_dir})")
    manager.up(config, only=list(services) or None)
    print_status(config)
    return 0


@stack.command(help="stop every service the stack started (by PID)")
@click.option("--purge", is_flag=True, help="also delete all data (topics, tables, files)")
@pass_config
def down(config: Config, purge: bool) -> int:
    from kappa.stack import manager

    manager.down(config, purge=purge)
    return 0


def print_status(config: Config) -> int:
    from kappa.stack import manager

    rows = manager.status(config)
    for name, state, address in rows:
        click.echo(f"{name:<18} {state:<14} {address}")
    click.echo(f"flink web UI: {config.flink.rest_url}")
    return 0 if all(state in ("up", "external") for _, state, _ in rows) else 1


@stack.command(help="one line per service: up / stopped / not answering")
@pass_config
def status(config: Config) -> int:
    return print_status(config)


@stack.command(help="show the end of a service's log. SERVICE: a name as `kappa stack status` lists it, e.g. kafka")
@click.argument("service")
@click.option("-n", "--lines", type=int, default=40, show_default=True)
@pass_config
def logs(config: Config, service: str, lines: int) -> int:
    from kappa.stack import manager

    click.echo(manager.service(config, service).process.tail(lines))
    return 0
