"""`kappa doctor`: is everything this profile points at there and behaving as the pipeline needs?"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kappa.cli.common import pass_config

if TYPE_CHECKING:
    from kappa.config import Config


@click.command(help="check Java, jars, every service and the Kafka semantics the pipeline needs")
@pass_config
def doctor(config: Config) -> int:
    from kappa.doctor import format_check, run_checks

    click.echo(f"kappa doctor (profile {config.profile})")
    checks = run_checks(config)
    for check in checks:
        click.echo(format_check(check))
    failed = [c for c in checks if not c.ok]
    click.echo(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0
