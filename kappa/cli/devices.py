"""`kappa devices add | import | list | show | move | decommission | rotate-credentials`: the device
registry (kappa.devices)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kappa.cli.common import pass_config
from kappa.errors import KappaError

if TYPE_CHECKING:
    import psycopg

    from kappa.config import Config
    from kappa.devices.model import Device

_SECRETS_HELP = "also append device_id=password lines to this file (created with mode 600)"


def _secrets_option(func: Any) -> Any:
    return click.option("--secrets-file", type=click.Path(path_type=Path), metavar="PATH", help=_SECRETS_HELP)(func)


@click.group(help="the device registry (who may publish to the MQTT broker)")
def devices() -> None:
    pass


def _connect(config: Config) -> psycopg.Connection:
    import psycopg

    from kappa.stack import postgres

    try:
        return postgres.connect(config)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KappaError(f"cannot reach PostgreSQL at {config.postgres.host}:{config.postgres.port} "
                         f"({first}); is the stack up (`kappa stack up`)?") from None


def _print_passwords(passwords: list[tuple[str, str]], secrets_file: Path | None) -> None:
    click.echo("# device_id=password (shown only now; only a hash is stored)", err=True)
    for device_id, password in passwords:
        click.echo(f"{device_id}={password}")
    if secrets_file is not None:
        click.echo(f"# also appended to {secrets_file}", err=True)


@devices.command(help="register a device and print its generated password once")
@click.argument("device_id", metavar="DEVICE_ID")
@click.option("--site", required=True, help="site id")
@click.option("--type", "device_type", required=True, help="device type")
@click.option("--model")
@click.option("--firmware")
@click.option("--location")
@click.option("--installed-at", metavar="TIME", help="ISO-8601, e.g. 2024-05-01T08:00:00Z (UTC if no zone)")
@_secrets_option
@pass_config
def add(config: Config, device_id: str, site: str, device_type: str, model: str | None, firmware: str | None,
        location: str | None, installed_at: str | None, secrets_file: Path | None) -> int:
    from kappa.devices import admin
    from kappa.devices.model import make_device

    device = make_device(
        {"device_id": device_id, "site_id": site, "device_type": device_type, "model": model,
         "firmware": firmware, "location": location, "installed_at": installed_at},
        config.mqtt.bridge_user,
    )
    with _connect(config) as conn:
        passwords = admin.add(config, conn, [device], secrets_file)
    click.echo(f"added {device.device_id} (site {device.site_id}, type {device.device_type}); "
               f"it publishes to {config.mqtt.device_topic(device.device_id)}", err=True)
    _print_passwords(passwords, secrets_file)
    return 0


@devices.command("import", help="register every device of a CSV file (all or none). FILE.csv header row: "
                 "device_id,site_id,device_type[,model,firmware,location,installed_at]")
@click.argument("file", metavar="FILE.csv", type=click.Path(path_type=Path))
@_secrets_option
@pass_config
def import_(config: Config, file: Path, secrets_file: Path | None) -> int:
    from kappa.devices import admin

    with _connect(config) as conn:
        passwords = admin.import_csv(config, conn, file, secrets_file)
    click.echo(f"imported {len(passwords)} device(s) from {file}", err=True)
    _print_passwords(passwords, secrets_file)
    return 0


@devices.command("list", help="one line per device")
@click.option("--status", type=click.Choice(["active", "decommissioned"]))
@pass_config
def list_(config: Config, status: str | None) -> int:
    from kappa.devices import store

    with _connect(config) as conn:
        found = store.list_devices(conn, status)
    click.echo(f"{'device_id':<24} {'site_id':<16} {'device_type':<16} status")
    for device in found:
        click.echo(f"{device.device_id:<24} {device.site_id:<16} {device.device_type:<16} {device.status}")
    click.echo(f"{len(found)} device(s)", err=True)
    return 0


@devices.command(help="every field of one device, and its MQTT topic")
@click.argument("device_id", metavar="DEVICE_ID")
@pass_config
def show(config: Config, device_id: str) -> int:
    from kappa.devices import store

    with _connect(config) as conn:
        device = store.require(conn, device_id)
    _print_device(device, config)
    return 0


def _print_device(device: Device, config: Config) -> None:
    for name, value in vars(device).items():
        click.echo(f"{name:<13} {'' if value is None else value}")
    click.echo(f"{'mqtt_topic':<13} {config.mqtt.device_topic(device.device_id)}")


@devices.command(help="change a device's site/model/firmware/location from an event time")
@click.argument("device_id", metavar="DEVICE_ID")
@click.option("--site", "site_id")
@click.option("--model")
@click.option("--firmware")
@click.option("--location")
@click.option("--effective", metavar="TIME", help="event time the change applies from (ISO-8601; default now): "
              "readings before it keep the old metadata, in live runs and replays")
@pass_config
def move(config: Config, device_id: str, site_id: str | None, model: str | None, firmware: str | None,
         location: str | None, effective: str | None) -> int:
    from kappa.devices import admin
    from kappa.reference_log import iso, parse_time_ms

    changes = {k: v for k, v in (("site_id", site_id), ("model", model), ("firmware", firmware),
                                 ("location", location)) if v is not None}
    effective_ms = parse_time_ms(effective) if effective else None
    with _connect(config) as conn:
        device = admin.move(config, conn, device_id, changes, effective_ms)
    when = "now" if effective_ms is None else iso(effective_ms)
    click.echo(f"{device.device_id}: {', '.join(f'{k}={v}' for k, v in changes.items())} from {when}")
    return 0


@devices.command(help="retire a device: its credential stops working")
@click.argument("device_id", metavar="DEVICE_ID")
@pass_config
def decommission(config: Config, device_id: str) -> int:
    from kappa.devices import admin

    with _connect(config) as conn:
        device = admin.decommission(config, conn, device_id)
    click.echo(f"decommissioned {device.device_id}: it can no longer connect to the broker")
    return 0


@devices.command("rotate-credentials", help="give a device a new password (the old one stops)")
@click.argument("device_id", metavar="DEVICE_ID")
@_secrets_option
@pass_config
def rotate_credentials(config: Config, device_id: str, secrets_file: Path | None) -> int:
    from kappa.devices import admin

    with _connect(config) as conn:
        password = admin.rotate(config, conn, device_id, secrets_file)
    click.echo(f"new credentials for {device_id}; the old password no longer works", err=True)
    _print_passwords([(device_id, password)], secrets_file)
    return 0
