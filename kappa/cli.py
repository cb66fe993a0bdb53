"""The `kappa` command line: one entry point, each command group in its own module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from kappa.config import load_config
from kappa.errors import KappaError

# Modules that contribute commands; each has `add_parser(subparsers)` setting `func(args, config) -> int`.
COMMAND_MODULES: tuple[str, ...] = (
    "kappa.commands.stack",
    "kappa.commands.jobs",
    "kappa.commands.doctor",
    "kappa.commands.demo",
    "kappa.db",
    "kappa.archive",
    "kappa.schema_cli",
    "kappa.simulate",
    "kappa.replay.cli",
    "kappa.commands.devices",
    "kappa.commands.rules",
    "kappa.commands.bridge",
    "kappa.commands.status",
    "kappa.commands.lake",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kappa",
        description="kappa-iot: Kappa-style IoT telemetry with PyFlink. "
        "Configuration: kappa.toml (profile via --profile or KAPPA_PROFILE), overrides via KAPPA_* variables.",
    )
    parser.add_argument("--profile", help="configuration profile (default: $KAPPA_PROFILE or 'local')")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(profile=args.profile)
        return int(args.func(args, config) or 0)
    except KappaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
