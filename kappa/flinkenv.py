"""The shared plumbing of every job: a Flink environment configured from the config object, and a
`JobContext` that runs the job's SQL files.

A job module in `jobs/` only says what flows where (`build(ctx)`); this module decides how Flink is
configured (jars, checkpointing, parallelism), so the same job runs unchanged in a local MiniCluster
(`kappa run`, tests), on the standalone cluster (`kappa submit`) and in replays.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kappa import bounded, kafka_security, pg_security, sqlfiles
from kappa.config import Config
from kappa.jars import local_jvm_classpath, pipeline_jars_value
from kappa.stack import flink_ha

if TYPE_CHECKING:
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import StatementSet, StreamTableEnvironment


@dataclass
class JobOptions:
    """How one run of a job differs from the live default."""

    bounded: bool = False  # read Kafka up to the end offsets at start, then finish (tests, demo, replay)
    output_suffix: str = ""  # '' = live outputs; e.g. '_v2' writes versioned outputs (replays)
    parallelism: int | None = None
    extra: dict[str, str] = field(default_factory=dict)  # additional SQL placeholders (may override source_options)
    # False: secret placeholders get a mask instead of the secret, for runs that connect to no service
    # (golden SQL fixtures), so they need neither the environment's secrets nor a started stack
    with_secrets: bool = True
    # False: the job leaves out its Iceberg archive inserts (sql/archive). For tests that do not read the
    # archive: its commits at every checkpoint dominate a small run's time (bench/lake_sink_cost.py)
    lake: bool = True
    # more Flink options for this run, over the project's (benches: the cluster's metrics reporter in a
    # local MiniCluster, bench/reporter_overhead.py)
    flink: dict[str, str] = field(default_factory=dict)
    # The Iceberg tables this run writes: `<name><lake_suffix>` (None: the output suffix), on the branch
    # `lake_branch` (None: main). A replay writes the live tables' branch `replay_<version>` (kappa.lake_branch)
    lake_suffix: str | None = None
    lake_branch: str | None = None

    @property
    def lake_tables_suffix(self) -> str:
        """The suffix of the Iceberg tables this run writes."""
        return self.output_suffix if self.lake_suffix is None else self.lake_suffix


def lake_write_hint(branch: str | None) -> str:
    """The INSERT's table hint that sends Iceberg's Flink sink to a branch, after a space ('' for main)."""
    if branch is None:
        return ""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", branch):
        raise ValueError(f"bad Iceberg branch name {branch!r}")
    return f" /*+ OPTIONS('branch'='{branch}') */"


def restart_settings(config: Config) -> dict[str, str]:
    """A bounded (failure-rate) restart strategy: a job failing on every record fails visibly instead of
    restarting for ever. The same values are the cluster's default (deploy/flink/config.yaml)."""
    job = config.job
    return {
        "restart-strategy.type": "failure-rate",
        "restart-strategy.failure-rate.max-failures-per-interval": str(job.restart_max_failures),
        "restart-strategy.failure-rate.failure-rate-interval": f"{job.restart_interval_s} s",
        "restart-strategy.failure-rate.delay": f"{job.restart_delay_s} s",
    }


def flink_settings(config: Config, options: JobOptions) -> dict[str, str]:
    """Every Flink option the project sets, from the config object."""
    flink = config.flink
    checkpoints = flink_ha.checkpoint_uri(config)  # on S3 with flink.ha: the standby must read them
    return {
        "pipeline.jars": pipeline_jars_value(config),
        "parallelism.default": str(options.parallelism or flink.parallelism),
        "execution.checkpointing.interval": f"{flink.checkpoint_interval_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.dir": checkpoints,
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "state.backend.type": "hashmap",
        "pipeline.object-reuse": str(flink.object_reuse).lower(),  # FlinkConfig.object_reuse says why
        **restart_settings(config),
        # the local MiniCluster's REST API (replays watch restarts through it) on loopback only
        "rest.bind-address": flink.host,
        # a Python operator hands records back in bundles, and the default wait of 1 s per bundle would add
        # to every record's latency (the jobs have none since the alerting job's keyed functions became Java)
        "python.fn-execution.bundle.time": "100",
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
        "table.local-time-zone": "UTC",
        **options.flink,
    }


def create_table_env(config: Config, options: JobOptions) -> tuple[StreamExecutionEnvironment,
                                                                    StreamTableEnvironment]:
    """A streaming Table environment (and its DataStream env) configured for this project."""
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import EnvironmentSettings, StreamTableEnvironment

    # PyFlink's gateway (the MiniCluster's JVM) starts with this process's environment, on first use
    os.environ.setdefault("HADOOP_CLASSPATH", local_jvm_classpath(config))
    settings = flink_settings(config, options)
    conf = Configuration()
    for key, value in settings.items():
        conf.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    t_env = StreamTableEnvironment.create(
        env, environment_settings=EnvironmentSettings.new_instance().in_streaming_mode().build()
    )
    for key, value in settings.items():
        t_env.get_config().set(key, value)
    if options.with_secrets:
        _registry_credentials_to_jvm(config)
    return env, t_env


def _registry_credentials_to_jvm(config: Config) -> None:
    """The Java decoder's registry credentials (the read role) and the CA it verifies the registry against, as
    system properties of this process's JVM (the local MiniCluster runs in it; on the standalone cluster the
    TaskManager has them from its environment). Set through the gateway: not in any argv, SQL text or job parameter."""
    from pyflink.java_gateway import get_gateway

    from kappa.registry import READ, ca_file, credentials

    user, password = credentials(config, READ)  # the decoder only fetches writer schemas by id
    system = get_gateway().jvm.System
    system.setProperty("kappa.registry.user", user)
    system.setProperty("kappa.registry.password", password)
    system.setProperty("kappa.registry.ca_file", ca_file(config))


