"""`kappa devices add | import | list | show | move | decommission | rotate-credentials`: the device registry."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg

from kappa.config import Config
from kappa.devices import admin, store
from kappa.devices.model import Device, make_device
from kappa.errors import KappaError
from kappa.stack import postgres

_SECRETS_HELP = "also append device_id=password lines to this file (created with mode 600)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    devices = subparsers.add_parser("devices", help="the device registry (who may publish to the MQTT broker)")
    actions = devices.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="register a device and print its generated password once")
    add.add_argument("device_id", metavar="DEVICE_ID", help="the device's MQTT username and topic level")
    add.add_argument("--site", required=True, help="site id")
    add.add_argument("--type", required=True, dest="device_type", help="device type")
    add.add_argument("--model")
    add.add_argument("--firmware")
    add.add_argument("--location")
    add.add_argument("--installed-at", metavar="TIME", help="ISO-8601, e.g. 2024-05-01T08:00:00Z (UTC if no zone)")
    add.add_argument("--secrets-file", type=Path, metavar="PATH", help=_SECRETS_HELP)
    add.set_defaults(func=_add)

    imp = actions.add_parser("import", help="register every device of a CSV file (all or none)")
    imp.add_argument("file", type=Path, metavar="FILE.csv",
                     help="header row: device_id,site_id,device_type[,model,firmware,location,installed_at]")
    imp.add_argument("--secrets-file", type=Path, metavar="PATH", help=_SECRETS_HELP)
    imp.set_defaults(func=_import)

    listing = actions.add_parser("list", help="one line per device")
    listing.add_argument("--status", choices=("active", "decommissioned"))
    listing.set_defaults(func=_list)

    show = actions.add_parser("show", help="every field of one device, and its MQTT topic")
    show.add_argument("device_id", metavar="DEVICE_ID")
    show.set_defaults(func=_show)

    move = actions.add_parser("move", help="change a device's site/model/firmware/location from an event time")
    move.add_argument("device_id", metavar="DEVICE_ID")
    move.add_argument("--site", dest="site_id")
    move.add_argument("--model")
    move.add_argument("--firmware")
    move.add_argument("--location")
    move.add_argument("--effective", metavar="TIME", help="event time the change applies from (ISO-8601; "
                      "default now): readings before it keep the old metadata, in live runs and replays")
    move.set_defaults(func=_move)

    decommission = actions.add_parser("decommission", help="retire a device: its credential stops working")
    decommission.add_argument("device_id", metavar="DEVICE_ID")
    decommission.set_defaults(func=_decommission)

    rotate = actions.add_parser("rotate-credentials", help="give a device a new password (the old one stops)")
    rotate.add_argument("device_id", metavar="DEVICE_ID")
    rotate.add_argument("--secrets-file", type=Path, metavar="PATH", help=_SECRETS_HELP)
    rotate.set_defaults(func=_rotate)


def _connect(config: Config) -> psycopg.Connection:
    try:
        return postgres.connect(config)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KappaError(f"cannot reach PostgreSQL at {config.postgres.host}:{config.postgres.port} "
                         f"({first}); is the stack up (`kappa stack up`)?") from None


def _print_passwords(passwords: list[tuple[str, str]], secrets_file: Path | None) -> None:
    print("# device_id=password (shown only now; only a hash is stored)", file=sys.stderr)
    for device_id, password in passwords:
        print(f"{device_id}={password}")
    if secrets_file is not None:
        print(f"# also appended to {secrets_file}", file=sys.stderr)


def _add(args: argparse.Namespace, config: Config) -> int:
    device = make_device(
        {"device_id": args.device_id, "site_id": args.site, "device_type": args.device_type, "model": args.model,
         "firmware": args.firmware, "location": args.location, "installed_at": args.installed_at},
        config.mqtt.bridge_user,
    )
    with _connect(config) as conn:
        passwords = admin.add(config, conn, [device], args.secrets_file)
    print(f"added {device.device_id} (site {device.site_id}, type {device.device_type}); "
          f"it publishes to {config.mqtt.device_topic(device.device_id)}", file=sys.stderr)
    _print_passwords(passwords, args.secrets_file)
    return 0


def _import(args: argparse.Namespace, config: Config) -> int:
    with _connect(config) as conn:
        passwords = admin.import_csv(config, conn, args.file, args.secrets_file)
    print(f"imported {len(passwords)} device(s) from {args.file}", file=sys.stderr)
    _print_passwords(passwords, args.secrets_file)
    return 0


def _list(args: argparse.Namespace, config: Config) -> int:
    with _connect(config) as conn:
        devices = store.list_devices(conn, args.status)
    print(f"{'device_id':<24} {'site_id':<16} {'device_type':<16} status")
    for device in devices:
        print(f"{device.device_id:<24} {device.site_id:<16} {device.device_type:<16} {device.status}")
    print(f"{len(devices)} device(s)", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace, config: Config) -> int:
    with _connect(config) as conn:
        device = store.require(conn, args.device_id)
    _print_device(device, config)
    return 0


def _print_device(device: Device, config: Config) -> None:
    for name, value in vars(device).items():
        print(f"{name:<13} {'' if value is None else value}")
    print(f"{'mqtt_topic':<13} {config.mqtt.device_topic(device.device_id)}")


def _decommission(args: argparse.Namespace, config: Config) -> int:
    with _connect(config) as conn:
        device = admin.decommission(config, conn, args.device_id)
    print(f"decommissioned {device.device_id}: it can no longer connect to the broker")
    return 0


def _move(args: argparse.Namespace, config: Config) -> int:
    from kappa.reference_log import iso, parse_time_ms

    changes = {k: v for k, v in (("site_id", args.site_id), ("model", args.model), ("firmware", args.firmware),
                                 ("location", args.location)) if v is not None}
    effective = parse_time_ms(args.effective) if args.effective else None
    with _connect(config) as conn:
        device = admin.move(config, conn, args.device_id, changes, effective)
    when = "now" if effective is None else iso(effective)
    print(f"{device.device_id}: {', '.join(f'{k}={v}' for k, v in changes.items())} from {when}")
    return 0


def _rotate(args: argparse.Namespace, config: Config) -> int:
    with _connect(config) as conn:
        password = admin.rotate(config, conn, args.device_id, args.secrets_file)
    print(f"new credentials for {args.device_id}; the old password no longer works", file=sys.stderr)
    _print_passwords([(args.device_id, password)], args.secrets_file)
    return 0
