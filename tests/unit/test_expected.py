"""kappa.expected, the Python twin the job is checked against: the device windows' metadata columns
(site, type and model of the window's first reading by event time, sql/aggregates/windows.sql)."""

from __future__ import annotations

import pytest

from kappa import expected
from kappa.expected import Reading

pytestmark = pytest.mark.unit

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC, a minute boundary


def _reading(seq: int, offset_ms: int, site: str = "s1", model: str | None = "M-1", kind: str = "thermal",
             device: str = "d1") -> Reading:
    return Reading(device, site, kind, seq, T0 + offset_ms, {"temperature_c": float(seq)}, model)


def test_window_carries_the_model_of_its_first_reading_by_event_time_not_arrival() -> None:
    # arrival order: the later reading first; a move at 30 s gave a new site and model
    windows = expected.device_windows_1m([_reading(2, 40_000, "s2", "M-2"), _reading(1, 10_000, "s1", "M-1"),
                                          _reading(3, 70_000, "s2", "M-2")])
    assert [(w["site_id"], w["device_model"], w["reading_count"]) for _, w in sorted(windows.items())] == [
        ("s1", "M-1", 2), ("s2", "M-2", 1)]


def test_no_model_on_the_first_reading_gives_none_even_if_later_readings_have_one() -> None:
    """A device registered mid-minute: its earlier readings have no version (the site they sent, no
    model); the window carries the first reading's metadata, all of it from one reading."""
    windows = expected.device_windows_1m([_reading(1, 5_000, "sent", None), _reading(2, 50_000, "reg", "M-1")])
    (window,) = windows.values()
    assert (window["site_id"], window["device_model"]) == ("sent", None)


def test_model_none_in_every_reading_and_an_empty_model_kept() -> None:
    windows = expected.device_windows_1m([
        _reading(1, 1_000, model=None), _reading(2, 2_000, model=None),
        _reading(3, 61_000, model=""), _reading(4, 62_000, model="M-9")])
    assert [w["device_model"] for _, w in sorted(windows.items())] == [None, ""]


def test_tie_on_event_time_no_model_first_as_the_sql_encoding() -> None:
    """'<ms>-' sorts before '<ms>=<model>' in windows.sql; readings of one event time join one version,
    so this only fixes the rule, as FIRST_BY_TIME's ties are."""
    windows = expected.device_windows_1m([_reading(1, 9_000, model="M-1"), _reading(2, 9_000, model=None)])
    assert next(iter(windows.values()))["device_model"] is None
    windows = expected.device_windows_1m([_reading(1, 9_000, model="M-2"), _reading(2, 9_000, model="M-1")])
    assert next(iter(windows.values()))["device_model"] == "M-1"


def test_resent_copies_do_not_change_the_model() -> None:
    first, later = _reading(1, 10_000, model="M-1"), _reading(2, 20_000, model="M-2")
    copy = Reading("d1", "s9", "thermal", 1, T0 + 1_000, {}, "M-0")  # same (device, seq): dropped
    windows = expected.device_windows_1m([first, later, copy])
    (window,) = windows.values()
    assert (window["device_model"], window["reading_count"]) == ("M-1", 2)


def test_reading_without_model_argument_defaults_to_none() -> None:
    reading = Reading("d1", "s1", "thermal", 1, T0, {})
    assert expected.device_windows_1m([reading])[("d1", T0)]["device_model"] is None
