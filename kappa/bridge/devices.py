"""Which devices may send: the registry's active devices, cached and refreshed off the message path
(`refresh_if_due`, called every second by the bridge's status thread, reloads every `refresh_s`: a
reload opens a PostgreSQL connection, 10-300 ms, which stalled every message behind it when it ran
on the worker), and on the message path when an id is missing.

A miss is final only if the set was read after the message arrived. A device is registered before
the broker lets it connect, so before any of its messages exists: a read that started after a
message arrived sees its device if the device is active. A miss against an older read waits until
`miss_refresh_s` after that read (so a flood of unknown ids costs at most one read per interval) and
reads again. Rejecting against the older read would dead-letter a device registered a moment ago.

A registry that cannot be read keeps the last known set; before the first successful read the bridge
waits (rejecting a whole fleet as UNKNOWN_DEVICE because the database blinked would be data loss).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kappa.config import Config

log = logging.getLogger("kappa.bridge")

Loader = Callable[[], set[str]]


class DirectoryUnavailable(Exception):
    """The device registry has never been read successfully: retry, do not reject."""


def registry_loader(config: Config) -> Loader:
    """Reads `kappa.devices.store.active_device_ids` through a short-lived connection each time."""

    def load() -> set[str]:
        from kappa.devices.store import active_device_ids  # the registry's own query
        from kappa.stack.postgres import connect

        with connect(config, role="bridge") as conn:  # SELECT on devices only (kappa/pg_security.py)
            return set(active_device_ids(conn))

    return load


class DeviceDirectory:
    def __init__(self, loader: Loader, refresh_s: float = 5.0, miss_refresh_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._loader = loader
        self._refresh_s = refresh_s
        self._miss_refresh_s = miss_refresh_s
        self._clock = clock
        self._sleep = sleep
        self._active: set[str] | None = None
        self._loaded_at = float("-inf")
        self._reloading = threading.Lock()  # the status thread and the worker never load twice at once

    def _reload(self) -> None:
        with self._reloading:
            self._loaded_at = self._clock()
            try:
                self._active = self._loader()
            except Exception as exc:  # noqa: BLE001 - any failure: keep what we had
                log.warning("device registry not readable (%s); %s", exc,
                            "keeping the last known devices" if self._active is not None else "waiting")

    def refresh_if_due(self) -> None:
        """Reload when the set is older than `refresh_s` (or was never read)."""
        if self._active is None or self._clock() - self._loaded_at >= self._refresh_s:
            self._reload()

    def is_active(self, device_id: str, received_at: float | None = None) -> bool:
        """True for an active registered device, judged by a read that started after `received_at` (the
        message's arrival on this clock; None: now); raises DirectoryUnavailable before the first read."""
        if self._active is None:
            self._reload()
        if self._active is None:
            raise DirectoryUnavailable("the device registry has not been read yet")
        if device_id in self._active:
            return True
        arrived = self._clock() if received_at is None else received_at
        if self._loaded_at > arrived:
            return False  # read after the message arrived: the device is not active
        wait = self._loaded_at + self._miss_refresh_s - self._clock()
        if wait > 0:
            self._sleep(wait)
        if self._loaded_at <= arrived:  # the status thread may have read meanwhile
            self._reload()
        return device_id in (self._active or set())
