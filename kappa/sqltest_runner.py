"""Runs golden SQL fixtures (format: kappa/sqltest.py) in the local MiniCluster, all of them in ONE
bounded Flink job, because each job costs a MiniCluster start (~8 s).

Each fixture gets its own database in the session's in-memory catalog: its input tables and the
temporary views of its SQL files live there, so fixtures that define the same names do not see each
other. Its output changelog is turned into (fixture number, row as JSON) in SQL, and the outputs of
all fixtures are united into one collected result; `collect()` keeps each row's RowKind. The data of
one fixture never meets another's before that final union, so each keeps its own watermark.

Sources: a fixture's telemetry and its versioned reference tables are each a file source. Flink cannot
order two sources, and an event-time temporal join releases readings only when the reference side's
watermark (released by that source's end) passes them: had the telemetry run first, the join would
release it all at once, and an allowed-lateness update would depend on which task the machine started
first. So the fixtures' telemetry waits at a barrier until every reference source of the job has ended
(udfs/java: SqltestBarrier, SqltestReferenceRead and SqltestAwaitReferences), as in a live job whose
reference topics went idle before the readings came.

No service and no secret is needed: secret placeholders are masked (JobOptions.with_secrets=False),
and the tables a fixture replaces are never opened. A fixture whose SQL does not plan fails alone;
a failure while the job runs fails every fixture of the run, with the job's error.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kappa import sqlheaders
from kappa.config import Config
from kappa.flinkenv import JobContext, JobOptions
from kappa.lateness import allow_late_updates
from kappa.sqltest import TELEMETRY, Fixture

if TYPE_CHECKING:
    from pyflink.table import Table

# The columns of telemetry_valid (sql/telemetry/decode.sql), which a fixture replaces with its rows.
TELEMETRY_COLUMNS = (
    ("device_id", "STRING"), ("site_id", "STRING"), ("device_type", "STRING"), ("seq", "BIGINT"),
    ("event_ms", "BIGINT"), ("status", "STRING"), ("firmware_version", "STRING"), ("temperature_c", "DOUBLE"),
    ("humidity_pct", "DOUBLE"), ("pressure_hpa", "DOUBLE"), ("vibration_mm_s", "DOUBLE"), ("power_w", "DOUBLE"),
    ("battery_pct", "DOUBLE"), ("signal_rssi_dbm", "INT"), ("uptime_s", "BIGINT"), ("schema_id", "INT"),
    ("kafka_partition", "INT"), ("kafka_offset", "BIGINT"),
)
TELEMETRY_DEFAULTS = {"site_id": "site-0", "device_type": "thermal", "status": "OK", "firmware_version": "1.0.0",
                      "schema_id": 2, "kafka_partition": 0}


def _version_row(row: dict[str, Any], key: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """A version as the reference topics carry it: `valid_from` (ISO text, default: the epoch, i.e. in
    force from the beginning of time) as valid_from_ms, and its record key when the row leaves it out."""
    version = dict(row)
    version["valid_from_ms"] = _ms(version.pop("valid_from")) if "valid_from" in version else 0
    return version if "rule_key" in version or "device_key" in version else {**version, **key(version)}


@dataclass(frozen=True)
class Replaceable:
    """A table a fixture may replace besides telemetry_valid, and how a fixture's row becomes a row of
    it. The replacement is a JSON file source with the same columns, computed columns, watermark and
    primary key as the SQL file whose header defines the table (which the fixture does not load)."""

    row: Callable[[dict[str, Any]], dict[str, Any]]


def _rule_key(row: dict[str, Any]) -> dict[str, Any]:
    device = row.get("device_id")
    return {"rule_key": row["device_type"] + (f"/{device}" if device else "")}


# The versioned reference tables the event-time temporal joins read (a bounded file source: its end
# releases the join, as a bounded run's end of topic does).
REPLACEABLE = {
    "alert_threshold_versions": Replaceable(lambda row: _version_row(row, _rule_key)),
    "device_metadata_versions": Replaceable(lambda row: _version_row(row, lambda r: {"device_key": r["device_id"]})),
}
# The telemetry is a file table `<name>_source` behind a view `<name>` that waits at the barrier.
SOURCE_SUFFIX = "_source"
AWAIT_REFERENCES = "sqltest_await_references"
REFERENCE_READ = "sqltest_reference_read"
BARRIER_FUNCTIONS = {AWAIT_REFERENCES: "io.kappa.udfs.SqltestAwaitReferences",
                     REFERENCE_READ: "io.kappa.udfs.SqltestReferenceRead"}
BARRIER_PARAMETER = "kappa.sqltest.barrier"  # the job parameter naming the barrier's folder
BARRIER_COLUMN = "valid_from_ms"  # what each versioned table's event time is computed from
_KINDS = {"INSERT": "+I", "UPDATE_BEFORE": "-U", "UPDATE_AFTER": "+U", "DELETE": "-D"}


@dataclass
class Outcome:
    """What one fixture's view emitted (each row with its "kind"), or why it could not run."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def _ms(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _telemetry_lines(rows: list[dict[str, Any]]) -> str:
    lines = []
    for offset, row in enumerate(rows):
        record = {**TELEMETRY_DEFAULTS, "kafka_offset": offset, **row}
        record["event_ms"] = _ms(record.pop("event_time"))
        unknown = set(record) - {name for name, _ in TELEMETRY_COLUMNS}
        if unknown:
            raise ValueError(f"{TELEMETRY} has no column(s) {', '.join(sorted(unknown))}")
        lines.append(json.dumps({name: record.get(name) for name, _ in TELEMETRY_COLUMNS}))
    return "\n".join(lines) + "\n"


