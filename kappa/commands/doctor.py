"""`kappa doctor`: is everything this profile points at there and behaving as the pipeline needs?"""

from __future__ import annotations

import argparse

from kappa.config import Config
from kappa.doctor import format_check, run_checks


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser(
        "doctor", help="check Java, jars, every service and the Kafka semantics the pipeline needs"
    ).set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace, config: Config) -> int:
    print(f"kappa doctor (profile {config.profile})")
    checks = run_checks(config)
    for check in checks:
        print(format_check(check))
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0
