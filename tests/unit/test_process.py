"""A PID file names our process only while that PID still runs the process we started (psutil)."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kappa.stack.process import ManagedProcess, is_running, started_at

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
    recorded, started = managed.pid_file.read_text().split()
    assert int(recorded) == pid and float(started) == started_at(pid)
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
