"""The Parquet archive on the real stack (Kafka, registry, SeaweedFS S3, PostgreSQL for offsets and the
manifest): every decodable record exactly once, also when the writer is killed with SIGKILL mid-run,
and through compaction, also when the compactor is killed with SIGKILL at any step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from pyarrow import fs as pafs

from kappa import archive_manifest
from kappa.archive import ArchiveWriter, duckdb_connection
from kappa.archive_compact import PAUSE_ENV, Compactor
from kappa.archive_manifest import ArchiveError, ArchiveFile
from kappa.config import Config
from kappa.simulate import Category, Manifest, SimulationSpec, simulate
from kappa.stack.objectstore import s3_filesystem
from kappa.stack.postgres import connect

pytestmark = pytest.mark.integration


def _produce(config: Config, devices: int, readings: int, interval_s: float = 10.0) -> tuple[str, Manifest]:
    topic = f"archive-{uuid.uuid4().hex[:8]}"
    spec = SimulationSpec(devices=devices, readings_per_device=readings, seed=9, topic=topic, malformed=2,
                          v1_fraction=0.3, out_of_order=0.05, interval_s=interval_s)
    return topic, simulate(config, spec, produce=True, log=lambda _: None)


def _archive(config: Config, topic: str, prefix: str, batch: int) -> None:
    writer = ArchiveWriter(config, topic, batch_records=batch, prefix=prefix)
    try:
        writer.run(once=True)
    finally:
        writer.close()


def _files(config: Config, prefix: str, state: str | None = "live") -> list[ArchiveFile]:
    with connect(config) as conn:
        return archive_manifest.files(conn, prefix, state)


def _objects(config: Config, prefix: str) -> set[str]:
    """Keys of the objects under the prefix in S3 (a listing, not the manifest)."""
    selector = pafs.FileSelector(f"{config.s3.bucket}/{prefix}", recursive=True, allow_not_found=True)
    infos = s3_filesystem(config).get_file_info(selector)
    return {i.path[len(config.s3.bucket) + 1:] for i in infos if i.type == pafs.FileType.File}


def _closed(file: ArchiveFile, newest: datetime, min_age_hours: float = 2.0) -> bool:
    return archive_manifest.is_closed(file.hive_partition, newest.replace(tzinfo=UTC), min_age_hours)


def _assert_compacted(config: Config, prefix: str, before: list[ArchiveFile]) -> None:
    """One live file per closed partition, open partitions untouched, nothing else left in S3."""
    after = _files(config, prefix)
    newest = max(f.max_event_time for f in before if f.max_event_time)
    closed_after = Counter(f.hive_partition for f in after if _closed(f, newest))
    assert closed_after and set(closed_after.values()) == {1}, closed_after
    assert set(closed_after) == {f.hive_partition for f in before if _closed(f, newest)}
    assert {f.object_key for f in after if not _closed(f, newest)} == {
        f.object_key for f in before if not _closed(f, newest)}
    assert _files(config, prefix, state="replaced") == []
    assert _objects(config, prefix) == {f.object_key for f in after}, "replaced or orphan objects left in S3"


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
        migrate(conn, config=stack)
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
        migrate(conn, config=stack)
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


def test_compaction_merges_closed_partitions_and_keeps_every_record_once(stack: Config) -> None:
    from kappa.db import migrate

    with connect(stack) as conn:
        migrate(conn, config=stack)
    with pytest.raises(ArchiveError, match="no live files"):
        duckdb_connection(stack, f"test-empty-{uuid.uuid4().hex[:6]}")
    topic, manifest = _produce(stack, devices=6, readings=50, interval_s=600)  # 50 readings over ~8 hours
    prefix = f"test-{topic}"
    _archive(stack, topic, prefix, batch=20)
    before = _files(stack, prefix)
    assert len(before) > 2 * len({f.hive_partition for f in before}), "want many small files per partition"
    _assert_archive_exact(stack, prefix, manifest)

    lines: list[str] = []
    result = Compactor(stack, prefix, progress=lines.append).run()
    assert result.groups > 0 and result.merged_files > result.groups
    assert any("[1/" in line for line in lines), lines
    _assert_compacted(stack, prefix, before)
    _assert_archive_exact(stack, prefix, manifest)
    merged = [f for f in _files(stack, prefix) if f.inputs]
    assert all(f.row_count == sum(b.row_count for b in before if b.object_key in (f.inputs or ())) for f in merged)

    again = Compactor(stack, prefix).run()  # nothing left to merge
    assert (again.groups, again.deleted_replaced, again.deleted_orphans) == (0, 0, 0)


def test_compaction_killed_repeatedly_still_exactly_once(stack: Config) -> None:
    from kappa.db import migrate

    with connect(stack) as conn:
        migrate(conn, config=stack)
    topic, manifest = _produce(stack, devices=6, readings=50, interval_s=600)
    prefix = f"test-{topic}"
    _archive(stack, topic, prefix, batch=20)
    before = _files(stack, prefix)
    argv = [sys.executable, "-m", "kappa.cli", "archive", "compact", "--topic", topic, "--prefix", prefix]
    env = dict(os.environ, KAPPA_PROFILE=stack.profile, **{PAUSE_ENV: "0.7"})
    kills, progressed = 0, 0
    for delay in (4.0, 6.0, 8.0, 10.0):
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        _, err = process.communicate()
        progressed += "[1/" in err
        _assert_archive_exact(stack, prefix, manifest)  # readers see every record once after each crash
    assert kills >= 3, "the compaction finished before it could be killed: raise the pause"
    assert progressed >= 2, "the compactor was killed before it merged anything: raise the delays"
    final = subprocess.run(argv, env=dict(os.environ, KAPPA_PROFILE=stack.profile), capture_output=True, text=True,
                           timeout=300)
    assert final.returncode == 0, final.stderr[-2000:]
    _assert_compacted(stack, prefix, before)
    _assert_archive_exact(stack, prefix, manifest)


def test_compaction_interrupted_before_and_after_its_commit_recovers(stack: Config,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Both crash windows on purpose: the merged object written but not registered, then registered
    with its inputs not yet deleted; readers see every record once in each, the next run cleans up."""
    from kappa import archive_compact
    from kappa.db import migrate

    with connect(stack) as conn:
        migrate(conn, config=stack)
    topic, manifest = _produce(stack, devices=4, readings=40, interval_s=600)
    prefix = f"test-{topic}"
    _archive(stack, topic, prefix, batch=15)
    before = _files(stack, prefix)

    class Crash(Exception):
        pass

    def crash(*_: object) -> None:
        raise Crash

    with monkeypatch.context() as patch:  # 1: crash just before the PostgreSQL commit
        patch.setattr(archive_compact.manifest, "commit_compaction", crash)
        with pytest.raises(Crash):
            Compactor(stack, prefix).run()
    assert {f.object_key for f in _files(stack, prefix)} == {f.object_key for f in before}
    orphans = _objects(stack, prefix) - {f.object_key for f in before}
    assert len(orphans) == 1 and archive_manifest.COMPACT_NAME.search(orphans.pop())
    _assert_archive_exact(stack, prefix, manifest)

    with monkeypatch.context() as patch:  # 2: crash just after it, before deleting the inputs
        patch.setattr(Compactor, "_delete", crash)
        with pytest.raises(Crash):
            Compactor(stack, prefix).run()
    replaced = _files(stack, prefix, state="replaced")
    assert replaced and {f.object_key for f in replaced} <= _objects(stack, prefix)
    _assert_archive_exact(stack, prefix, manifest)

    result = Compactor(stack, prefix).run()
    assert result.deleted_replaced == len(replaced) and result.deleted_orphans == 0  # run 2 removed the orphan
    _assert_compacted(stack, prefix, before)
    _assert_archive_exact(stack, prefix, manifest)


