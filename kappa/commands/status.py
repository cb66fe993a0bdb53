"""`kappa status`: the pipeline on one screen (services, jobs, lag, the last 5 minutes)."""

from __future__ import annotations

import argparse
import json
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
        "devices, firing alerts. Exit code 1 when something is unhealthy (each cause is named): a service "
        "down, a job failing or restarting, a consumer group behind with no running job, a firing health "
        "alert, or a section that cannot be read.")
    status.add_argument("--no-colour", action="store_true", help="plain text even on a terminal")
    status.add_argument("--json", action="store_true",
                        help='machine-readable: {"healthy", "problems": [...], "sections": {title: {columns, rows, '
                        'problem}}}')
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


def as_json(sections: list, found: list[str]) -> str:
    return json.dumps({
        "healthy": not found, "problems": found,
        "sections": {s.title: {"columns": list(s.columns), "rows": [list(r) for r in s.rows], "problem": s.problem}
                     for s in sections},
    }, indent=1)


def _status(args: argparse.Namespace, config: Config) -> int:
    from kappa.status import gather, problems

    sections = gather(config)
    found = problems(sections)
    if args.json:
        print(as_json(sections, found))
        return 1 if found else 0
    colour = sys.stdout.isatty() and not args.no_colour and "NO_COLOR" not in os.environ
    print(render(sections, colour))
    if found:
        print("\nUNHEALTHY:\n" + "\n".join(f"  - {cause}" for cause in found))
    else:
        print("\nhealthy")
    return 1 if found else 0
