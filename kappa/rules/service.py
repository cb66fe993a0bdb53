"""`kappa rules` steps: write versions to the rules topic (the truth), then refresh PostgreSQL's copy."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from kappa import reference_log
from kappa.config import Config
from kappa.rules import store
from kappa.rules.model import Rule, RulesError, from_record, parse


def _now_ms() -> int:
    return int(time.time() * 1000)


def history(config: Config) -> list[Rule]:
    """Every version in the rules topic, in the order written."""
    return [from_record(r.value, r.offset) for r in reference_log.read_all(config, config.kafka.rules_topic)]


def write(config: Config, conn: psycopg.Connection | None, rules: list[Rule]) -> list[Rule]:
    """Append versions to the rules topic; then PostgreSQL's copy is rewritten from the whole topic."""
    if conn is not None:
        store.require_tables(conn)
    written_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    reference_log.publish(config, config.kafka.rules_topic, [(r.key, r.record(written_at)) for r in rules])
    versions = history(config)
    if conn is not None:
        store.sync(conn, versions, _now_ms())
    return versions


def set_from_file(config: Config, conn: psycopg.Connection | None, path: Path,
                  effective_ms: int | None = None) -> list[Rule]:
    """A new version of every entry of the file, valid from `effective_ms` (default: now)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise RulesError(f"cannot read {path}: {exc.strerror}") from None
    when = _now_ms() if effective_ms is None else effective_ms
    rules = [Rule(r.device_type, r.device_id, r.thresholds, r.rule_version, when) for r in parse(text, str(path))]
    write(config, conn, rules)
    return rules


def seed(config: Config, conn: psycopg.Connection) -> list[Rule]:
    """Idempotent: every rule key of alert_thresholds without any version in the topic gets its row as a
    version valid from the epoch (the migrations' defaults, on a new stack). Returns what was written."""
    reference_log.ensure_topic(config, config.kafka.rules_topic)
    known = {rule.key for rule in history(config)}
    missing = [rule for rule in store.seed_rules(conn) if rule.key not in known]
    if missing:
        write(config, conn, missing)
    return missing


def refresh(config: Config, conn: psycopg.Connection) -> list[Rule]:
    store.require_tables(conn)
    versions = history(config)
    store.sync(conn, versions, _now_ms())
    return versions
