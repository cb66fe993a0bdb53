"""What each job writes, declared once next to the job (`OUTPUTS` in jobs/<name>.py), and reading
the aggregation job's PostgreSQL outputs back.

Live outputs are the tables the migrations create and the topics named in the job's sink SQL; a run
with `output_suffix='_v2'` writes `<table>_v2` and `<topic>_v2`. Replays (kappa.replay), the demo and
the tests create, compare, promote and drop exactly what a job declares here, so a new job is
replayable by declaring its outputs, without touching the replay code.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
from confluent_kafka import TopicPartition
from psycopg import sql

from kappa import kafka_clients, waiting
from kappa.config import Config
from kappa.errors import KappaError

if TYPE_CHECKING:
    from kappa.lake import LakeTable

_SUFFIX = re.compile(r"^(_[a-z0-9_]{1,40})?$")
IGNORED_COLUMNS = frozenset({"updated_at"})  # write time: never compared


def check_suffix(suffix: str) -> str:
    if not _SUFFIX.match(suffix):
        raise ValueError(f"bad output suffix {suffix!r}: use '' or '_' + lowercase letters/digits, e.g. _v2")
    return suffix


@dataclass(frozen=True)
class Table:
    """A PostgreSQL table the job upserts into (created by the migrations; `<name><suffix>` for versions)."""

    name: str
    key: tuple[str, ...]  # the primary key: rows of two versions are matched by it
    compared: bool = True  # `kappa replay compare` lists it (accounting tables such as dead letters: no)
    range_column: str | None = None  # compare only the range of this column both versions cover
    ignored: frozenset[str] = IGNORED_COLUMNS


@dataclass(frozen=True)
class Topic:
    """A Kafka topic the job writes, named with the SQL placeholders of its sink (`${output_suffix}`
    included), e.g. `${aggregates_topic}${output_suffix}`; `${telemetry_topic}` is the job's input topic."""

    template: str

    def name(self, config: Config, suffix: str, input_topic: str | None = None) -> str:
        from kappa import sqlfiles

        params = sqlfiles.params_from_config(config, include_secrets=False).with_values(
            output_suffix=check_suffix(suffix), telemetry_topic=input_topic or config.kafka.telemetry_topic)
        return sqlfiles.render(self.template, params, source=f"topic {self.template}")


@dataclass(frozen=True)
class ReaderView:
    """A view readers query; `promote` points it at a version's table (columns as in its migration)."""

    name: str
    table: str
    columns: str  # the SELECT list, exactly as the latest migration defining the view has it

    def definition(self, suffix: str) -> sql.Composed:
        return sql.SQL("CREATE OR REPLACE VIEW {} AS SELECT {} FROM {}").format(
            sql.Identifier(self.name), sql.SQL(" ".join(self.columns.split())),
            sql.Identifier(self.table + check_suffix(suffix)))


@dataclass(frozen=True)
class JobOutputs:
    """Everything one job writes: the declaration replays, the demo and the tests read."""

    tables: tuple[Table, ...]
    topics: tuple[Topic, ...] = ()
    views: tuple[ReaderView, ...] = ()
    lake: tuple[LakeTable, ...] = ()  # Iceberg tables (kappa.lake): `<name><suffix>` in the lake namespace

    def __post_init__(self) -> None:
        names = {t.name for t in self.tables}
        for view in self.views:
            if view.table not in names:
                raise ValueError(f"view {view.name} reads {view.table}, which is not one of the job's tables")

    def table_names(self, suffix: str = "") -> list[str]:
        return [t.name + check_suffix(suffix) for t in self.tables]

    @property
    def compared(self) -> tuple[Table, ...]:
        return tuple(t for t in self.tables if t.compared)

    def topic_names(self, config: Config, suffix: str = "", input_topic: str | None = None) -> list[str]:
        return [t.name(config, suffix, input_topic) for t in self.topics]

    def create_tables(self, conn: psycopg.Connection, suffix: str) -> None:
        """Create `<table><suffix>` like each live table (columns, defaults, keys, indexes)."""
        if not check_suffix(suffix):
            return
        for table in self.table_names():
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (LIKE {} INCLUDING ALL)").format(
                sql.Identifier(table + suffix), sql.Identifier(table)))

    def drop_tables(self, conn: psycopg.Connection, suffix: str) -> list[str]:
        """Drop the versioned tables that exist (never the live ones); returns the names dropped."""
        if not check_suffix(suffix):
            raise ValueError("refusing to drop the live tables")
        gone = []
        for table in self.table_names(suffix):
            if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() != (None,):
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))
                gone.append(table)
        return gone


class NoOutputsError(KappaError):
    """The job declares no OUTPUTS: it cannot be replayed, compared, promoted or dropped."""


def job_outputs(job: str) -> JobOutputs:
    """The `OUTPUTS` declared in jobs/<job>.py."""
    from kappa import jobrunner

    declared = getattr(jobrunner.load_job(job), "OUTPUTS", None)
    if not isinstance(declared, JobOutputs):
        raise NoOutputsError(f"jobs/{job}.py declares no OUTPUTS (kappa.outputs.JobOutputs): "
                             "declare its tables and topics there to replay it")
    return declared


def create_versioned_tables(conn: psycopg.Connection, suffix: str, job: str = "aggregate") -> None:
    """Create the versioned tables of `job` (see JobOutputs.create_tables)."""
    job_outputs(job).create_tables(conn, suffix)


def ms(value: datetime) -> int:
    """Epoch milliseconds of a naive UTC datetime."""
    return int(value.replace(tzinfo=UTC).timestamp() * 1000)


def device_windows(conn: psycopg.Connection, suffix: str = "") -> dict[tuple[str, int], dict[str, Any]]:
    """(device, window start ms) -> row of device_agg_1m<suffix> (times as epoch ms)."""
    cursor = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier("device_agg_1m" + check_suffix(suffix))))
    names = [column.name for column in cursor.description or []]
    result = {}
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        for key in ("first_event_time", "last_event_time"):
            row[key] = ms(row[key]) if row[key] is not None else None
        result[(row["device_id"], ms(row["window_start"]))] = row
    return result


def site_windows(conn: psycopg.Connection, suffix: str = "") -> dict[tuple[str, int], dict[str, Any]]:
    cursor = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier("site_agg_5m" + check_suffix(suffix))))
    names = [column.name for column in cursor.description or []]
    return {(row["site_id"], ms(row["window_start"])): row
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
    consumer = kafka_clients.consumer(config, f"kappa-audit-{uuid.uuid4().hex}",
                                      **{"isolation.level": "read_committed", "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        partitions = [TopicPartition(topic, p) for p in metadata.partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        keys: list[tuple[str, int]] = []
        deadline = waiting.Deadline(120)
        while not deadline.passed:
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
