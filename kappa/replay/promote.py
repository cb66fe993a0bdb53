"""Promoting a version (the job's reader views switch to its tables in one transaction), the live job
that keeps a promoted version current, and dropping a version: exactly the tables, topics and
Iceberg tables the job's OUTPUTS declare, with the version's suffix."""

from __future__ import annotations

import shlex

import psycopg

from kappa import jobrunner, outputs
from kappa.config import PROJECT_ROOT, Config
from kappa.flinkenv import JobOptions
from kappa.replay import ReplayError
from kappa.replay.compare import table_exists
from kappa.replay.offsets import delete_subjects, delete_topics, startup_options
from kappa.replay.versions import LIVE, Version, check_version, forget, get_version, lake_ref, version_suffix
from kappa.replay.watch import ALIVE, ENDED

UNREACHABLE = "UNREACHABLE"


def promote(conn: psycopg.Connection, job: str, version: str) -> list[str]:
    """Point the job's reader views at the version's tables and mark it promoted, in one transaction.
    Returns the views switched."""
    check_version(version, allow_live=True)
    suffix = version_suffix(version)
    views = outputs.job_outputs(job).views
    with conn.transaction():
        if version != LIVE:
            chosen = get_version(conn, job, version)
            if chosen.state not in ("finished", "following", "promoted"):
                raise ReplayError(f"version {version} is {chosen.state}; only a finished or following replay "
                                  "can be promoted")
        for view in views:
            if not table_exists(conn, view.table + suffix):
                raise ReplayError(f"table {view.table + suffix} does not exist")
            conn.execute(view.definition(suffix))
        # un-promoted, a --follow version is still kept current by its job
        conn.execute("UPDATE replay_versions SET state = CASE WHEN job_id IS NULL THEN 'finished' ELSE 'following' "
                     "END WHERE job = %s AND state = 'promoted'", (job,))
        if version != LIVE:
            conn.execute("UPDATE replay_versions SET state = 'promoted' WHERE job = %s AND version = %s",
                         (job, version))
    return [view.name for view in views]


def promote_lake(config: Config, conn: psycopg.Connection, job: str, version: str,
                 replace: bool = False) -> list[str]:
    """Move main of the job's Iceberg tables to the version's branch (kappa.lake_branch.promote: a
    fast-forward, refused when main moved on since the fork unless `replace`). Call before `promote`,
    which switches the PostgreSQL views: a refused lake promotion then changes nothing. Returns what moved."""
    from kappa import lake_branch

    declared = outputs.job_outputs(job)
    if version == LIVE or not declared.lake:
        return []
    chosen = get_version(conn, job, check_version(version))
    if chosen.follows:
        return []  # its job writes versioned Iceberg tables, not a branch
    if chosen.state not in ("finished", "promoted"):
        raise ReplayError(f"version {version} is {chosen.state}; only a finished replay's branch can be promoted")
    try:
        done = lake_branch.promote(config, declared.lake, lake_ref(version), replace=replace)
    except lake_branch.LakeBranchError as exc:
        raise ReplayError(str(exc)) from exc
    return [f"{p.table}: main {p.before} -> {p.after} ({p.how})" for p in done]


def follow_on_options(chosen: Version) -> JobOptions:
    """The live job of a promoted version: unbounded, from the replay's end offsets, into its outputs (and
    main of the Iceberg tables, which `promote_lake` moved to the version's branch).

    It continues the replay's input exactly (no record skipped or read twice); see docs/design.md
    for the windows open at those offsets, which it rewrites from the records after them only."""
    return JobOptions(output_suffix=version_suffix(chosen.version), lake_suffix="",
                      extra={"telemetry_topic": chosen.topic, "source_options": startup_options(chosen.end)})


def follow_on_command(config: Config, chosen: Version) -> str:
    """`kappa submit ...` starting `follow_on_options`, with the SQL folder of `config` when not the default."""
    command = shlex.join(["kappa", "submit", chosen.job, *jobrunner.job_arguments(follow_on_options(chosen))])
    if config.sql_dir != PROJECT_ROOT / "sql":
        command = f"KAPPA_PATHS__SQL_DIR={shlex.quote(str(config.sql_dir))} {command}"
    return command