def _declaration(described: list[Any]) -> list[str]:
    """Columns, computed columns, watermark and primary key of a table, from its DESCRIBE rows
    (name, type, null, key, extras, watermark)."""
    parts, keys = [], []
    for name, kind, nullable, key, extras, watermark in described:
        if extras and str(extras).startswith("AS "):
            parts.append(f"`{name}` {extras}")
        else:
            parts.append(f"`{name}` {kind}{'' if nullable else ' NOT NULL'}")
        if watermark:
            parts.append(f"WATERMARK FOR `{name}` AS {watermark}")
        if key and str(key).startswith("PRI"):
            keys.append(f"`{name}`")
    return parts + ([f"PRIMARY KEY ({', '.join(keys)}) NOT ENFORCED"] if keys else [])


def files_for(fixture: Fixture, headers: dict[str, sqlheaders.Header]) -> list[str]:
    """The SQL files a fixture runs: its own `files`, or those its query needs, resolved from the SQL
    headers back to the tables its inputs replace (every replaceable one is there, empty if left out)."""
    if fixture.files is not None:
        return fixture.files
    from kappa.sqlrefs import references  # sqlfluff (a dev dependency), as the header test

    given = [TELEMETRY, *REPLACEABLE]
    return [p.name for p in sqlheaders.resolve(references(fixture.query).reads, given, list(headers.values()))]


def _declared_columns(ctx: JobContext, headers: dict[str, sqlheaders.Header]) -> dict[str, list[str]]:
    """The declaration of each replaceable table, from its own SQL file (run in a scratch database)."""
    ctx.execute_ddl("CREATE DATABASE IF NOT EXISTS sqltest_declared")
    ctx.execute_ddl("USE sqltest_declared")
    columns = {}
    for name in REPLACEABLE:
        ctx.execute_file(sqlheaders.resolve([name], [], list(headers.values()))[0].name)
        with ctx.t_env.execute_sql(f"DESCRIBE `{name}`").collect() as described:
            columns[name] = _declaration([tuple(row) for row in described])
    return columns


def _through_barrier(parts: list[str]) -> list[str]:
    """A versioned table's declaration with its computed event time passed through the barrier's mark:
    the temporal join always reads that column (an unused one would be pruned, and a filter on the
    versioned side of the join is refused)."""
    column = f"`{BARRIER_COLUMN}`"
    return [part.replace(column, f"{REFERENCE_READ}({column})") if " AS " in part and column in part
            and not part.startswith("WATERMARK") else part for part in parts]


