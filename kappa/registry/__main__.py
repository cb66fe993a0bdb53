"""`python -m kappa.registry [--host H] [--port P]`: the contract the stack manager starts."""

from __future__ import annotations

import argparse
import sys

import psycopg

from kappa.config import get_config
from kappa.errors import KappaError
from kappa.registry import run_server


def main(argv: list[str] | None = None) -> int:
    config = get_config()
    parser = argparse.ArgumentParser(
        prog="python -m kappa.registry",
        description="Confluent-compatible schema registry (AVRO) stored in the project's PostgreSQL.",
    )
    parser.add_argument("--host", default=config.registry.host, help="bind address (default from config)")
    parser.add_argument("--port", type=int, default=config.registry.port, help="port (default from config)")
    args = parser.parse_args(argv)
    try:
        run_server(config, args.host, args.port)
    except (KeyError, KappaError, OSError, psycopg.OperationalError) as exc:  # no secret or TLS files, port, database
        print(f"kappa registry: cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
