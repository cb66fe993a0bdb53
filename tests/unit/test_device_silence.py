"""The DEVICE_SILENT decision (udfs/device_silence.py) without Flink: a small driver plays Flink's
part (timers fire in timestamp order once the watermark passes them) over hand-written arrivals."""

from __future__ import annotations

import heapq

import pytest

from udfs.device_silence import MAX_WATERMARK, DeviceClock, Seen, Silence, on_reading, on_timer

pytestmark = pytest.mark.unit

S = 180  # silent_after_s
DEVICE = "d-1"


def seen(at_s: float, silent_after_s: int = S) -> Seen:
    return Seen(int(at_s * 1000), "site-1", silent_after_s, "rules-v1", 300)


class Driver:
    """Feeds readings and watermarks to one device's clock the way a keyed operator would."""

    def __init__(self) -> None:
        self.clock = DeviceClock()
        self.timers: list[int] = []
        self.watermark = -(2**63)
        self.alerts: list[Silence] = []

    def _register(self, timers: list[int]) -> None:
        for timer in timers:
            if timer not in self.timers:  # Flink keeps one timer per timestamp and key
                heapq.heappush(self.timers, timer)

    def reading(self, item: Seen) -> None:
        assert item.event_ms > self.watermark, "the job routes late readings away before this function"
        self._register(on_reading(self.clock, item))

    def advance(self, watermark: int) -> None:
        self.watermark = watermark
        while self.timers and self.timers[0] <= watermark:
            timestamp = heapq.heappop(self.timers)
            alerts, timers = on_timer(self.clock, DEVICE, timestamp, watermark)
            self.alerts += alerts
            self._register(timers)

    def summary(self) -> list[tuple[int, int, bool]]:
        return [(a.first_ms // 1000, a.last_ms // 1000, a.resolved) for a in self.alerts]


def test_regular_readings_raise_nothing() -> None:
    driver = Driver()
    for k in range(20):
        driver.reading(seen(k * 60))
        driver.advance(k * 60 * 1000 - 5_000)
    driver.advance(20 * 60 * 1000 + 10 * S * 1000)
    assert driver.summary() == [(19 * 60, 19 * 60 + S, False)], "only the real silence after the last one"


def test_gap_longer_than_the_bound_raises_open_then_resolved() -> None:
    driver = Driver()
    driver.reading(seen(0))
    driver.reading(seen(10))
    driver.advance(100_000)
    assert driver.summary() == []
    driver.advance(10_000 + S * 1000)  # the deadline passes with no newer reading
    assert driver.summary() == [(10, 10 + S, False)]
    driver.reading(seen(400))
    driver.advance(500_000)
    assert driver.summary() == [(10, 10 + S, False), (10, 400, True)]
    assert {a.first_ms for a in driver.alerts} == {10_000}, "open and resolved share the first reading (one id)"


def test_gap_exactly_at_the_bound_is_not_silent() -> None:
    driver = Driver()
    driver.reading(seen(0))
    driver.reading(seen(S))  # no reading for exactly S seconds: not longer than allowed
    driver.advance(S * 1000 + 1_000)
    driver.reading(seen(S + 10))
    driver.advance(S * 1000 + 20_000)
    assert driver.summary() == []


def test_out_of_order_arrival_inside_the_watermark_delay_is_no_gap() -> None:
    driver = Driver()
    driver.reading(seen(0))
    driver.advance(-1)
    driver.reading(seen(200))  # arrives first ...
    driver.reading(seen(100))  # ... the reading in between arrives after it, still on time
    driver.advance(250_000)
    assert driver.summary() == []


def test_duplicates_are_taken_once() -> None:
    driver = Driver()
    for at in (0, 0, 60, 60, 120):
        driver.reading(seen(at))
    driver.advance(125_000)
    assert driver.clock.last == seen(120) and driver.clock.pending == {}
    assert driver.summary() == []


def test_end_of_input_is_not_evidence_of_silence() -> None:
    driver = Driver()
    driver.reading(seen(0))
    driver.reading(seen(30))
    driver.advance(MAX_WATERMARK)  # a bounded run ends: the data stopped, not the device
    assert driver.summary() == []


def test_end_of_input_still_raises_a_gap_that_a_later_reading_proves() -> None:
    driver = Driver()
    driver.reading(seen(0))
    driver.reading(seen(1000))  # both parked, then the final watermark fires everything at once
    driver.advance(MAX_WATERMARK)
    assert driver.summary() == [(0, S, False), (0, 1000, True)], "the same as when watermarks flowed"


def test_the_bound_in_force_for_the_last_reading_applies() -> None:
    driver = Driver()
    driver.reading(seen(0, silent_after_s=600))  # e.g. an operator raised this device's bound
    driver.reading(seen(400, silent_after_s=600))
    driver.advance(1_100_000)
    assert driver.summary() == [(400, 1000, False)]
    assert driver.alerts[0].silent_after_s == 600


def test_an_open_silence_is_raised_once() -> None:
    driver = Driver()
    driver.reading(seen(0))
    driver.advance(S * 1000)
    driver.advance(10 * S * 1000)
    assert driver.summary() == [(0, S, False)]


def test_a_late_fired_deadline_timer_still_gives_open_then_resolved() -> None:
    clock = DeviceClock()
    on_reading(clock, seen(0))
    on_timer(clock, DEVICE, 0, 0)  # registers the deadline timer at 180 s ...
    on_reading(clock, seen(300))
    alerts, _ = on_timer(clock, DEVICE, 300_000, 400_000)  # ... which PyFlink fires after this one
    late, _ = on_timer(clock, DEVICE, S * 1000, 400_000)
    assert [(a.first_ms, a.last_ms, a.resolved) for a in alerts] == [(0, S * 1000, False), (0, 300_000, True)]
    assert late == []


def test_a_deadline_the_watermark_already_passed_raises_at_once() -> None:
    """The watermark jumps past the last reading and its deadline in one step (a catch-up): the
    reading's own timer raises the silence, not waiting for the deadline timer it registers."""
    clock = DeviceClock()
    on_reading(clock, seen(0))
    on_reading(clock, seen(30))
    alerts, timers = on_timer(clock, DEVICE, 0, 500_000)
    assert alerts == [] and timers == [S * 1000], "the reading at 30 s is parked: it fills the gap"
    alerts, timers = on_timer(clock, DEVICE, 30_000, 500_000)
    assert [(a.first_ms, a.last_ms, a.resolved) for a in alerts] == [(30_000, 30_000 + S * 1000, False)]
    late, _ = on_timer(clock, DEVICE, 30_000 + S * 1000, MAX_WATERMARK, 500_000)
    assert late == [], "raised once"


@pytest.mark.parametrize(("seen_watermark", "raised"), [(None, False), (S * 1000 - 1, False), (S * 1000, True)])
def test_a_deadline_timer_fired_by_the_final_watermark_counts_what_the_data_proved(
        seen_watermark: int | None, raised: bool) -> None:
    """PyFlink registers a callback's timers after its bundle, so the deadline timer can fire first
    with Long.MAX: the silence stands if the data's own watermark had reached the deadline."""
    clock = DeviceClock()
    on_reading(clock, seen(0))
    on_timer(clock, DEVICE, 0, 100_000)
    alerts, _ = on_timer(clock, DEVICE, S * 1000, MAX_WATERMARK, seen_watermark)
    assert [(a.last_ms, a.resolved) for a in alerts] == ([(S * 1000, False)] if raised else [])
