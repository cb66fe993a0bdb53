"""In-order acknowledgement: a PUBACK leaves only once Kafka confirmed that message and every
message that arrived before it, so acks reach the broker in arrival order.

Kafka's delivery reports can come back out of order (different partitions, retries); releasing only
the confirmed prefix keeps the rule "acked => in Kafka" true for every message the broker forgets.
Entries carry the MQTT connection they arrived on: after a reconnect the broker re-sends what was not
acked, possibly reusing packet ids, so an ack from an older connection must never be sent.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Entry(Generic[T]):
    token: T
    arrived_at: float
    done: bool = False


@dataclass
class AckTracker(Generic[T]):
    """Arrival-ordered slots; `done(slot)` marks one confirmed, `release()` pops the confirmed prefix."""

    _entries: deque[_Entry[T]] = field(default_factory=deque)
    _first: int = 0  # slot number of _entries[0]
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arrived(self, token: T) -> int:
        """Record a message in arrival order; returns its slot for `done`."""
        with self._lock:
            self._entries.append(_Entry(token, time.monotonic()))
            return self._first + len(self._entries) - 1

    def done(self, slot: int) -> None:
        """Kafka confirmed the message of `slot` (a slot already released or reset is ignored)."""
        with self._lock:
            index = slot - self._first
            if 0 <= index < len(self._entries):
                self._entries[index].done = True

    def release(self) -> list[T]:
        """The tokens of the longest confirmed prefix, in arrival order, removed from the tracker."""
        released: list[T] = []
        with self._lock:
            while self._entries and self._entries[0].done:
                released.append(self._entries.popleft().token)
                self._first += 1
        return released

    def reset(self) -> int:
        """Forget every pending slot (the connection they arrived on is gone); returns how many."""
        with self._lock:
            count = len(self._entries)
            self._first += count
            self._entries.clear()
            return count

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._entries)

    def oldest_age_s(self) -> float:
        """Seconds the oldest unacknowledged message has waited (0 when none)."""
        with self._lock:
            return time.monotonic() - self._entries[0].arrived_at if self._entries else 0.0
