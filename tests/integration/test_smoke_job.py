"""The smoke pipeline through the real stack: Kafka -> Flink (MiniCluster and the standalone cluster)
-> PostgreSQL, compared with the same windows computed in Python from what was produced."""

from __future__ import annotations

import uuid
from datetime import UTC
from pathlib import Path

import pytest
import requests

from kappa import cli, jobrunner, kafka_clients, kafka_security, smoke
from kappa.config import Config
from kappa.flinkenv import JobOptions
from kappa.replay.offsets import capture_range, committed_offsets
from kappa.stack.postgres import connect
from tests.integration.secrets_support import leaks

pytestmark = pytest.mark.integration


def _windows(config: Config, table: str) -> dict[tuple[str, int], tuple[int, float]]:
    with connect(config) as conn:
        rows = conn.execute(f"SELECT device_id, window_start, readings, avg_temperature FROM {table}").fetchall()
    return {(d, int(s.replace(tzinfo=UTC).timestamp() * 1000)): (c, a) for d, s, c, a in rows}


def _assert_equal(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for key, (count, avg) in expected.items():
        assert actual[key][0] == count, key
        assert actual[key][1] == pytest.approx(avg, rel=1e-9), key


def _prepare(config: Config, name: str, records: int) -> tuple[str, str, dict]:
    topic, table = f"smoke-{name}-{uuid.uuid4().hex[:6]}", f"smoke_counts_{name}"
    with connect(config) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (LIKE smoke_counts INCLUDING ALL)")
    rows = smoke.readings(records, seed=hash(name) % 1000)
    smoke.produce(config, rows, topic)
    return topic, table, smoke.expected_windows(rows)


def test_smoke_job_in_local_minicluster_matches_python(migrated: Config) -> None:
    topic, table, expected = _prepare(migrated, "local", 2000)
    options = JobOptions(bounded=True, output_suffix="_local", extra={"smoke_topic": topic})
    jobrunner.run_local(migrated, "smoke", options, wait=True)
    _assert_equal(_windows(migrated, table), expected)


def test_a_job_logs_in_to_kafka_with_a_password_read_from_a_mounted_folder(migrated: Config, tmp_path: Path) -> None:
    """`kafka.credentials_dir` (Kubernetes: the KafkaUser's Secret mounted in every Flink pod): the job's
    Kafka tables read the principal's password from `<dir>/password` through Kafka's DirectoryConfigProvider,
    so no JAAS file of kappa's is written or read, and the job still logs in and reads its topic."""
    topic, table, expected = _prepare(migrated, "mounted", 500)
    folder = tmp_path / "kafka-user"
    folder.mkdir()
    (folder / "password").write_text(migrated.secret(kafka_security.password_env(migrated, "smoke")))
    config = migrated.model_copy(update={"kafka": migrated.kafka.model_copy(update={"credentials_dir": str(folder)})})
    jaas_file = kafka_security.flink_secret_file(config, "smoke")
    jaas_file.unlink(missing_ok=True)
    options = JobOptions(bounded=True, output_suffix="_mounted", extra={"smoke_topic": topic})
    jobrunner.run_local(config, "smoke", options, wait=True)
    _assert_equal(_windows(migrated, table), expected)
    assert not jaas_file.exists()


def test_smoke_job_on_standalone_cluster_matches_python(migrated: Config, capsys: pytest.CaptureFixture[str]) -> None:
    """Through the command an engineer types: `kappa submit smoke --bounded --wait` returns 0 once the
    job has FINISHED (it exits 1 with the job's exception otherwise)."""
    topic, table, expected = _prepare(migrated, "cluster", 3000)
    code = cli.main(["submit", "smoke", "--bounded", "--wait", "--timeout", "300",
                     "--output-suffix", "_cluster", "--set", f"smoke_topic={topic}"])
    out = capsys.readouterr().out
    assert code == 0, out
    job_id = out.split("job id ", 1)[1].split()[0]
    assert "job smoke: FINISHED" in out
    assert jobrunner.job_state(migrated, job_id) == "FINISHED"
    _assert_equal(_windows(migrated, table), expected)
    # its group ends where the run read (kappa.bounded: the runner commits the ends it pinned)
    ends = capture_range(migrated, topic).end
    assert sum(ends.values()) >= 3000  # the records, and the commit markers of smoke.produce's transactions
    assert committed_offsets(migrated, f"{migrated.job.group_prefix}-smoke", topic, sorted(ends)) == ends
    # after a job ran on the cluster: no generated secret in any log, process argv or Flink REST reply
    assert leaks(migrated, job_id) == []


@pytest.mark.cluster
def test_submit_wait_exits_1_with_the_exception_of_a_failed_job(
        migrated: Config, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`kappa submit smoke --bounded --wait` on a topic with a record the JSON format cannot parse: the job
    fails once its restarts are used up, and the command exits 1 with the job's exception."""
    topic, _, _ = _prepare(migrated, "fails", 20)
    producer = kafka_clients.producer(migrated)
    producer.produce(topic, b"{not json")
    assert producer.flush(30) == 0
    # the job's restart strategy cut short (flinkenv.restart_settings): the default waits 10 s per failure
    monkeypatch.setenv("KAPPA_JOB__RESTART_MAX_FAILURES", "1")
    monkeypatch.setenv("KAPPA_JOB__RESTART_DELAY_S", "1")
    code = cli.main(["submit", "smoke", "--bounded", "--wait", "--timeout", "300", "--output-suffix", "_fails",
                     "--set", f"smoke_topic={topic}"])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    job_id = out.split("job id ", 1)[1].split()[0]
    assert "job smoke: FAILED" in out
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: job smoke ({job_id}) ended FAILED: "), err
    assert "no exception recorded" not in last and "json" in last.lower(), last
    assert jobrunner.job_state(migrated, job_id) == "FAILED"


def test_flink_refuses_jar_uploads(stack: Config) -> None:
    """web.submit.enable is false: no jar can be uploaded or run through the REST API (kappa submit
    uses `flink run`, which sends a job graph)."""
    jar = {"jarfile": ("evil.jar", b"PK\x05\x06" + bytes(18), "application/x-java-archive")}
    upload = requests.post(f"{stack.flink.rest_url}/jars/upload", files=jar, timeout=10)
    assert upload.status_code == 400 and "not allowed" in upload.text, (upload.status_code, upload.text[:200])
    listing = requests.get(f"{stack.flink.rest_url}/jars", timeout=10)
    assert listing.status_code != 200 or "evil.jar" not in listing.text, listing.text[:200]
    assert requests.get(f"{stack.flink.rest_url}/config", timeout=10).json()["features"]["web-submit"] is False
