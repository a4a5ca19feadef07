"""Start and stop the helper processes that `manage.py serve` and the test suite own.

Every child runs in its own session, so the terminal's Ctrl-C reaches only the parent, which
then stops the children in a deliberate order (web, worker and beat first, Redis last). On
Linux a child is also told to receive SIGTERM when its parent dies, so a parent killed with
SIGKILL does not leave orphans running.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

# prctl(2) option: deliver a signal to this process when its parent thread exits.
_PR_SET_PDEATHSIG = 1

_libc: Any = None
if sys.platform.startswith("linux"):
    try:
        # Loaded in the parent: the child must not dlopen() between fork and exec.
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:  # pragma: no cover - no libc to speak of; orphans are then possible
        _libc = None


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    if _libc is None:
        return None

    def preexec() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        # The parent may have died before prctl() ran: then nobody will signal us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def spawn(args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Popen ``args`` in a new session, dying with this process (on Linux)."""
    # An argv list built by our own code, never a shell.
    return subprocess.Popen(
        list(args),
        start_new_session=True,
        preexec_fn=_die_with_parent(os.getpid()),
        **kwargs,
    )


def _signal_group(process: subprocess.Popen[Any], sig: int) -> None:
    # The child leads its own process group (new session): signal the group so that
    # anything it started goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def stop(
    processes: Iterable[subprocess.Popen[Any]],
    *,
    timeout: float = 10.0,
    force: Callable[[], bool] = lambda: False,
) -> None:
    """SIGTERM every process, wait up to ``timeout`` seconds, then SIGKILL the survivors' groups.

    ``force`` is polled while waiting; when it turns true (a second Ctrl-C), the wait is cut
    short and the survivors are killed at once.
    """
    started = list(processes)
    running = [p for p in started if p.poll() is None]
    for process in running:
        # SIGTERM goes to the leader only: Celery and uvicorn shut their own children
        # down gracefully, and a signal straight to those would cut that short.
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
    deadline = time.monotonic() + timeout
    while running and time.monotonic() < deadline and not force():
        running = [p for p in running if p.poll() is None]
        if running:
            time.sleep(0.05)
    for process in running:
        # Still running after the grace period: kill the whole group. Only a process not yet
        # reaped is signalled this way; a reaped leader's id could already belong to another.
        if process.poll() is None:
            _signal_group(process, signal.SIGKILL)
    for process in started:
        # SIGKILL cannot be refused; the bound only guards against an unkillable (D-state) one.
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
