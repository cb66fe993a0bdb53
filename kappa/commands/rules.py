"""`kappa rules set | list | history`: alert thresholds as versions in the rules topic (kappa/rules)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kappa.config import Config
from kappa.reference_log import iso, parse_time_ms
from kappa.rules import service
from kappa.rules.model import COLUMNS, Rule, in_force
from kappa.stack import postgres


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    rules = subparsers.add_parser("rules", help="alert thresholds: versions valid from an event time (Kafka)")
    actions = rules.add_subparsers(dest="action", metavar="ACTION", required=True)
    put = actions.add_parser("set", help="write a new version of every entry of a rules file")
    put.add_argument("--file", type=Path, required=True, metavar="RULES.toml", help="e.g. rules/thresholds.toml")
    put.add_argument("--effective", metavar="TIME",
                     help="event time the versions apply from (ISO-8601, UTC if no zone; may be in the past; "
                          "'epoch' = always); default: now")
    put.set_defaults(func=_set)
    listing = actions.add_parser("list", help="the version of each rule key in force now (and scheduled ones)")
    listing.add_argument("--at", metavar="TIME", help="in force at this event time instead of now")
    listing.set_defaults(func=_list)
    actions.add_parser("history", help="every version, in the order written").set_defaults(func=_history)


def _line(rule: Rule) -> str:
    values = " ".join(f"{name}={rule.thresholds[name]}" for name in COLUMNS if rule.thresholds.get(name) is not None)
    return f"{rule.key:<28} {rule.rule_version:<14} from {iso(rule.valid_from_ms):<26} {values}"


def _set(args: argparse.Namespace, config: Config) -> int:
    effective = parse_time_ms(args.effective) if args.effective else None
    with postgres.connect(config) as conn:
        rules = service.set_from_file(config, conn, args.file, effective)
    for rule in rules:
        print(f"wrote {_line(rule)}")
    print(f"{len(rules)} version(s) written to topic {config.kafka.rules_topic}; the live alerting job applies "
          "them to readings it has not yet passed; to apply them to past readings, replay: "
          "kappa replay run alerts --as VERSION --from TIME")
    return 0


def _list(args: argparse.Namespace, config: Config) -> int:
    now = int(time.time() * 1000)
    at = parse_time_ms(args.at) if args.at else now
    with postgres.connect(config) as conn:
        versions = service.refresh(config, conn)
    for rule in sorted(in_force(versions, at).values(), key=lambda r: r.key):
        print(_line(rule))
    for rule in sorted((r for r in versions if r.valid_from_ms > at), key=lambda r: (r.valid_from_ms, r.key)):
        print(f"scheduled: {_line(rule)}")
    return 0


def _history(args: argparse.Namespace, config: Config) -> int:
    for rule in service.history(config):
        print(f"{rule.offset:>5} {_line(rule)}")
    return 0