def test_archive_of_the_aggregates_topic_matches_the_aggregate_table(migrated: Config) -> None:
    """The aggregation job run bounded, its exactly-once Avro upsert topic archived: every 1-minute window
    of device_agg_1m<suffix> once in the archive's view (its last version), with the same reading count
    and device model (v2 records; one device has a registry version with a model, the others none)."""
    from kappa import jobrunner, outputs
    from kappa.archive_datasets import AGGREGATES
    from kappa.devices import versions
    from kappa.devices.model import Device
    from kappa.flinkenv import JobOptions
    from tests.integration.aggregate_support import prepare

    topic, suffix, manifest = prepare(migrated, "archive")
    devices_topic = f"device-metadata{suffix.replace('_', '-')}"
    first = min((r for r in manifest.records if r.row is not None), key=lambda r: r.device_id)
    assert first.row is not None
    own = migrated.model_copy(update={"kafka": migrated.kafka.model_copy(update={"devices_topic": devices_topic})})
    versions.publish(own, [(Device(first.device_id, first.row["site_id"], first.row["device_type"], model="M-A"), 0)])
    options = JobOptions(bounded=True, output_suffix=suffix,
                         extra={"telemetry_topic": topic, "devices_topic": devices_topic})
    jobrunner.run_local(migrated, "aggregate", options, wait=True)
    source = f"{migrated.kafka.aggregates_topic}{suffix}"
    prefix = f"test-{source}"
    writer = ArchiveWriter(migrated, source, batch_records=25, prefix=prefix, dataset=AGGREGATES)
    try:
        archived = writer.run(once=True)
        assert all(status.lag == 0 for status in writer.status())
    finally:
        writer.close()
    with connect(migrated) as conn:
        table = outputs.device_windows(conn, suffix)
    rows = duckdb_connection(migrated, prefix, view=AGGREGATES.view).execute(
        "SELECT device_id, epoch_ms(window_start), reading_count, device_model, window_date, hour "
        "FROM aggregates_1m").fetchall()
    # every version of a window is archived (a reading within allowed lateness updates a fired window);
    # the view shows the last one of each, which is the table's row
    assert archived >= len(rows) == len(table) > 0
    assert Counter((device, start) for device, start, *_ in rows) == Counter(table.keys())
    assert all((table[(device, start)]["reading_count"], table[(device, start)]["device_model"]) == (count, model)
               for device, start, count, model, *_ in rows)
    assert {model for _, _, _, model, *_ in rows} == {"M-A", None}
    assert all(f.hive_partition.startswith("window_date=") for f in _files(migrated, prefix))
