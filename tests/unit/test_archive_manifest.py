"""Pure parts of the archive manifest and compaction: names, Hive hours, the closed-partition rule,
which files are merged together, which unregistered objects are orphans."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kappa import archive_manifest as m

pytestmark = pytest.mark.unit

HIVE = "event_date=2026-01-01/hour=03/device_type=thermo"


def _file(key: str, size: int = 10, partition: str = HIVE, topic: str = "t", state: str = "live") -> m.ArchiveFile:
    return m.ArchiveFile(f"p/{partition}/{key}", "p", partition, topic, row_count=1, byte_count=size, state=state)


def test_compact_name_depends_only_on_the_set_of_inputs() -> None:
    name = m.compact_name(["a/part-p0-o1.parquet", "a/part-p1-o5.parquet"])
    assert name == m.compact_name(("a/part-p1-o5.parquet", "a/part-p0-o1.parquet"))
    assert name != m.compact_name(["a/part-p0-o1.parquet"])
    assert name.startswith("compact-") and name.endswith(".parquet") and len(name) == len("compact-.parquet") + 16
    assert m.COMPACT_NAME.search(f"p/{HIVE}/{name}")


def test_partition_hour_reads_the_date_and_hour_parts() -> None:
    assert m.partition_hour(HIVE) == datetime(2026, 1, 1, 3, tzinfo=UTC)
    assert m.partition_hour("window_date=2026-02-28/hour=23") == datetime(2026, 2, 28, 23, tzinfo=UTC)
    assert m.partition_hour("device_type=thermo") is None
    assert m.hive_partition("2026-01-01", 3, "device_type=thermo") == HIVE


def test_an_hour_is_closed_min_age_hours_after_it_ended() -> None:
    # hour 03:00-04:00 with 2 h minimum age: closed from 06:00 on
    assert not m.is_closed(HIVE, datetime(2026, 1, 1, 5, 59, tzinfo=UTC), 2)
    assert m.is_closed(HIVE, datetime(2026, 1, 1, 6, 0, tzinfo=UTC), 2)
    assert not m.is_closed(HIVE, datetime(2026, 1, 1, 3, 59, tzinfo=UTC), 0)
    assert m.is_closed(HIVE, datetime(2026, 1, 1, 4, 0, tzinfo=UTC), 0)
    assert not m.is_closed("device_type=thermo", datetime(2030, 1, 1, tzinfo=UTC), 0)


def test_the_closing_clock_is_the_newest_event_time_capped_at_now() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert m.closing_reference(None, now) == now
    assert m.closing_reference(datetime(2026, 1, 1, 7), now) == datetime(2026, 1, 1, 7, tzinfo=UTC)  # naive = UTC
    assert m.closing_reference(datetime(2099, 1, 1, tzinfo=UTC), now) == now


def test_plan_merges_small_live_files_of_closed_partitions_only() -> None:
    reference = datetime(2026, 1, 1, 8, tzinfo=UTC)
    open_hive = "event_date=2026-01-01/hour=07/device_type=thermo"
    other = "event_date=2026-01-01/hour=03/device_type=humid"
    files = [_file("part-p0-o0.parquet"), _file("part-p1-o0.parquet"), _file("big.parquet", size=1000),
             _file("gone.parquet", state="replaced"),
             _file("part-p0-o0.parquet", partition=open_hive), _file("part-p1-o0.parquet", partition=open_hive),
             _file("part-p0-o0.parquet", partition=other),  # alone: nothing to merge
             _file("part-p2-o0.parquet", topic="u")]  # another topic: not merged with t's files
    groups = m.plan_compaction(files, reference, 2, target_bytes=100)
    assert [[f.object_key.rsplit("/", 1)[1] for f in g] for g in groups] == [["part-p0-o0.parquet",
                                                                              "part-p1-o0.parquet"]]


def test_plan_cuts_a_partition_into_runs_below_the_target() -> None:
    files = [_file(f"part-p0-o{i}.parquet", size=40) for i in range(5)]
    groups = m.plan_compaction(files, datetime(2027, 1, 1, tzinfo=UTC), 2, target_bytes=100)
    assert [len(g) for g in groups] == [2, 2]  # the fifth file is a run of one: left alone


def test_orphans_are_unregistered_merged_objects_and_writer_objects_below_the_commit() -> None:
    listed = [f"p/{HIVE}/part-p0-o{0:020d}.parquet", f"p/{HIVE}/part-p0-o{60:020d}.parquet",
              f"p/{HIVE}/part-p1-o{0:020d}.parquet", f"p/{HIVE}/{m.compact_name(['x'])}",
              f"p/{HIVE}/{m.compact_name(['y'])}", f"p/{HIVE}/notes.parquet"]
    registered = {listed[4]}
    committed = {0: 60, 1: 0}
    assert m.orphans(listed, registered, committed) == [listed[0], listed[3]]
    # offset 60 may be the writer's batch in flight; partition 1 has committed nothing
    assert m.orphans(listed, registered, None) == [listed[3]]
