"""Jobs as named stages: a source, the logic, and sinks, in the manner of flink-training, where a job
takes its source and sinks as arguments.

A job declares its source (the files that define what it reads, e.g. `telemetry_valid`) and its sinks
(the files that create the output tables and INSERT into them). The logic between them is not listed:
it is resolved from the SQL files' headers (kappa.sqlheaders), following what the sinks read back to
what the source defines. So a bench swaps the Kafka source for a JSON one, or the sinks for blackholes
(`with_source`, `with_sinks`), and gets the same logic in the same order without re-listing files.

Python operators between SQL files (the alerting job's silence detector and cool-down) are `Step`s with
the names they read and define; a step may also prepare something a file needs (a topic to exist).
`plan` is the whole order without Flink (tests pin it); `build` runs it on a JobContext.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from kappa.sqlheaders import Header, Provider, defined_by, load_headers, needs, read_header, resolve

if TYPE_CHECKING:
    from pyflink.table import StatementSet

    from kappa.flinkenv import JobContext, JobOptions

Action = Callable[["JobContext", "StatementSet"], None]


@dataclass(frozen=True)
class Step:
    """A part of a job that is Python, not a SQL file; `reads`/`defines` as in a SQL file's header.
    With `sql`, the step runs that file after `run` (e.g. its Kafka topic created first with the right
    settings), and reads and defines what the file's header says."""

    name: str
    run: Action
    reads: tuple[str, ...] = ()
    defines: tuple[str, ...] = ()
    sql: str | None = None

    def with_header(self, sql_dir: Path) -> Step:
        if self.sql is None:
            return self
        header = read_header(sql_dir, self.sql)
        return replace(self, reads=header.reads, defines=header.defines)


Part = str | Path | Step  # a SQL file (relative to paths.sql_dir, or absolute), or a step


@dataclass(frozen=True)
class Stage:
    """A named group of parts run in the order given (a source, or one set of sinks)."""

    name: str
    parts: tuple[Part, ...]
    enabled: Callable[[JobOptions], bool] | None = None  # e.g. the archive's sinks only with options.lake


@dataclass(frozen=True)
class Pipeline:
    """A job: prepare the environment, the functions, the source, the resolved logic, the sinks."""

    name: str
    source: Stage
    sinks: tuple[Stage, ...]
    functions: tuple[str, ...] = ("telemetry/functions.sql",)
    prepare: tuple[Callable[[JobContext], None], ...] = ()  # table options, before any statement
    steps: tuple[Step, ...] = ()  # the job's Python parts, found by the resolution as files are
    prefer: tuple[str, ...] = ()  # files that win when several define a needed name

    def with_source(self, source: Stage) -> Pipeline:
        return replace(self, source=source)

    def with_sinks(self, *sinks: Stage) -> Pipeline:
        return replace(self, sinks=sinks)

    def _provider(self, part: Part, sql_dir: Path) -> Header | Step:
        return part.with_header(sql_dir) if isinstance(part, Step) else read_header(sql_dir, part)

    def plan(self, sql_dir: Path, options: JobOptions | None = None) -> list[tuple[str, Part]]:
        """Every part in the order it runs, each with its stage's name ('functions', the source's
        name, 'logic', a sink's name)."""
        sql_dir = Path(sql_dir)
        sinks = [stage for stage in self.sinks if stage.enabled is None or options is None or stage.enabled(options)]
        given = defined_by(read_header(sql_dir, name) for name in self.functions)
        given |= defined_by(self._provider(part, sql_dir) for part in self.source.parts)
        wanted = needs(self._provider(part, sql_dir) for stage in sinks for part in stage.parts)
        providers: list[Provider] = [step.with_header(sql_dir) for step in self.steps]
        providers += load_headers(sql_dir).values()
        logic = resolve(wanted, given, providers, self.prefer)
        order: list[tuple[str, Part]] = [("functions", name) for name in self.functions]
        order += [(self.source.name, part) for part in self.source.parts]
        order += [("logic", part if isinstance(part, Step) else part.name) for part in logic]
        order += [(stage.name, part) for stage in sinks for part in stage.parts]
        return order

    def build(self, ctx: JobContext) -> StatementSet:
        """Run the plan: DDL is executed, INSERTs go into one statement set (one Flink job)."""
        for prepare in self.prepare:
            prepare(ctx)
        statements = ctx.t_env.create_statement_set()
        for _, part in self.plan(ctx.config.sql_dir, ctx.options):
            if isinstance(part, Step):
                part.run(ctx, statements)
                if part.sql is not None:
                    ctx.add_inserts(statements, part.sql)
            else:
                ctx.add_inserts(statements, part)
        return statements


def blackholes(*views: str) -> Stage:
    """Sinks that discard `views` (benches: the logic's cost without any output's)."""

    def run(ctx: JobContext, statements: StatementSet) -> None:
        from pyflink.table import TableDescriptor

        for view in views:
            statements.add_insert(TableDescriptor.for_connector("blackhole").build(), ctx.t_env.from_path(view))

    return Stage("blackholes", (Step("blackholes", run, reads=views),))


# The Kafka telemetry both jobs read: raw records with their event time, decoded into telemetry_valid
# and the dead letters (a test or bench replaces it with a stage defining the same names).
KAFKA_TELEMETRY = Stage("kafka telemetry", ("telemetry/source.sql", "telemetry/decode.sql"))