def _create_inputs(ctx: JobContext, fixture: Fixture, folder: Path, declared: dict[str, list[str]]) -> None:
    # a versioned reference table the fixture leaves out is empty (e.g. no device has metadata versions)
    inputs = {**{name: [] for name in REPLACEABLE}, **fixture.inputs}
    for name, rows in inputs.items():
        data = folder / f"{name}.json"
        if name == TELEMETRY:
            data.write_text(_telemetry_lines(rows))
            columns = ",\n  ".join(f"{column} {kind}" for column, kind in TELEMETRY_COLUMNS)
            # The watermark assigner of a filesystem source emits a watermark as soon as it moves by more
            # than pipeline.auto-watermark-interval, i.e. after every row here: a fixture's rows arrive
            # with the watermark between them that a live topic read at the devices' pace would give.
            ctx.execute_ddl(f"""CREATE TEMPORARY TABLE {TELEMETRY}{SOURCE_SUFFIX} (
  {columns},
  event_time AS TO_TIMESTAMP_LTZ(event_ms, 3),
  WATERMARK FOR event_time AS event_time - INTERVAL '{ctx.config.job.watermark_delay_s}' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{data}', 'format' = 'json')""")
            ctx.execute_ddl(f"CREATE TEMPORARY VIEW {TELEMETRY} AS "
                            f"SELECT * FROM {TELEMETRY}{SOURCE_SUFFIX} WHERE {AWAIT_REFERENCES}()")
        elif name in REPLACEABLE:
            data.write_text("".join(json.dumps(REPLACEABLE[name].row(row)) + "\n" for row in rows))
            ctx.execute_ddl(
                f"CREATE TEMPORARY TABLE `{name}` (\n  " + ",\n  ".join(_through_barrier(declared[name]))
                + f"\n) WITH ('connector' = 'filesystem', 'path' = '{data}', 'format' = 'json',"
                " 'json.fail-on-missing-field' = 'false')")
        else:
            known = ", ".join([TELEMETRY, *REPLACEABLE])
            raise ValueError(f"input {name!r} cannot be replaced (known: {known})")


_CATALOG_NAME = re.compile(r"`([^`]+)`\.`([^`]+)`\.`([^`]+)`")


def _tables_read(ctx: JobContext, sql: str, seen: set[tuple[str, str, str]] | None = None) -> set[str]:
    """The tables a query reads, through every view, from Flink's own expansion of the query and views
    (fully qualified names): what the planner scans (an event-time temporal join is never pruned)."""
    from pyflink.java_gateway import get_gateway

    seen = set() if seen is None else seen
    identifier = get_gateway().jvm.org.apache.flink.table.catalog.ObjectIdentifier
    catalogs = ctx.t_env._j_tenv.getCatalogManager()
    for name in set(_CATALOG_NAME.findall(sql)) - seen:
        seen.add(name)
        found = catalogs.getTable(identifier.of(*name))
        if found.isPresent() and found.get().getResolvedTable().getTableKind().name() == "VIEW":
            _tables_read(ctx, str(found.get().getResolvedTable().getExpandedQuery()), seen)
    return {table for _, _, table in seen}


def _as_json(ctx: JobContext, number: int, table: Table) -> Table:
    """The fixture's output as (fixture number, row_json): one row type for every fixture, so all unite."""
    ctx.t_env.create_temporary_view("sqltest_output", table)
    values = []
    # The column types as Flink prints them (TIMESTAMP_LTZ(3), ...), read on the Java side: PyFlink's own
    # conversion of each type to Python took thousands of gateway calls (19 s of 21 fixtures' 37 s set-up)
    resolved = table._j_table.getResolvedSchema()
    for name, kind in zip(list(resolved.getColumnNames()), [str(t) for t in resolved.getColumnDataTypes()],
                          strict=True):
        local_zone = "LOCAL" in kind.upper() or "LTZ" in kind.upper()
        value = f"CAST(`{name}` AS TIMESTAMP(3))" if local_zone else f"`{name}`"
        values.append(f"'{name}' VALUE {value}")
    return ctx.t_env.sql_query(
        f"SELECT {number} AS fixture, JSON_OBJECT({', '.join(values)} NULL ON NULL) AS row_json FROM sqltest_output")


@dataclass
class Prepared:
    """A fixture's output as (fixture number, row_json), and the reference tables its SQL reads."""

    table: Table
    references: set[str]


