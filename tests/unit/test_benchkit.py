"""kappa.benchkit.ThreadCpu: the CPU of one named JVM thread, read while the JVM runs and after its
thread ended (bench/reporter_overhead.py reads Flink's reporter thread this way)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kappa.benchkit import ThreadCpu

pytestmark = pytest.mark.unit

BUSY = """
public class Busy {
    public static void main(String[] args) throws Exception {
        // spins until the thread itself has used one CPU second, however loaded the machine is
        Runnable spin = () -> { java.lang.management.ThreadMXBean bean =
                                    java.lang.management.ManagementFactory.getThreadMXBean();
                                long x = 0;
                                while (bean.getCurrentThreadCpuTime() < 1_000_000_000L) { x++; }
                                if (x < 0) System.out.println(x); };
        Thread busy = new Thread(spin, "Busy-Worker-1");
        Thread idle = new Thread(() -> {}, "Idle-Worker-1");
        busy.start(); idle.start(); busy.join(); idle.join();
        Thread.sleep(600);  // the busy thread has ended: its CPU must still count
    }
}
"""


def test_the_named_threads_cpu_is_counted_and_other_threads_are_not(tmp_path: Path) -> None:
    source = tmp_path / "Busy.java"
    source.write_text(BUSY)
    with ThreadCpu("Busy-Worker") as busy:
        subprocess.run(["java", str(source)], check=True, timeout=120)
    with ThreadCpu("Idle-Worker") as idle:
        subprocess.run(["java", str(source)], check=True, timeout=120)
    assert 0.7 < busy.seconds < 1.3, busy.seconds  # one CPU second, less the last sampling interval at most
    assert idle.seconds < 0.1, idle.seconds
