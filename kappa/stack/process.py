"""Background processes the stack owns: started detached, tracked by a PID file, stopped by that PID.

Nothing here looks processes up by name: a service is ours only if its PID file says so and the PID
still runs the process we started (the PID file also records the process's start time, compared
through psutil), so `down` never signals anyone else's process, even when the PID was recycled.
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

import psutil

from kappa import waiting
from kappa.errors import KappaError

START_TOLERANCE_S = 2.0  # see _same_start


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
        """The PID if the process we started is still alive, else None (stale files are removed).

        A PID that now runs another process than the one recorded is a recycled PID, never ours to
        signal. The process is named by its start in clock ticks since this boot (Linux's /proc), which a
        wall-clock step cannot move; files without it (older versions, no /proc) by the start time psutil
        reads, within START_TOLERANCE_S, or (the oldest) by the PID alone.
        """
        try:
            fields = self.pid_file.read_text().split()
            pid = int(fields[0])
            started = float(fields[1]) if len(fields) > 1 else None
            ticks = (int(fields[2]), fields[3]) if len(fields) > 3 else None
        except (FileNotFoundError, ValueError, IndexError):
            return None
        if is_running(pid):
            if ticks is not None:
                ours = ticks == (start_ticks(pid), boot_id())
            else:
                ours = started is None or _same_start(started_at(pid), started)
            if ours:
                return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def _record(self, pid: int) -> None:
        started, ticks, boot = started_at(pid), start_ticks(pid), boot_id()
        fields = [str(pid)] + ([] if started is None else [repr(started)])
        if started is not None and ticks is not None and boot is not None:
            fields += [str(ticks), boot]
        self.pid_file.write_text(" ".join(fields) + "\n")

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
        self._record(proc.pid)
        return proc.pid

    def adopt(self, pid: int) -> None:
        """Record a PID started by another tool (e.g. pg_ctl) as ours."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._record(pid)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 40.0) -> bool:
        """Signal our PID, wait for it to exit, SIGKILL after the timeout. True if something stopped."""
        pid = self.pid()
        if pid is None:
            return False
        _signal(pid, sig)
        try:
            waiting.wait_until(lambda: not is_running(pid), timeout_s=timeout_s, interval_s=0.2,
                               what=f"{self.name} (PID {pid}) to exit")
        except waiting.WaitTimeout:
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
            while is_running(pid) or _group_alive(pid):  # the group's JVM may outlive its start script a moment,
                time.sleep(0.05)                           # holding the ports the next start needs
            self.pid_file.unlink(missing_ok=True)
        return pid

    def tail(self, lines: int = 40) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _group_alive(pgid: int) -> bool:
    """True while a process of group `pgid` runs (zombies hold no port and do not count)."""
    for process in psutil.process_iter(["status"]):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                return True
    return False


def is_running(pid: int) -> bool:
    """True if `pid` runs and is not a zombie (our own exited children are reaped here)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child (started by an earlier `kappa` command): fall through to kill(0)
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _same_start(now: float | None, recorded: float) -> bool:
    """psutil's start time is the boot time plus the process's start ticks, and Linux recomputes the boot
    time (whole seconds) from the wall clock: after a clock adjustment the same process reads a second
    off (seen: `stack down` forgot running servers). A recycled PID starts later by far more."""
    return now is not None and abs(now - recorded) <= START_TOLERANCE_S


def start_ticks(pid: int) -> int | None:
    """When `pid`'s process started, in clock ticks since boot (field 22 of /proc/<pid>/stat): unlike a
    wall-clock time it does not move when the clock is stepped. None if it is gone or there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2:].split()[19])  # fields after the command name start at 3
    except (OSError, ValueError, IndexError):
        return None


def boot_id() -> str | None:
    """This boot's identity: start ticks name a process only within one boot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def started_at(pid: int) -> float | None:
    """When `pid`'s process started (seconds since the epoch, as psutil reads it), None if it is gone."""
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.NoSuchProcess:
        return None


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
    last_error = ""

    def ready() -> bool:
        nonlocal last_error
        try:
            if check():
                return True
        except Exception as exc:  # noqa: BLE001 - any failure just means "not ready yet"
            last_error = f"{type(exc).__name__}: {exc}"
        for proc in watched:
            if proc.pid() is None:
                who = service if proc.name == service else f"{service} ({proc.name})"
                raise ServiceError(f"{who} exited during start-up (port {port}); see {proc.log_file}\n{proc.tail(15)}")
        return False

    waiting.wait_until(ready, timeout_s=timeout_s, what=service, on_timeout=lambda _: ServiceError(
        f"{service} did not answer on port {port} within {timeout_s:.0f}s"
        f"{' (' + last_error + ')' if last_error else ''}; see {log_file}"
    ))
