"""`kappa status`: the pipeline on one screen (services, jobs, lag, the last 5 minutes; kappa.status)."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

import click

from kappa.cli.common import pass_config

if TYPE_CHECKING:
    from kappa.config import Config

_COLOURS = {"good": "\033[32m", "bad": "\033[31m", "warn": "\033[33m"}
_GOOD = {"up", "RUNNING", "external"}
_BAD = {"stopped", "not answering", "FAILED", "FAILING", "RESTARTING", "ALERT firing"}


def _paint(cell: str, colour: bool) -> str:
    if not colour:
        return cell
    kind = "good" if cell in _GOOD else "bad" if cell in _BAD else None
    return f"{_COLOURS[kind]}{cell}\033[0m" if kind else cell


def render(sections: list, colour: bool) -> str:
    lines: list[str] = []
    for section in sections:
        lines.append(f"== {section.title}")
        if section.problem:
            lines.append(f"   (cannot read: {section.problem})")
            continue
        if not section.rows:
            lines.append("   (none)")
            continue
        widths = [max(len(str(v)) for v in column) for column in zip(section.columns, *section.rows, strict=True)]
        lines.append("   " + "  ".join(h.ljust(w) for h, w in zip(section.columns, widths, strict=True)))
        for row in section.rows:
            cells = (_paint(str(v), colour) + " " * (w - len(str(v))) for v, w in zip(row, widths, strict=True))
            lines.append(("   " + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def as_json(sections: list, found: list[str]) -> str:
    return json.dumps({
        "healthy": not found, "problems": found,
        "sections": {s.title: {"columns": list(s.columns), "rows": [list(r) for r in s.rows], "problem": s.problem}
                     for s in sections},
    }, indent=1)


@click.command(
    short_help="the pipeline on one screen: services, jobs, lag, rates and dead letters",
    help="Services of the stack, Flink jobs (state, uptime, restarts, last checkpoint), consumer lag per job "
    "(Prometheus), and the last 5 minutes: records per stage, dead letters by reason, active devices, firing "
    "alerts. Exit code 1 when something is unhealthy (each cause is named): a service down, a job failing or "
    "restarting, a consumer group behind with no running job, a firing health alert, or a section that cannot "
    "be read.")
@click.option("--no-colour", is_flag=True, help="plain text even on a terminal")
@click.option("--json", "as_json_", is_flag=True,
              help='machine-readable: {"healthy", "problems": [...], "sections": {title: {columns, rows, problem}}}')
@pass_config
def status(config: Config, no_colour: bool, as_json_: bool) -> int:
    from kappa.status import gather, problems

    sections = gather(config)
    found = problems(sections)
    if as_json_:
        click.echo(as_json(sections, found))
        return 1 if found else 0
    colour = sys.stdout.isatty() and not no_colour and "NO_COLOR" not in os.environ
    click.echo(render(sections, colour))
    if found:
        click.echo("\nUNHEALTHY:\n" + "\n".join(f"  - {cause}" for cause in found))
    else:
        click.echo("\nhealthy")
    return 1 if found else 0
