"""The project's one way to wait: poll a condition until it holds or a deadline passes.

Every wait in kappa/ goes through `wait_until` (a condition polled at an interval, with a message
naming what was awaited when time runs out) or, for loops that do their own blocking poll (a Kafka
consumer's `poll(timeout)`), through a `Deadline` that says how much time is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from kappa.errors import KappaError

T = TypeVar("T")


class WaitTimeout(KappaError):
    """What was awaited did not happen in time; the message names it and the last error seen."""


class Deadline:
    """A point in monotonic time `timeout_s` from now."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._end = time.monotonic() + timeout_s

    @property
    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self._end


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.5,
    retry_on: tuple[type[Exception], ...] = (),
    on_timeout: Callable[[Exception | None], Exception] | None = None,
) -> T:
    """Call `check` every `interval_s` until it returns something truthy (not None, False, 0), and return that.

    An exception listed in `retry_on` means "not yet" (the last one is named if time runs out); any
    other exception ends the wait at once, so a check can fail fast on a state that cannot recover.
    When `timeout_s` passes, `on_timeout(last_error)` gives the exception to raise; by default a
    `WaitTimeout` naming `what`.
    """
    deadline = Deadline(timeout_s)
    last_error: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except retry_on as exc:
            last_error = exc
        if deadline.passed:
            if on_timeout is not None:
                raise on_timeout(last_error)
            detail = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            raise WaitTimeout(f"timed out after {timeout_s:.0f}s waiting for {what}{detail}")
        time.sleep(min(interval_s, deadline.remaining))