def _prepare(ctx: JobContext, number: int, fixture: Fixture, folder: Path,
             declared: dict[str, list[str]], headers: dict[str, sqlheaders.Header]) -> Prepared:
    ctx.execute_ddl(f"CREATE DATABASE fixture_{number}")
    ctx.execute_ddl(f"USE fixture_{number}")
    own = folder / f"fixture_{number}"
    own.mkdir()
    _create_inputs(ctx, fixture, own, declared)
    for name in files_for(fixture, headers):
        ctx.execute_file(name)
    table = ctx.t_env.sql_query(fixture.query)
    # Each reference table the query reads is one source of the job (identical scans are reused): the
    # barrier waits for that many. (Counting the scans in the job's plan took a second 12 s planning.)
    read = _tables_read(ctx, str(table._j_table.getQueryOperation().asSerializableString()))
    return Prepared(_as_json(ctx, number, table), read & set(REPLACEABLE))


def _short(error: BaseException) -> str:
    """The cause of a (py4j) error, without the Java stack."""
    lines = [line for line in str(error).splitlines() if line.strip() and not line.startswith("\tat ")]
    causes = [line for line in lines[3:] if line.startswith("Caused by:")]
    return "\n".join(lines[:3] + causes[-1:])[:3000]


def run_all(config: Config, fixtures: list[Fixture], barrier_timeout_s: int = 180) -> dict[Path, Outcome]:
    """Every fixture's output changelog, by fixture path, from one bounded job. The job fails if a
    fixture's telemetry waits more than `barrier_timeout_s` for the reference sources to end."""
    # A finished task closes at once, not after a final checkpoint: a reference source marks the barrier
    # when it closes, and no checkpoint completes while the telemetry waits at the barrier. No restart:
    # a failure is the fixtures' result (and a restart would find the first attempt's marks).
    options = JobOptions(bounded=True, parallelism=1, with_secrets=False,
                         flink={"execution.checkpointing.checkpoints-after-tasks-finish": "false",
                                "restart-strategy.type": "none"})
    ctx = JobContext(config, options, job_name="sqltest")
    allow_late_updates(ctx.t_env, config)  # the aggregation job's windows (no fixture uses a window TVF)
    outcomes = {fixture.path: Outcome() for fixture in fixtures}
    with tempfile.TemporaryDirectory(prefix="kappa-sqltest-") as folder:
        barrier = Path(folder) / "barrier"
        barrier.mkdir()
        parameters = {BARRIER_PARAMETER: barrier, f"{BARRIER_PARAMETER}.timeout-ms": barrier_timeout_s * 1000}
        ctx.t_env.get_config().set("pipeline.global-job-parameters",
                                   ",".join(f"{key}:{value}" for key, value in parameters.items()))
        ctx.execute_file("telemetry/functions.sql")
        for name, java_class in BARRIER_FUNCTIONS.items():
            ctx.execute_ddl(f"CREATE TEMPORARY SYSTEM FUNCTION {name} AS '{java_class}' LANGUAGE JAVA")
        headers = sqlheaders.load_headers(config.sql_dir)
        declared = _declared_columns(ctx, headers)
        prepared: list[Prepared] = []
        for number, fixture in enumerate(fixtures):
            try:
                prepared.append(_prepare(ctx, number, fixture, Path(folder), declared, headers))
            except Exception as error:  # noqa: BLE001 - py4j errors of one fixture's SQL: that fixture fails
                outcomes[fixture.path].error = f"{type(error).__name__}: {_short(error)}"
        ctx.execute_ddl("USE default_database")
        if not prepared:
            return outcomes
        try:
            sources = sum(len(p.references) for p in prepared) * (options.parallelism or 1)
            (barrier / "expected").write_text(str(sources))
            united = reduce(lambda left, right: left.union_all(right), [p.table for p in prepared])
            with united.execute().collect() as results:
                for row in results:
                    output = {"kind": _KINDS[row.get_row_kind().name], **json.loads(row[1])}
                    outcomes[fixtures[row[0]].path].rows.append(output)
        except Exception as error:  # noqa: BLE001 - the shared job failed: every fixture of it fails
            for fixture in fixtures:
                outcomes[fixture.path].error = outcomes[fixture.path].error or f"the job failed: {_short(error)}"
    return outcomes


def run_fixture(config: Config, fixture: Fixture) -> Outcome:
    """One fixture alone (its own job), e.g. while writing it."""
    return run_all(config, [fixture])[fixture.path]
