"""Replaying the alerting job on the real stack through the `kappa replay` command: run (cluster and
local), compare, promote and drop touch exactly the outputs jobs/alerts.py declares (table alerts_<v>,
topic alerts_<v>, view v_alerts), never the aggregation job's. And a replay whose job fails on every
record stops: non-zero exit with the job's exception, the version marked failed, no job left running."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from pathlib import Path

import psycopg
import pytest

from kappa import cli, jobrunner, kafka_clients, outputs, waiting
from kappa.config import Config
from kappa.registry import READ, session
from kappa.replay import ReplayError, compare, offsets, promote, runner, versions, watch
from kappa.simulate import simulate
from kappa.stack.postgres import connect
from tests.integration.aggregate_support import faulty_spec
from tests.integration.alerts_support import KIND_TO_TYPE
from tests.integration.kafka_support import committed_messages

pytestmark = pytest.mark.integration


def _tables(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()}


def _view_reads(conn: psycopg.Connection, view: str) -> str:
    row = conn.execute("SELECT pg_get_viewdef(%s::regclass)", (view,)).fetchone()
    assert row is not None
    return str(row[0])


def _aggregate_views(conn: psycopg.Connection) -> dict[str, str]:
    return {v.name: _view_reads(conn, v.name) for v in outputs.job_outputs("aggregate").views}


def _topics(config: Config) -> set[str]:
    admin = kafka_clients.admin(config)
    return {t for t in admin.list_topics(timeout=10).topics if not t.startswith("__")}


def _topics_settle(config: Config, want: set[str]) -> set[str]:
    """The topics once deletions have reached the metadata the client reads (or what is left then)."""
    found: set[str] = set()

    def settled() -> bool:
        found.clear()
        found.update(_topics(config))
        return found == want

    with contextlib.suppress(waiting.WaitTimeout):  # the caller asserts on what is left
        waiting.wait_until(settled, timeout_s=60, what="the topics to settle")
    return found


def _subjects(config: Config) -> set[str]:
    with session(config, READ) as http:
        response = http.get(f"{config.registry.url}/subjects", timeout=10)
    response.raise_for_status()
    return set(response.json())


def _acls_naming(config: Config, text: str) -> set[tuple[str, str, str]]:
    """(resource type, name, operation) of every ACL whose resource name contains `text`."""
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    every = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                             AclPermissionType.ANY)
    admin = kafka_clients.admin(config)  # held: a collected client fails its pending futures
    bindings = admin.describe_acls(every).result(30)
    return {(b.restype.name, b.name, b.operation.name) for b in bindings if text in b.name}


def _kappa(*argv: str) -> int:
    return cli.main(["replay", *argv])


@pytest.mark.cluster
def test_alert_replay_creates_compares_promotes_and_drops_only_the_alerting_jobs_outputs(
        migrated: Config, capsys: pytest.CaptureFixture[str]) -> None:
    tag = uuid.uuid4().hex[:6]
    topic, v2, v3 = f"telemetry-ralerts-{tag}", f"a{tag}", f"b{tag}"
    # the data of the alerting job's simulator test: every kind of alert planted
    manifest = simulate(migrated, faulty_spec(topic, seed=23, devices=8, readings=40), produce=True, log=lambda _: None)
    anomalies = [a for a in manifest.data["anomalies"] if a["kind"] in KIND_TO_TYPE]
    planted = {(a["device_id"], KIND_TO_TYPE[a["kind"]]) for a in anomalies}
    assert len(planted) >= len(KIND_TO_TYPE), manifest.data["anomalies"]
    with connect(migrated) as conn:
        tables_before, views_before = _tables(conn), _aggregate_views(conn)
        alerts_view_before = _view_reads(conn, "v_alerts")
    topics_before = _topics(migrated)
    try:
        # run on the cluster: the job's table and topic are created for the version, nothing else
        assert _kappa("run", "alerts", "--as", v2, "--cluster", "--topic", topic) == 0
        err = capsys.readouterr().err
        assert "submitted as Flink job" in err and f"replay alerts {v2} finished" in err, err
        with connect(migrated) as conn:
            assert _tables(conn) - tables_before == {f"alerts_{v2}"}
            rows = compare.table_rows(conn, f"alerts_{v2}", ("alert_id",))
            done = versions.get_version(conn, "alerts", v2)
        assert done.state == "finished" and done.topic == topic
        assert {(r["device_id"], r["alert_type"]) for r in rows.values()} == planted
        assert _topics(migrated) - topics_before == {f"alerts_{v2}"}
        keys = {key.decode() for key, _ in committed_messages(migrated, f"alerts_{v2}") if key is not None}
        assert keys == {key for (key,) in rows}

        # the same offsets replayed locally give the same alerts; compare names exactly what differs
        rng = offsets.OffsetRange(done.topic, done.start, done.end)
        runner.run_replay(migrated, "alerts", v3, rng, interval_s=1, log=lambda _: None)
        with connect(migrated) as conn:
            (same,) = compare.compare_versions(conn, "alerts", v2, v3)
            assert (same.table, same.rows_left, same.rows_right, same.differences) == ("alerts", len(rows),
                                                                                       len(rows), 0)
            gone_id, changed_id = sorted(key for (key,) in rows)[:2]
            conn.execute(f'DELETE FROM "alerts_{v3}" WHERE alert_id = %s', (gone_id,))
            conn.execute(f"UPDATE \"alerts_{v3}\" SET severity = CASE severity WHEN 'WARNING' THEN 'CRITICAL' "
                         "ELSE 'WARNING' END WHERE alert_id = %s", (changed_id,))
            (diff,) = compare.compare_versions(conn, "alerts", v2, v3)
        assert (diff.only_left_keys, diff.only_right_keys, diff.differing_keys) == ({(gone_id,)}, set(),
                                                                                    {(changed_id,)})
        assert _kappa("compare", "alerts", v2, v3) == 0
        out = capsys.readouterr().out
        assert "severity(1)" in out and "first_event_time" in out and "device_agg_1m" not in out, out

        # promote: v_alerts reads the version; the aggregation job's views do not move
        assert _kappa("promote", "alerts", v2) == 0
        assert "v_alerts now read" in capsys.readouterr().out
        with connect(migrated) as conn:
            assert f"alerts_{v2}" in _view_reads(conn, "v_alerts")
            assert conn.execute("SELECT count(*) FROM v_alerts").fetchone() == (len(rows),)
            assert _aggregate_views(conn) == views_before
            with pytest.raises(ReplayError, match="promoted"):
                promote.drop(migrated, conn, "alerts", v2)
        assert _kappa("promote", "alerts", "live") == 0
        assert "v_alerts now read the live tables" in capsys.readouterr().out
        with connect(migrated) as conn:
            assert _view_reads(conn, "v_alerts") == alerts_view_before

        # drop: the version's table and topic, and the registry subject its Avro sink registered, nothing else
        # and the version's own Kafka ACLs (its topic, group and transactional ids), not the live job's
        assert f"alerts_{v2}-value" in _subjects(migrated)
        own_acls, live_acls = _acls_naming(migrated, v2), _acls_naming(migrated, "alerts")
        assert ("TOPIC", f"alerts_{v2}", "WRITE") in own_acls and ("TOPIC", "alerts", "WRITE") in live_acls
        assert {kind for kind, _, _ in own_acls} == {"TOPIC", "GROUP", "TRANSACTIONAL_ID"}, own_acls
        assert _kappa("drop", "alerts", v2) == 0
        out = capsys.readouterr().out.strip()
        assert out.startswith(f"dropped: table alerts_{v2}, topic alerts_{v2}, subject alerts_{v2}-value, "), out
        assert out.count(", acl ") == len(own_acls), out
        assert f"alerts_{v2}-value" not in _subjects(migrated)
        assert not _acls_naming(migrated, v2)
        assert _acls_naming(migrated, "alerts") == live_acls - own_acls
        assert _kappa("drop", "alerts", v3) == 0
        with connect(migrated) as conn:
            assert _tables(conn) == tables_before and _aggregate_views(conn) == views_before
            assert not [v for v in versions.versions(conn, "alerts") if v.version in (v2, v3)]
        assert _topics_settle(migrated, topics_before) == topics_before
    finally:
        with connect(migrated) as conn:
            promote.promote(conn, "alerts", "live")
            for version in {v.version for v in versions.versions(conn, "alerts")} & {v2, v3}:
                promote.drop(migrated, conn, "alerts", version)


BROKEN_FIELD = "r.device_id AS device_id,"
FAILING_FIELD = "CAST(CAST(r.device_id AS INT) AS STRING) AS device_id,"  # 'dev-..' is no number: fails at run time


def _failing_sql_dir(tmp_path: Path) -> Path:
    """A copy of sql/ whose valid readings fail on a CAST of their device id, for every record with data."""
    changed = tmp_path / "sql"
    shutil.copytree(Path(__file__).resolve().parents[2] / "sql", changed)
    decode = changed / "telemetry" / "decode.sql"
    text = decode.read_text()
    assert text.count(BROKEN_FIELD) == 1, "decode.sql changed: update the failing job's edit"
    decode.write_text(text.replace(BROKEN_FIELD, FAILING_FIELD))
    return changed


@pytest.mark.cluster
def test_a_replay_whose_job_fails_on_every_record_stops_with_the_exception(
        migrated: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    tag = uuid.uuid4().hex[:6]
    topic, on_cluster, local = f"telemetry-rfail-{tag}", f"c{tag}", f"l{tag}"
    simulate(migrated, faulty_spec(topic, seed=5, devices=2, readings=20), produce=True, log=lambda _: None)
    sql_dir = _failing_sql_dir(tmp_path)
    monkeypatch.setenv("KAPPA_PATHS__SQL_DIR", str(sql_dir))
    # the job's own restart strategy (flinkenv.restart_settings), cut short: the bound is what is tested,
    # not its default values (5 failures 10 s apart, which a lost TaskManager needs)
    fast = {"restart_max_failures": 2, "restart_delay_s": 1}
    for name, value in fast.items():
        monkeypatch.setenv(f"KAPPA_JOB__{name.upper()}", str(value))
    try:
        # the command: exit 2 with the job's root exception, once the bounded restarts are used up
        assert _kappa("run", "aggregate", "--as", on_cluster, "--cluster", "--topic", topic) == 2
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: Flink job ") and "java.lang.NumberFormatException" in last, err
        with connect(migrated) as conn:
            failed = versions.get_version(conn, "aggregate", on_cluster)
        assert failed.state == "failed" and failed.error is not None and "NumberFormatException" in failed.error
        name = f"aggregate_{on_cluster}"
        assert not [j for j in jobrunner.list_jobs(migrated) if j.name == name and j.state in watch.ALIVE]

        # the same locally (MiniCluster): the function the command calls raises with the exception
        changed = migrated.model_copy(update={"paths": migrated.paths.model_copy(update={"sql_dir": sql_dir}),
                                              "job": migrated.job.model_copy(update=fast)})
        rng = offsets.capture_range(migrated, topic)
        with pytest.raises(ReplayError, match="NumberFormatException"):
            runner.run_replay(changed, "aggregate", local, rng, interval_s=1, log=lambda _: None)
        with connect(migrated) as conn:
            assert versions.get_version(conn, "aggregate", local).state == "failed"
    finally:
        with connect(migrated) as conn:
            for version in {v.version for v in versions.versions(conn, "aggregate")} & {on_cluster, local}:
                promote.drop(migrated, conn, "aggregate", version)