def sql_params(config: Config, options: JobOptions, owner_password: bool = True) -> sqlfiles.SqlParams:
    params = sqlfiles.params_from_config(config, include_secrets=options.with_secrets, owner_password=owner_password)
    values = {"output_suffix": options.output_suffix, "lake_suffix": options.lake_tables_suffix,
              "lake_write_options": lake_write_hint(options.lake_branch)}
    if options.bounded:
        values["source_options"] = ",\n  'scan.bounded.mode' = 'latest-offset'"
        # A bounded run reads every partition up to a known end, so no partition is ever idle; idleness
        # detection (wall clock) would instead drop a partition that the reader is slow to reach (a
        # backpressured catch-up) from the watermark, and route its readings late. 0 = off.
        values["source_idle_timeout_s"] = "0"
        # Reference topics (rules, device metadata) are read to their end too; their finishing releases
        # the temporal joins (sql/alerts/threshold_versions.sql), so they need no idleness either.
        values["reference_options"] = ",\n  'scan.bounded.mode' = 'latest-offset'"
        values["reference_idle_timeout_s"] = "0"
    else:
        values["source_options"] = ""
    # `extra` may override both (replays pass exact start/end offsets, see kappa.replay)
    return params.with_values(**{**values, **options.extra})


_KAFKA_CONNECTOR = re.compile(r"'connector'\s*=\s*'(upsert-)?kafka'")
_TOPIC = re.compile(r"'topic'\s*=\s*'([^']+)'")


class JobContext:
    """What a job's `build` gets: the configured environments and its SQL files, ready to run."""

    def __init__(self, config: Config, options: JobOptions | None = None, job_name: str = "adhoc") -> None:
        self.config = config
        self.options = options or JobOptions()
        self.job_name = job_name
        self.env, self.t_env = create_table_env(config, self.options)
        self.t_env.get_config().set("pipeline.name", f"{job_name}{self.options.output_suffix}")
        # ${pg_password} is the job role's (below): the owner's is read only to grant, with postgres.grant_runs
        self.params = sql_params(config, self.options, owner_password=False).with_values(job_name=job_name)
        # The job's own Kafka principal (kappa/kafka_security.py); before it runs, its output topics
        # exist and its ACLs cover this run's topic names (a replay's suffix, a test's input topic).
        role = kafka_security.job_role(job_name)
        self.params = self.params.with_values(
            kafka_security=kafka_security.flink_options(config, role, self.options.with_secrets))
        # A bounded run's Kafka sources, each with the end offsets it reads (kappa.bounded): the runner
        # commits them for the sources' groups once the job has finished
        self.bounded_reads: list[bounded.BoundedRead] = []
        # ... and its own PostgreSQL role, granted its output tables with this run's suffix (kappa/pg_security.py)
        pg_role = pg_security.job_role(job_name)
        self.params = self.params.with_values(pg_user=pg_security.user(config, pg_role))
        if self.options.with_secrets:
            from kappa.stack.kafka_setup import prepare_run
            from kappa.stack.pg_setup import prepare_run as prepare_pg_run

            prepare_run(config, role, self.params)
            self.params = self.params.with_values(pg_password=sqlfiles.sql_string(
                config.secret(pg_security.password_env(config, pg_role))))
            if config.postgres.grant_runs:
                prepare_pg_run(config, pg_role, self.options.output_suffix)

    def statements(self, relative: str | Path) -> list[str]:
        """A SQL file of `paths.sql_dir`: a replay may run a changed copy of sql/ with the same job code.

        Topics are not auto-created: the topic of every Kafka table a file declares is created here
        if missing (runs without a principal of their own, such as benches, have no list of outputs)."""
        statements = sqlfiles.load(relative, self.params, sql_dir=self.config.sql_dir)
        if self.options.bounded and self.options.with_secrets:
            statements = [self._pin_bounded_ends(s) for s in statements]
        topics = [m.group(1) for s in statements if _KAFKA_CONNECTOR.search(s) for m in [_TOPIC.search(s)] if m]
        if topics and self.options.with_secrets:
            from kappa.stack.kafka_setup import ensure_topics

            ensure_topics(self.config, topics)
        return statements

    def _pin_bounded_ends(self, statement: str) -> str:
        pinned, read = bounded.pin_ends(self.config, statement)
        if read is not None:
            self.bounded_reads.append(read)
        return pinned

    def execute_file(self, relative: str | Path) -> None:
        """Run DDL (CREATE TABLE / VIEW / FUNCTION) statements of a SQL file."""
        for statement in self.statements(relative):
            self.execute_ddl(statement)

    def execute_ddl(self, statement: str) -> None:
        """One DDL statement, straight to the Java TableEnvironment. PyFlink's `execute_sql` first copies the
        job's jar options into the environment (YAML-parsing them, 25 ms a statement, 1-6 s a job start),
        which only the execution of the job needs: its statement set's `execute` still does it."""
        self.t_env._j_tenv.executeSql(statement)

    def add_inserts(self, statement_set: StatementSet, relative: str | Path) -> StatementSet:
        """Add the INSERT statements of a SQL file to the job's statement set (one Flink job)."""
        for statement in self.statements(relative):
            if statement.lstrip().upper().startswith("INSERT"):
                statement_set.add_insert_sql(statement)
            else:
                self.execute_ddl(statement)
        return statement_set
