"""`kappa stack up | down | status | logs`."""

from __future__ import annotations

import argparse

from kappa.config import Config
from kappa.stack import manager


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    stack = subparsers.add_parser("stack", help="start, stop and inspect the local stack")
    actions = stack.add_subparsers(dest="action", metavar="ACTION", required=True)

    up = actions.add_parser("up", help="start every service (idempotent) and wait until each answers")
    up.add_argument("services", nargs="*", help="only these services (default: all)")
    up.set_defaults(func=_up)

    down = actions.add_parser("down", help="stop every service the stack started (by PID)")
    down.add_argument("--purge", action="store_true", help="also delete all data (topics, tables, files)")
    down.set_defaults(func=_down)

    status = actions.add_parser("status", help="one line per service: up / stopped / not answering")
    status.set_defaults(func=_status)

    logs = actions.add_parser("logs", help="show the end of a service's log")
    logs.add_argument("service", help="a service name as `kappa stack status` lists it, e.g. kafka or flink")
    logs.add_argument("-n", "--lines", type=int, default=40)
    logs.set_defaults(func=_logs)


def _up(args: argparse.Namespace, config: Config) -> int:
    print(f"starting the local stack (profile {config.profile}, data in {config.data_dir})")
    manager.up(config, only=args.services or None)
    _status(args, config)
    return 0


def _down(args: argparse.Namespace, config: Config) -> int:
    manager.down(config, purge=args.purge)
    return 0


def _status(args: argparse.Namespace, config: Config) -> int:
    rows = manager.status(config)
    for name, state, address in rows:
        print(f"{name:<18} {state:<14} {address}")
    print(f"flink web UI: {config.flink.rest_url}")
    return 0 if all(state in ("up", "external") for _, state, _ in rows) else 1


def _logs(args: argparse.Namespace, config: Config) -> int:
    print(manager.service(config, args.service).process.tail(args.lines))
    return 0
