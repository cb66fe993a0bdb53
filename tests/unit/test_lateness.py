"""The late rule's Python twin (kappa.expected.late_flags) and the Flink options of allowed lateness."""

from __future__ import annotations

import pytest

from kappa import expected, lateness
from kappa.config import load_config

pytestmark = pytest.mark.unit


def test_late_is_decided_per_partition_in_offset_order() -> None:
    # (partition, offset, event ms); late after 100 ms behind the partition's newest
    records = [(0, 1, 1_000), (1, 0, 5_000), (0, 0, 900), (0, 2, 900), (0, 3, 899), (1, 1, 1_000), (0, 4, 2_000)]
    # p0 in offset order: 900, 1000, 900 (100 behind: late, at the bound), 899 (late), 2000
    # p1: 5000, 1000 (late); the other partition's times never count
    assert expected.late_flags(records, 100) == [False, False, False, True, True, True, False]


def test_the_same_offsets_give_the_same_flags_in_any_read_order() -> None:
    records = [(p, o, (o * 7_919 % 1_000) * 10) for p in range(3) for o in range(50)]
    shuffled = sorted(records, key=lambda r: (r[1] * 31 + r[0] * 17) % 13)
    want = dict(zip(records, expected.late_flags(records, 2_000), strict=True))
    assert dict(zip(shuffled, expected.late_flags(shuffled, 2_000), strict=True)) == want
    assert any(want.values()) and not all(want.values())


def test_options_give_group_windows_allowed_lateness_and_state_a_ttl() -> None:
    config = load_config(profile="test")
    job = config.job.model_copy(update={"allowed_lateness_s": 7200})
    options = lateness.late_update_options(config.model_copy(update={"job": job}))
    assert options["table.exec.emit.allow-lateness"] == "7200 s"
    assert options["table.exec.emit.late-fire.enabled"] == "true"
    assert options["table.exec.emit.late-fire.delay"] == "0 s"
    assert options["table.exec.state.ttl"] == f"{7200 + 300 + config.job.watermark_delay_s} s"
    off = job.model_copy(update={"allowed_lateness_s": 0})
    none = lateness.late_update_options(config.model_copy(update={"job": off}))
    assert set(none) == {"table.exec.state.ttl"}, "no allowed lateness: windows fire once"
