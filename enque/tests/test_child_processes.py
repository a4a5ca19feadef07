"""Stopping the children of `manage.py serve`: gracefully, then by force."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from enque import child_processes

# A child that ignores SIGTERM and starts a grandchild in its group: the worst case.
STUBBORN = (
    "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    "print(g.pid, flush=True); time.sleep(60)"
)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1].startswith("Z")  # a zombie is not running


def test_children_run_in_their_own_session() -> None:
    process = child_processes.spawn([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert os.getpgid(process.pid) == process.pid
        assert os.getsid(process.pid) == process.pid
    finally:
        child_processes.stop([process], timeout=5)


def test_a_child_that_honours_sigterm_stops_at_once() -> None:
    process = child_processes.spawn([sys.executable, "-c", "import time; time.sleep(60)"])
    started = time.monotonic()
    child_processes.stop([process], timeout=10)
    assert time.monotonic() - started < 5
    assert process.returncode == -signal.SIGTERM


def test_a_child_that_ignores_sigterm_is_killed_with_its_group_after_the_timeout() -> None:
    process = child_processes.spawn([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE)
    grandchild = int(process.stdout.readline())  # type: ignore[union-attr]
    started = time.monotonic()

    child_processes.stop([process], timeout=1)

    assert 1 <= time.monotonic() - started < 5
    assert process.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 5
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild)
    process.stdout.close()  # type: ignore[union-attr]


def test_force_cuts_the_grace_period_short() -> None:
    process = child_processes.spawn([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE)
    process.stdout.readline()  # type: ignore[union-attr]
    started = time.monotonic()

    child_processes.stop([process], timeout=30, force=lambda: time.monotonic() - started > 0.3)

    assert time.monotonic() - started < 5
    assert process.returncode == -signal.SIGKILL
    process.stdout.close()  # type: ignore[union-attr]
