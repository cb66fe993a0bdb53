"""`kappa rules set | list | history`: alert thresholds as versions in the rules topic (kappa.rules)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kappa.cli.common import pass_config

if TYPE_CHECKING:
    from kappa.config import Config
    from kappa.rules.model import Rule


@click.group(help="alert thresholds: versions valid from an event time (Kafka)")
def rules() -> None:
    pass


def _line(rule: Rule) -> str:
    from kappa.reference_log import iso
    from kappa.rules.model import COLUMNS

    values = " ".join(f"{name}={rule.thresholds[name]}" for name in COLUMNS if rule.thresholds.get(name) is not None)
    return f"{rule.key:<28} {rule.rule_version:<14} from {iso(rule.valid_from_ms):<26} {values}"


@rules.command("set", help="write a new version of every entry of a rules file")
@click.option("--file", "file", type=click.Path(path_type=Path), required=True, metavar="RULES.toml",
              help="e.g. rules/thresholds.toml")
@click.option("--effective", metavar="TIME",
              help="event time the versions apply from (ISO-8601, UTC if no zone; may be in the past; "
                   "'epoch' = always); default: now")
@pass_config
def set_(config: Config, file: Path, effective: str | None) -> int:
    from kappa.reference_log import parse_time_ms
    from kappa.rules import service
    from kappa.stack import postgres

    effective_ms = parse_time_ms(effective) if effective else None
    with postgres.connect(config) as conn:
        written = service.set_from_file(config, conn, file, effective_ms)
    for rule in written:
        click.echo(f"wrote {_line(rule)}")
    click.echo(f"{len(written)} version(s) written to topic {config.kafka.rules_topic}; the live alerting job "
               "applies them to readings it has not yet passed; to apply them to past readings, replay: "
               "kappa replay run alerts --as VERSION --from TIME")
    return 0


@rules.command("list", help="the version of each rule key in force now (and scheduled ones)")
@click.option("--at", metavar="TIME", help="in force at this event time instead of now")
@pass_config
def list_(config: Config, at: str | None) -> int:
    from kappa.reference_log import parse_time_ms
    from kappa.rules import service
    from kappa.rules.model import in_force
    from kappa.stack import postgres

    at_ms = parse_time_ms(at) if at else int(time.time() * 1000)
    with postgres.connect(config) as conn:
        versions = service.refresh(config, conn)
    for rule in sorted(in_force(versions, at_ms).values(), key=lambda r: r.key):
        click.echo(_line(rule))
    for rule in sorted((r for r in versions if r.valid_from_ms > at_ms), key=lambda r: (r.valid_from_ms, r.key)):
        click.echo(f"scheduled: {_line(rule)}")
    return 0


@rules.command(help="every version, in the order written")
@pass_config
def history(config: Config) -> int:
    from kappa.rules import service

    for rule in service.history(config):
        click.echo(f"{rule.offset:>5} {_line(rule)}")
    return 0
