"""The Parquet archive on the real stack (Kafka, registry, SeaweedFS S3, PostgreSQL for offsets):
every decodable record exactly once, also when the writer is killed with SIGKILL mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest

from kappa.archive import ArchiveWriter, duckdb_connection
from kappa.config import Config
from kappa.simulate import Category, Manifest, SimulationSpec, simulate

pytestmark = pytest.mark.integration


def _produce(config: Config, devices: int, readings: int) -> tuple[str, Manifest]:
    topic = f"archive-{uuid.uuid4().hex[:8]}"
    spec = SimulationSpec(devices=devices, readings_per_device=readings, seed=9, topic=topic, malformed=2,
                          v1_fraction=0.3, out_of_order=0.05)
    return topic, simulate(config, spec, produce=True, log=lambda _: None)


def _assert_archive_exact(config: Config, prefix: str, manifest: Manifest) -> None:
    conn = duckdb_connection(config, prefix)
    rows = conn.execute("SELECT device_id, seq, event_date, signal_rssi_dbm, schema_id FROM telemetry").fetchall()
    by_key = Counter((device, seq) for device, seq, *_ in rows)
    assert max(by_key.values()) == 1, f"duplicates: {[k for k, n in by_key.items() if n > 1][:5]}"
    produced = [r for r in manifest.records if r.category != Category.MALFORMED]
    assert set(by_key) == {(r.device_id, r.seq) for r in produced}
    assert Counter(d for d, *_ in rows) == Counter(r.device_id for r in produced)
    v1_id = manifest.data["schema_ids"]["v1"]
    v1_rows = [row for row in rows if row[4] == v1_id]
    assert v1_rows and all(row[3] is None for row in v1_rows), "v1 rows read with the v2 columns as NULL"


def test_archive_holds_every_decodable_record_once(stack: Config) -> None:
    from kappa.db import migrate
    from kappa.stack.postgres import connect

    with connect(stack) as conn:
        migrate(conn)
    topic, manifest = _produce(stack, devices=6, readings=50)
    prefix = f"test-{topic}"
    writer = ArchiveWriter(stack, topic, batch_records=97, prefix=prefix)
    try:
        writer.run(once=True)
        assert all(status.lag == 0 for status in writer.status())
        writer.run(once=True)  # nothing new: nothing rewritten, nothing added
    finally:
        writer.close()
    _assert_archive_exact(stack, prefix, manifest)


def test_archive_writer_killed_repeatedly_still_exactly_once(stack: Config) -> None:
    from kappa.db import migrate
    from kappa.stack.postgres import connect

    with connect(stack) as conn:
        migrate(conn)
    topic, manifest = _produce(stack, devices=10, readings=150)
    prefix = f"test-{topic}"
    argv = [sys.executable, "-m", "kappa.cli", "archive", "run", "--topic", topic, "--batch", "60",
            "--prefix", prefix]
    env = dict(os.environ, KAPPA_PROFILE=stack.profile)
    kills = 0
    for delay in (2.5, 3.5, 4.5):
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    assert kills >= 2, "the writer finished before it could be killed: use more data"
    final = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-2000:]
    _assert_archive_exact(stack, prefix, manifest)
