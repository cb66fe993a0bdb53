"""`python -m kappa.bridge [--client-id ID]`: how the stack service starts the bridge (profile from
KAPPA_PROFILE; logs on stderr, which the service sends to its log file)."""

from __future__ import annotations

import argparse
import sys

from kappa.bridge.main import run
from kappa.config import load_config


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m kappa.bridge", description=__doc__)
    parser.add_argument("--client-id", help="MQTT client id (default: mqtt.bridge_client_id)")
    args = parser.parse_args()
    return run(load_config(), client_id=args.client_id, log_file=None)


if __name__ == "__main__":
    sys.exit(main())
