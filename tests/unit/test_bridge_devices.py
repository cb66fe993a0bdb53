"""The bridge's view of the device registry: a device registered a moment ago is accepted, a miss is
final only against a read that started after the message arrived, and unknown ids cost at most one
read per interval."""

from __future__ import annotations

import pytest

from kappa.bridge.devices import DeviceDirectory

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def directory(registry: set[str], clock: Clock, reads: list[float]) -> DeviceDirectory:
    def load() -> set[str]:
        reads.append(clock.now)
        return set(registry)

    return DeviceDirectory(load, refresh_s=5.0, miss_refresh_s=1.0, clock=clock, sleep=clock.sleep)


def test_a_device_registered_just_after_the_last_read_is_accepted() -> None:
    clock, registry, reads = Clock(), {"a"}, []
    devices = directory(registry, clock, reads)
    assert devices.is_active("a", received_at=clock.now)
    clock.now += 0.2
    registry.add("b")  # registered (and so able to connect) after the last read
    clock.now += 0.1
    assert devices.is_active("b", received_at=clock.now)  # was rejected before: the read was < 1 s old
    assert reads == [100.0, 101.0]  # the second read waited for the interval, then saw it


def test_a_miss_against_a_read_newer_than_the_message_is_final_and_costs_nothing() -> None:
    clock, reads = Clock(), []
    devices = directory({"a"}, clock, reads)
    assert devices.is_active("a", received_at=clock.now)
    clock.now += 0.5
    assert not devices.is_active("gone", received_at=clock.now)  # arrived after the read: read again
    assert reads == [100.0, 101.0]
    for _ in range(100):  # a backlog of messages from an unknown device that arrived before that read
        assert not devices.is_active("gone", received_at=100.9)
    assert reads == [100.0, 101.0]
