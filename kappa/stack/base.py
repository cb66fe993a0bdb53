"""What every stack service provides, so `kappa stack` can start, probe and stop them uniformly."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from pathlib import Path

from kappa import waiting
from kappa.config import Config
from kappa.stack.process import ManagedProcess, ServiceError, port_in_use, wait_until


class Service(ABC):
    """A server of the local stack: its own data folder, log, PID file and loopback ports."""

    name: str = ""
    start_timeout_s: float = 90.0

    def __init__(self, config: Config) -> None:
        self.config = config

    # --- layout -------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.config.data_dir / self.name

    @property
    def log_file(self) -> Path:
        return self.config.data_dir / "logs" / f"{self.name}.log"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess(self.name, self.config.data_dir / "run", self.log_file)

    # --- what each service defines ------------------------------------------------------------
    @property
    @abstractmethod
    def host(self) -> str: ...

    @property
    @abstractmethod
    def ports(self) -> list[int]:
        """Every port this service listens on; the first is the one users talk to."""

    @property
    def enabled(self) -> bool:
        """False when the profile points at an external server the stack must not start."""
        return True

    @abstractmethod
    def _launch(self) -> None:
        """Prepare the data folder if needed and start the process(es)."""

    @abstractmethod
    def ready(self) -> bool:
        """True once the service really answers requests (not just listens)."""

    def after_ready(self) -> None:
        """One-time set-up that needs the running service (bucket, database...); none by default."""
        return None

    # --- uniform life cycle -------------------------------------------------------------------
    def running(self) -> bool:
        return self.process.pid() is not None

    def taken_ports(self) -> list[int]:
        """Ports already in use by something that is not this service."""
        if self.running():
            return []
        return [port for port in self.ports if port_in_use(self.host, port)]

    @property
    def launch_early(self) -> bool:
        """True if it needs no other service to start: `stack up` then launches it first and waits for
        it in its turn, so a slow start overlaps the others'."""
        return False

    def launch(self) -> None:
        """Start the process(es) without waiting for them to answer."""
        taken = self.taken_ports()
        if taken:
            raise ServiceError(
                f"{self.name}: port(s) {', '.join(map(str, taken))} on {self.host} already in use by "
                "another process; stop it or change the port in kappa.toml / KAPPA_* variables"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._launch()

    def start(self) -> bool:
        """Start unless already running; wait until it answers. True if it was started now."""
        if self.running():
            return False
        self.launch()
        self.wait_ready()
        self.after_ready()
        return True

    def wait_ready(self) -> None:
        wait_until(
            self.ready,
            service=self.name,
            port=self.ports[0],
            log_file=self.log_file,
            timeout_s=self.start_timeout_s,
            process=self.process,
        )

    def processes(self) -> list[ManagedProcess]:
        """Every process of this service with a PID file to look for (one by default)."""
        return [self.process]

    def stop(self) -> bool:
        """Stop every process of this service, in `processes()` order. True if something stopped."""
        return any([process.stop() for process in self.processes()])

    def kill9(self) -> bool:
        """SIGKILL every process of this service, with no shutdown: for data that is thrown away next
        (the test session's stack, a test's cluster). True if something was running."""
        killed = any([process.kill9() is not None for process in self.processes()])
        # A JVM's main thread is a zombie while its other threads still exit and hold its sockets: wait for
        # the ports (seen: `stack up` right after a kill found Flink's taken)
        waiting.wait_until(lambda: not self.taken_ports(), timeout_s=30, interval_s=0.1,
                           what=f"{self.name}'s ports to close after the kill")
        return killed

    def purge(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def status(self) -> str:
        if not self.enabled:
            return "external"
        if not self.running():
            return "stopped"
        try:
            return "up" if self.ready() else "starting"
        except Exception:  # noqa: BLE001 - a probe failure is a status, not a crash
            return "not answering"
