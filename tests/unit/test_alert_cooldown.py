"""The cool-down decision (udfs/alert_cooldown.py) without Flink."""

from __future__ import annotations

from datetime import datetime

import pytest

from udfs.alert_cooldown import Raised, _epoch_ms, decide

pytestmark = pytest.mark.unit

COOLDOWN_S = 300


def run(matches: list[tuple[int, int]], cooldown_s: int = COOLDOWN_S) -> list[tuple[int, int]]:
    """The (first s, last s) matches of one device and type that become alerts, in order."""
    state: Raised | None = None
    raised = []
    for first, last in matches:
        keep, state = decide(state, first * 1000, last * 1000, cooldown_s)
        if keep:
            raised.append((first, last))
    return raised


def test_a_repeat_inside_the_cool_down_is_suppressed() -> None:
    assert run([(50, 70), (120, 140), (400, 420)]) == [(50, 70), (400, 420)]


def test_the_cool_down_runs_from_the_raised_alert_not_from_suppressed_repeats() -> None:
    # 120 and 300 are both inside 70 + 300; 380 is not, although it is within 300 s of the repeat at 300
    assert run([(50, 70), (120, 140), (300, 320), (380, 400)]) == [(50, 70), (380, 400)]


def test_two_matches_across_a_clock_boundary_are_still_one_alert() -> None:
    assert run([(299, 310), (301, 320)]) == [(299, 310)]


def test_exactly_at_the_end_of_the_cool_down_alerts_again() -> None:
    assert run([(0, 20), (320, 340)]) == [(0, 20), (320, 340)]


def test_zero_cool_down_alerts_every_match() -> None:
    assert run([(0, 20), (21, 30), (31, 40)], cooldown_s=0) == [(0, 20), (21, 30), (31, 40)]


def test_an_update_of_the_raised_alert_passes() -> None:
    # DEVICE_SILENT: open (last = deadline), then resolved (same first reading, later last)
    assert run([(100, 280), (100, 400), (450, 630)]) == [(100, 280), (100, 400)]


def test_epoch_ms_of_a_naive_utc_timestamp() -> None:
    assert _epoch_ms(datetime(2026, 3, 2, 8, 0, 1, 123000)) == 1772438401123
