"""A PID file names our process only while that PID still runs the process we started (psutil)."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kappa.stack.process import ManagedProcess, boot_id, is_running, start_ticks, started_at

pytestmark = pytest.mark.unit


@pytest.fixture
def managed(tmp_path: Path) -> Iterator[ManagedProcess]:
    process = ManagedProcess("sleeper", tmp_path / "run", tmp_path / "logs" / "sleeper.log")
    yield process
    pid = process.pid()
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_the_pid_file_records_the_start_time_and_stop_signals_our_process(managed: ManagedProcess) -> None:
    pid = managed.start([sys.executable, "-c", "import time; time.sleep(60)"])
    recorded, started, ticks, boot = managed.pid_file.read_text().split()
    assert int(recorded) == pid and float(started) == started_at(pid)
    assert int(ticks) == start_ticks(pid) and boot == boot_id()
    assert managed.pid() == pid
    assert managed.stop(timeout_s=30) and not is_running(pid) and not managed.pid_file.exists()


def test_a_recycled_pid_is_not_ours_and_is_never_signalled(managed: ManagedProcess) -> None:
    # someone else's process under a PID our file names: same number, another start time
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        managed.run_dir.mkdir(parents=True)
        started = started_at(other.pid)
        assert started is not None
        managed.pid_file.write_text(f"{other.pid} {started - 3600.0!r}\n")
        assert managed.pid() is None and not managed.pid_file.exists()  # stale: forgotten
        managed.pid_file.write_text(f"{other.pid} {started - 3600.0!r}\n")
        assert managed.stop(timeout_s=1) is False and managed.kill9() is None
        assert other.poll() is None  # still running: nothing was signalled
    finally:
        other.kill()
        other.wait()


def test_a_pid_file_without_a_start_time_is_trusted_on_its_pid(managed: ManagedProcess) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        managed.run_dir.mkdir(parents=True)
        managed.pid_file.write_text(f"{other.pid}\n")  # written by an earlier version
        assert managed.pid() == other.pid
    finally:
        other.kill()
        other.wait()
    managed.pid_file.unlink()


def test_a_service_kill9_kills_every_process_it_has_and_only_those(tmp_path: Path) -> None:
    """Service.kill9 (the test session's teardown) reaches each process of a multi-process service."""
    from kappa.config import load_config
    from kappa.stack.base import Service

    run, logs = tmp_path / "run", tmp_path / "logs"

    class Pair(Service):
        name = "pair"
        host, ports = "127.0.0.1", [0]

        def processes(self) -> list[ManagedProcess]:
            return [ManagedProcess(f"pair-{i}", run, logs / f"pair-{i}.log") for i in range(2)]

        def _launch(self) -> None:
            for process in self.processes():
                process.start([sys.executable, "-c", "import time; time.sleep(60)"])

        def ready(self) -> bool:
            return True

    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        service = Pair(load_config(profile="test", environ={"KAPPA_PATHS__DATA_DIR": str(tmp_path)}))
        service._launch()
        pids = [process.pid() for process in service.processes()]
        assert all(pids)
        assert service.kill9() is True
        assert not any(is_running(pid) for pid in pids if pid is not None)
        assert all(process.pid() is None for process in service.processes())
        assert service.kill9() is False  # nothing left to kill
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_a_start_time_a_second_off_is_still_our_process(managed: ManagedProcess) -> None:
    """Linux recomputes the boot time psutil adds from the wall clock, so after a clock adjustment our own
    process reads a second off what was recorded: it must not be forgotten (and left running)."""
    pid = managed.start([sys.executable, "-c", "import time; time.sleep(60)"])
    started = started_at(pid)
    assert started is not None
    managed.pid_file.write_text(f"{pid} {started - 1.0!r}\n")
    assert managed.pid() == pid
    assert managed.stop(timeout_s=10) is True and not is_running(pid)


def test_kill9_returns_once_the_whole_group_is_gone(managed: ManagedProcess, tmp_path: Path) -> None:
    """A server's start script runs its JVM as a child: kill9 returns only when that child is gone too
    (it held the ports the next start needs: `stack up` right after a kill found them taken)."""
    child_file = tmp_path / "child.pid"
    managed.start(["bash", "-c", f"sleep 60 & echo $! > {child_file}; wait"])
    for _ in range(100):
        if child_file.exists() and child_file.read_text().strip():
            break
        time.sleep(0.05)
    child = int(child_file.read_text())
    assert is_running(child)
    assert managed.kill9() is not None
    assert not is_running(child)


def test_a_wall_clock_step_does_not_make_our_process_a_stranger(managed: ManagedProcess) -> None:
    """The start time psutil reads moves with the wall clock (the boot time is recomputed from it); after a
    step of more than START_TOLERANCE_S (a paused VM, NTP) every server looked stale and `stack down` left
    them running. The start in ticks since boot names the process whatever the clock did."""
    pid = managed.start([sys.executable, "-c", "import time; time.sleep(60)"])
    _, started, ticks, boot = managed.pid_file.read_text().split()
    managed.pid_file.write_text(f"{pid} {float(started) - 30.0!r} {ticks} {boot}\n")  # the clock stepped 30 s
    assert managed.pid() == pid
    assert managed.stop(timeout_s=10) is True and not is_running(pid)


def test_a_recycled_pid_with_other_start_ticks_or_another_boot_is_not_ours(managed: ManagedProcess) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        managed.run_dir.mkdir(parents=True)
        started, ticks = started_at(other.pid), start_ticks(other.pid)
        assert started is not None and ticks is not None
        for recorded_ticks, recorded_boot in ((ticks - 100, boot_id()), (ticks, "another-boot")):
            # same wall-clock start: only the ticks or the boot tell the processes apart
            managed.pid_file.write_text(f"{other.pid} {started!r} {recorded_ticks} {recorded_boot}\n")
            assert managed.pid() is None and not managed.pid_file.exists()
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