def cluster_job_state(config: Config, job_id: str) -> str:
    """The Flink job's state; 'GONE' when the cluster does not know it (e.g. restarted without HA),
    UNREACHABLE when the cluster does not answer."""
    try:
        return jobrunner.job_state(config, job_id)
    except jobrunner.JobError as exc:
        return "GONE" if "-> 404" in str(exc) else UNREACHABLE


def running_jobs_named(config: Config, name: str) -> list[str]:
    """Ids of the cluster's running (or restarting) jobs named exactly `name` (a job's name is JOB + output suffix);
    [] when the cluster does not answer. `kappa stop NAME` matches by substring, so print ids."""
    try:
        return [j.job_id for j in jobrunner.list_jobs(config) if j.name == name and j.state in ALIVE]
    except jobrunner.JobError:
        return []


def stop_hint(config: Config, job: str, previous: str) -> str:
    """How to stop the job that fed the reader views before this promotion."""
    name = job + version_suffix(previous)
    ids = running_jobs_named(config, name)
    if not ids:
        return f"then stop the old live job ({name}; none running found on the cluster; see `kappa jobs`)"
    return f"then stop the old live job ({name}): " + "; ".join(f"kappa stop {i} --savepoint" for i in ids)


def _stop_version_job(config: Config, chosen: Version, cancel_job: bool) -> list[str]:
    """A --follow version's job writes into its tables: refuse to drop them under it, or cancel it."""
    if chosen.job_id is None:
        return []
    state = cluster_job_state(config, chosen.job_id)
    if state in ENDED or state == "GONE":
        return []
    if state == UNREACHABLE:
        raise ReplayError(f"cannot tell whether {chosen.version}'s Flink job {chosen.job_id} still runs: "
                          f"the cluster at {config.flink.rest_url} does not answer")
    if not cancel_job:
        raise ReplayError(f"version {chosen.version}'s Flink job {chosen.job_id} is {state} (it keeps the version "
                          f"current): `kappa cancel {chosen.job_id}` first, or drop with --cancel-job")
    jobrunner.cancel(config, chosen.job_id)
    jobrunner.wait_for_state(config, chosen.job_id, {"CANCELED"}, timeout_s=120)
    return [f"job {chosen.job_id} (cancelled)"]


def drop(config: Config, conn: psycopg.Connection, job: str, version: str, cancel_job: bool = False) -> list[str]:
    """Drop the version's tables, output topics, their registry subjects and Iceberg tables (those the job
    declares); refused while it is promoted, and while its --follow job runs unless `cancel_job`.
    Returns what went."""
    chosen = get_version(conn, job, check_version(version))
    if chosen.promoted:
        raise ReplayError(f"version {version} is promoted; `kappa replay promote {job} live` (or another) first")
    declared = outputs.job_outputs(job)
    suffix = version_suffix(version)
    gone = _stop_version_job(config, chosen, cancel_job)
    with conn.transaction():
        gone += [f"table {name}" for name in declared.drop_tables(conn, suffix)]
        forget(conn, job, version)
    topics = declared.topic_names(config, suffix, chosen.topic)
    gone += [f"topic {t}" for t in delete_topics(config, topics)]
    gone += [f"subject {s}" for s in delete_subjects(config, topics)]
    gone += _revoke_acls(config, job, suffix, chosen.topic)
    if declared.lake:  # the version's Iceberg branch (its files are left for `kappa lake expire`), and the
        from kappa import lake, lake_branch  # versioned tables of a --follow or older version, purged

        gone += [f"iceberg branch {name}" for name in lake_branch.drop(config, declared.lake, lake_ref(version))]
        gone += [f"iceberg table {name}" for name in lake.drop_tables(config, declared.lake, suffix)]
    return gone


def _revoke_acls(config: Config, job: str, suffix: str, input_topic: str) -> list[str]:
    """The version's own Kafka ACLs (its output topics, group and transactional ids), granted when it ran."""
    from kappa import kafka_security, sqlfiles
    from kappa.stack.kafka_setup import revoke_version

    params = sqlfiles.params_from_config(config, include_secrets=False).with_values(
        job_name=job, output_suffix=suffix, telemetry_topic=input_topic)
    return revoke_version(config, kafka_security.job_role(job), params)
