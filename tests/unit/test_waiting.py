"""The one wait helper: returns the check's value, retries only what it is told to, names what timed out."""

from collections.abc import Iterator

import pytest

from kappa.waiting import Deadline, WaitTimeout, wait_until

pytestmark = pytest.mark.unit


def answers(*values: object) -> Iterator[object]:
    yield from values
    while True:
        yield None


def test_returns_the_first_truthy_value_of_the_check() -> None:
    seen = answers(None, 0, {"state": "RUNNING"})
    assert wait_until(lambda: next(seen), timeout_s=60, interval_s=0, what="x") == {"state": "RUNNING"}


def test_listed_exceptions_mean_not_yet_and_are_named_when_time_runs_out() -> None:
    calls: list[int] = []

    def refused() -> bool:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError("not yet")
        return True

    assert wait_until(refused, timeout_s=60, interval_s=0, what="x", retry_on=(ConnectionError,))
    assert len(calls) == 3

    def always_refused() -> bool:
        raise ConnectionRefusedError("port closed")

    with pytest.raises(WaitTimeout, match=r"waiting for the broker \(last error: ConnectionRefusedError: port closed"):
        wait_until(always_refused, timeout_s=0, what="the broker", retry_on=(ConnectionError,))


def test_other_exceptions_end_the_wait_at_once_and_on_timeout_chooses_the_error() -> None:
    calls: list[int] = []

    def fails() -> bool:
        calls.append(1)
        raise ValueError("job FAILED")

    with pytest.raises(ValueError, match="job FAILED"):
        wait_until(fails, timeout_s=60, interval_s=0, what="x", retry_on=(ConnectionError,))
    assert len(calls) == 1
    with pytest.raises(LookupError, match="still RUNNING"):
        wait_until(lambda: False, timeout_s=0, what="x", on_timeout=lambda last: LookupError("still RUNNING"))


def test_a_deadline_of_zero_has_passed_and_leaves_nothing() -> None:
    deadline = Deadline(0)
    assert deadline.passed and deadline.remaining == 0.0
    assert not Deadline(3600).passed
