"""The aggregation job's PostgreSQL outputs: versioned copies (replays, tests) and reading them back.

Live outputs are the tables the migrations create; a run with `output_suffix='_v2'` writes to
`device_agg_1m_v2` etc., created here with the same columns, keys and indexes.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from confluent_kafka import Consumer, TopicPartition
from psycopg import sql

from kappa.config import Config

AGGREGATE_TABLES = ("device_agg_1m", "site_agg_5m", "duplicates_1m", "late_readings", "dead_letters")
ALERT_TABLES = ("alerts",)  # the alerting job's (jobs/alerts.py)
_SUFFIX = re.compile(r"^(_[a-z0-9_]{1,40})?$")


def check_suffix(suffix: str) -> str:
    if not _SUFFIX.match(suffix):
        raise ValueError(f"bad output suffix {suffix!r}: use '' or '_' + lowercase letters/digits, e.g. _v2")
    return suffix


def create_versioned_tables(conn: psycopg.Connection, suffix: str, tables: tuple[str, ...] = AGGREGATE_TABLES) -> None:
    """Create `<table><suffix>` like each live table (columns, defaults, keys, indexes)."""
    if not check_suffix(suffix):
        return
    for table in tables:
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (LIKE {} INCLUDING ALL)").format(
            sql.Identifier(table + suffix), sql.Identifier(table)))


def _ms(value: datetime) -> int:
    return int(value.replace(tzinfo=UTC).timestamp() * 1000)


def device_windows(conn: psycopg.Connection, suffix: str = "") -> dict[tuple[str, int], dict[str, Any]]:
    """(device, window start ms) -> row of device_agg_1m<suffix> (times as epoch ms)."""
    cursor = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier("device_agg_1m" + check_suffix(suffix))))
    names = [column.name for column in cursor.description or []]
    result = {}
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        for key in ("first_event_time", "last_event_time"):
            row[key] = _ms(row[key]) if row[key] is not None else None
        result[(row["device_id"], _ms(row["window_start"]))] = row
    return result


def site_windows(conn: psycopg.Connection, suffix: str = "") -> dict[tuple[str, int], dict[str, Any]]:
    cursor = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier("site_agg_5m" + check_suffix(suffix))))
    names = [column.name for column in cursor.description or []]
    return {(row["site_id"], _ms(row["window_start"])): row
            for row in (dict(zip(names, values, strict=True)) for values in cursor.fetchall())}


@dataclass(frozen=True)
class Accounting:
    aggregated: int
    dead_letters: int
    late: int
    duplicates: int

    @property
    def total(self) -> int:
        return self.aggregated + self.dead_letters + self.late + self.duplicates


def accounting(conn: psycopg.Connection, suffix: str = "", late: int | None = None) -> Accounting:
    """Counts of the outputs; `late` from the exactly-once late topic (see late_keys) when given."""
    suffix = check_suffix(suffix)

    def scalar(query: str, table: str) -> int:
        row = conn.execute(sql.SQL(query).format(sql.Identifier(table + suffix))).fetchone()
        return int(row[0] or 0) if row else 0

    return Accounting(
        aggregated=scalar("SELECT sum(reading_count) FROM {}", "device_agg_1m"),
        dead_letters=scalar("SELECT count(*) FROM {}", "dead_letters"),
        late=late if late is not None else scalar("SELECT count(*) FROM {}", "late_readings"),
        duplicates=scalar("SELECT sum(duplicate_count) FROM {}", "duplicates_1m"),
    )


def late_keys(config: Config, topic: str) -> list[tuple[str, int]]:
    """(device, seq) of every reading the committed run routed late, from the exactly-once late
    topic (`<telemetry topic>-late<suffix>`) read with read_committed."""
    consumer = Consumer({"bootstrap.servers": config.kafka.bootstrap, "group.id": f"kappa-audit-{uuid.uuid4().hex}",
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        partitions = [TopicPartition(topic, p) for p in metadata.partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        keys: list[tuple[str, int]] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                record = json.loads(message.value() or b"{}")
                keys.append((record["device_id"], int(record["seq"])))
                continue
            positions = consumer.position([TopicPartition(topic, p) for p in ends])
            if all(tp.offset >= ends[tp.partition] or (tp.offset < 0 and ends[tp.partition] == 0)
                   for tp in positions):
                break
        return keys
    finally:
        consumer.close()
