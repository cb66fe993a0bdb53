"""The Iceberg archive's maintenance, without services: what `kappa lake status` and `expire` compute."""

from datetime import UTC, datetime

import pytest

from kappa import lake, lake_maintenance
from kappa.lake_maintenance import LakeMaintenanceError, PartitionFiles

pytestmark = pytest.mark.unit


def test_a_day_partition_reads_as_a_date() -> None:
    assert lake_maintenance.partition_label({"event_time_day": 20424, "device_type": "meter"}) \
        == "event_time_day=2025-12-02/device_type=meter"
    assert lake_maintenance.partition_label({}) == "(unpartitioned)"


def test_files_are_summed_per_partition_with_deletes_apart() -> None:
    def row(content: int, day: int, kind: str, records: int, size: int) -> dict[str, object]:
        return {"content": content, "partition": {"window_start_day": day, "device_type": kind},
                "record_count": records, "file_size_in_bytes": size}

    files = [row(0, 1, "meter", 10, 100), row(0, 1, "meter", 5, 50), row(2, 1, "meter", 3, 20),
             row(0, 0, "sensor", 7, 70)]
    assert lake_maintenance.summarize(files) == [
        PartitionFiles("window_start_day=1970-01-01/device_type=sensor", 1, 0, 7, 70),
        PartitionFiles("window_start_day=1970-01-02/device_type=meter", 2, 1, 15, 170),
    ]


def test_the_expiry_cutoff_is_max_age_before_now() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert lake_maintenance.expiry_cutoff(now, 24) == int(datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp() * 1000)
    assert lake_maintenance.expiry_cutoff(now, 0) == int(now.timestamp() * 1000)


def test_tables_are_named_or_all() -> None:
    assert lake_maintenance.tables() == (lake.TELEMETRY, lake.DEVICE_AGG_1M, lake.DEAD_LETTERS)
    assert lake_maintenance.tables(["device_agg_1m"]) == (lake.DEVICE_AGG_1M,)
    with pytest.raises(LakeMaintenanceError, match="no archive table windows"):
        lake_maintenance.tables(["windows"])
