"""The `kappa` root group, and the one place errors become what the user sees.

A user mistake (a usage error, or a `KappaError` from the domain code: unknown profile, missing
secret, unknown service, ...) ends in one line `error: ...` on stderr and exit code 2, never in a
traceback; Ctrl-C ends in exit code 130. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from kappa.cli.common import State
from kappa.cli.lazy import LazyGroup
from kappa.errors import KappaError

# command name -> "module:attribute"; each module is imported only when its command is used
COMMANDS: dict[str, str] = {
    "stack": "kappa.cli.stack:stack",
    "run": "kappa.cli.jobs:run",
    "submit": "kappa.cli.jobs:submit",
    "jobs": "kappa.cli.jobs:jobs",
    "stop": "kappa.cli.jobs:stop",
    "cancel": "kappa.cli.jobs:cancel",
    "doctor": "kappa.cli.doctor:doctor",
    "demo": "kappa.cli.demo:demo",
    "db": "kappa.cli.db:db",
    "query": "kappa.cli.query:query",
    "schema": "kappa.cli.schema:schema",
    "simulate": "kappa.cli.simulate:simulate",
    "replay": "kappa.cli.replay:replay",
    "devices": "kappa.cli.devices:devices",
    "rules": "kappa.cli.rules:rules",
    "bridge": "kappa.cli.bridge:bridge",
    "status": "kappa.cli.status:status",
    "lake": "kappa.cli.lake:lake",
}

USAGE_ERROR = 2
INTERRUPTED = 130


class KappaGroup(LazyGroup):
    """The root group: runs the command and turns errors into one line and an exit code (`run_handled`),
    whichever way it is invoked (the console script, `main(argv)`, or click.testing.CliRunner)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        def invoke() -> Any:
            return super(KappaGroup, self).main(args, prog_name, complete_var, standalone_mode=False, **extra)

        code = run_handled(invoke)
        if standalone_mode:
            sys.exit(code)
        return code


@click.group(cls=KappaGroup, lazy_subcommands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.option("--profile", help="configuration profile (default: $KAPPA_PROFILE or 'local')")
@click.pass_context
def cli(ctx: click.Context, profile: str | None) -> None:
    """kappa-iot: Kappa-style IoT telemetry with PyFlink.

    Configuration: kappa.toml (profile via --profile or KAPPA_PROFILE), overrides via KAPPA_* variables.
    """
    ctx.obj = State(profile=profile)


def _usage_line(exc: click.UsageError) -> str:
    where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
    return f"error: {exc.format_message()}{where}"


def run_handled(invoke: Callable[[], Any]) -> int:
    """Call `invoke` (Click in non-standalone mode); the exit code, with every expected error reported
    on stderr in one line."""
    try:
        result = invoke()
    except click.exceptions.NoArgsIsHelpError as exc:  # `kappa` or `kappa stack` alone: the help
        exc.show()
        return USAGE_ERROR
    except click.UsageError as exc:
        click.echo(_usage_line(exc), err=True)
        return USAGE_ERROR
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except KappaError as exc:
        click.echo(f"error: {exc}", err=True)
        return USAGE_ERROR
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        return INTERRUPTED
    return int(result or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `kappa` with `argv` (default: the process's arguments); returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    return int(cli.main(args=args, prog_name="kappa", standalone_mode=False))


if __name__ == "__main__":
    sys.exit(main())
