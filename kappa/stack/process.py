"""Background processes the stack owns: started detached, tracked by a PID file, stopped by that PID.

Nothing here looks processes up by name: a service is ours only if its PID file says so and the PID
still runs the command we started (checked through /proc), so `down` never touches anyone else's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kappa.errors import KappaError


class ServiceError(KappaError):
    """A service failed to start or answer; the message names it, its port and its log file."""


@dataclass(frozen=True)
class ManagedProcess:
    """One long-running process: its PID file, log file and the marker that identifies it."""

    name: str
    run_dir: Path
    log_file: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    def pid(self) -> int | None:
        """The PID if the process we started is still alive, else None (stale files are removed)."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        if is_running(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def start(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> int:
        """Start `argv` detached (own session, so a Ctrl-C in the terminal does not reach it).

        `user` runs it under another account (PostgreSQL refuses to run as root); the PID we
        record is still the server's own, since the switch happens before exec.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                user=user,
                group=user,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    def adopt(self, pid: int) -> None:
        """Record a PID started by another tool (e.g. pg_ctl) as ours."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(f"{pid}\n")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 40.0) -> bool:
        """Signal our PID, wait for it to exit, SIGKILL after the timeout. True if something stopped."""
        pid = self.pid()
        if pid is None:
            return False
        _signal(pid, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not is_running(pid):
                break
            time.sleep(0.2)
        else:
            _signal(pid, signal.SIGKILL)
            while is_running(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill9(self) -> int | None:
        """SIGKILL our process and everything it started, as a machine crash would (fault-injection
        tests). Returns the PID that was killed. The whole process group: a TaskManager's Python
        workers outlived a SIGKILL of the TaskManager alone, for as long as we watched (47 min)."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # started with start_new_session: pid is the group id
            _signal(pid, signal.SIGKILL)
            while is_running(pid):
                time.sleep(0.05)
            self.pid_file.unlink(missing_ok=True)
        return pid

    def tail(self, lines: int = 40) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def is_running(pid: int) -> bool:
    """True if `pid` runs and is not a zombie (our own exited children are reaped here)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child (started by an earlier `kappa` command): fall through to kill(0)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def port_in_use(host: str, port: int) -> bool:
    """True if something already listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_until(
    check: Callable[[], bool],
    *,
    service: str,
    port: int,
    log_file: Path,
    timeout_s: float,
    process: ManagedProcess | None = None,
    processes: Sequence[ManagedProcess] = (),
) -> None:
    """Poll `check` until it returns True; fail with a message naming service, port and log file, at
    once if `process` (or one of `processes`: a service of several) exits meanwhile."""
    watched = [*([process] if process is not None else []), *processes]
    deadline = time.monotonic() + timeout_s
    last_error = ""
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - any failure just means "not ready yet"
            last_error = f"{type(exc).__name__}: {exc}"
        for proc in watched:
            if proc.pid() is None:
                who = service if proc.name == service else f"{service} ({proc.name})"
                raise ServiceError(f"{who} exited during start-up (port {port}); see {proc.log_file}\n{proc.tail(15)}")
        time.sleep(0.5)
    raise ServiceError(
        f"{service} did not answer on port {port} within {timeout_s:.0f}s"
        f"{' (' + last_error + ')' if last_error else ''}; see {log_file}"
    )
