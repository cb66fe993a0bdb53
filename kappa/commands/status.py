"""`kappa status`: the pipeline on one screen (services, jobs, lag, the last 5 minutes)."""

from __future__ import annotations

import argparse
import os
import sys

from kappa.config import Config

_COLOURS = {"good": "\033[32m", "bad": "\033[31m", "warn": "\033[33m"}
_GOOD = {"up", "RUNNING", "external"}
_BAD = {"stopped", "not answering", "FAILED", "FAILING", "RESTARTING", "ALERT firing"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    status = subparsers.add_parser(
        "status", help="the pipeline on one screen: services, jobs, lag, rates and dead letters",
        description="Services of the stack, Flink jobs (state, uptime, restarts, last checkpoint), consumer "
        "lag per job (Prometheus), and the last 5 minutes: records per stage, dead letters by reason, active "
        "devices, firing alerts. Exit code 1 when a service is down or a job is failing.")
    status.add_argument("--no-colour", action="store_true", help="plain text even on a terminal")
    status.set_defaults(func=_status)


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


def _status(args: argparse.Namespace, config: Config) -> int:
    from kappa.status import gather

    sections = gather(config)
    colour = sys.stdout.isatty() and not args.no_colour and "NO_COLOR" not in os.environ
    print(render(sections, colour))
    unhealthy = any(cell in _BAD for section in sections for row in section.rows for cell in row[:2])
    return 1 if unhealthy else 0
