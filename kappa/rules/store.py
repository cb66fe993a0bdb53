"""The readable copy of the rules topic in PostgreSQL (db/migrations/0011): rewritten from the topic,
never the other way round, so the copy can always be rebuilt (`kappa rules list` refreshes it)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from kappa.rules.model import COLUMNS, Rule, RulesError, effective, in_force

_VERSION_COLUMNS = ("rule_key", "device_type", "device_id", "valid_from", *COLUMNS, "rule_version", "kafka_offset")


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def require_tables(conn: psycopg.Connection) -> None:
    """Refuse before anything is written to the topic when the copy's tables do not exist yet."""
    missing = [t for t in ("alert_thresholds", "alert_threshold_versions")
               if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone() == (None,)]
    if missing:
        raise RulesError(f"the database is not migrated (no table {', '.join(missing)}): run `kappa db migrate` first")


def seed_rules(conn: psycopg.Connection) -> list[Rule]:
    """Rows of alert_thresholds (the defaults 0002 seeds, and rows written there before the rules
    topic existed) as versions valid from the epoch."""
    cursor = conn.execute(f"SELECT device_type, device_id, {', '.join(COLUMNS)}, rule_version FROM alert_thresholds "
                          "ORDER BY device_type, device_id NULLS FIRST")
    return [Rule(row[0], row[1], dict(zip(COLUMNS, row[2:-1], strict=True)), row[-1]) for row in cursor]


def sync(conn: psycopg.Connection, versions: list[Rule], now_ms: int) -> None:
    """Make both tables the copy of these versions (every version of the topic, with offsets)."""
    current = in_force(versions, now_ms)
    placeholders = ", ".join(["%s"] * len(_VERSION_COLUMNS))
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("DELETE FROM alert_threshold_versions")
        cur.executemany(
            f"INSERT INTO alert_threshold_versions ({', '.join(_VERSION_COLUMNS)}) VALUES ({placeholders})",
            [(r.key, r.device_type, r.device_id, _time(r.valid_from_ms), *(r.thresholds.get(c) for c in COLUMNS),
              r.rule_version, r.offset) for r in versions])
        cur.execute("DELETE FROM alert_thresholds")
        for rule in sorted(current.values(), key=lambda r: (r.device_type, r.device_id or "")):
            values = effective(versions, rule.device_type, rule.device_id or "", now_ms) if rule.device_id \
                else {**rule.thresholds, "rule_version": rule.rule_version}
            if values is None or any(values.get(c) is None for c in COLUMNS):
                continue  # an override without a default in force: no thresholds, as in the job
            names = ("device_type", "device_id", *COLUMNS, "rule_version", "valid_from")
            cur.execute(
                f"INSERT INTO alert_thresholds ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})",
                (rule.device_type, rule.device_id, *(values[c] for c in COLUMNS), values["rule_version"],
                 _time(rule.valid_from_ms)))
